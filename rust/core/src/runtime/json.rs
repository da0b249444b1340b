//! The one JSON spelling of every runtime record: serde_json with a [`Formatter`] that
//! writes what Python's `json.dumps` writes (`", "` and `": "` separators, `indent=2`
//! where asked, `ensure_ascii` escapes, floats as `repr(float)`), so the bytes that the
//! Python CLI, `serlaq-rt` and the other faces print are the same.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use std::io::{self, Write};

/// `json.dumps` style; `indent: Some(n)` as `indent=n` (newlines, no trailing spaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct PyFormatter {
    indent: Option<usize>,
    level: usize,
    has_value: bool,
}

impl PyFormatter {
    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(n) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..n * self.level {
                w.write_all(b" ")?;
            }
        }
        Ok(())
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(w)
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(c)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(c)
    }
}

impl Formatter for PyFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(py_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, value as f64)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // ensure_ascii: everything outside printable ASCII as \uXXXX (UTF-16 units)
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !c.is_ascii() {
                w.write_all(&fragment.as_bytes()[start..i])?;
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        // as Python: lowercase hex for control characters
        match escape {
            CharEscape::Quote => w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => w.write_all(b"\\\\"),
            CharEscape::Solidus => w.write_all(b"\\/"),
            CharEscape::Backspace => w.write_all(b"\\b"),
            CharEscape::FormFeed => w.write_all(b"\\f"),
            CharEscape::LineFeed => w.write_all(b"\\n"),
            CharEscape::CarriageReturn => w.write_all(b"\\r"),
            CharEscape::Tab => w.write_all(b"\\t"),
            CharEscape::AsciiControl(b) => write!(w, "\\u{b:04x}"),
        }
    }
}

/// One line of JSON (`json.dumps(value)`).
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    to_string(value, None)
}

/// `json.dumps(value, indent=2)`.
pub fn to_pretty<T: Serialize + ?Sized>(value: &T) -> String {
    to_string(value, Some(2))
}

fn to_string<T: Serialize + ?Sized>(value: &T, indent: Option<usize>) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter { indent, ..PyFormatter::default() });
    // records hold no maps with non-string keys: serialising them cannot fail
    value.serialize(&mut ser).expect("runtime records serialise to JSON");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for
/// decimal exponents -4..=15, otherwise `d.ddde±XX` (at least two exponent digits).
pub fn py_repr(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` is also the shortest round-trip representation: "d.ddde-x".
    let sci = format!("{:e}", v.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let decpt = exp + 1; // value = 0.DIGITS x 10^decpt
    if !(-3..=16).contains(&decpt) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_spelling() {
        for (v, want) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(py_repr(v), want, "{v}");
        }
        let v = json!({"a": [1, 2.5, "é\n"], "b": {}, "c": [], "d": {"x": null, "y": true}});
        assert_eq!(to_line(&v), r#"{"a": [1, 2.5, "\u00e9\n"], "b": {}, "c": [], "d": {"x": null, "y": true}}"#);
        assert_eq!(
            to_pretty(&v),
            "{\n  \"a\": [\n    1,\n    2.5,\n    \"\\u00e9\\n\"\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": {\n    \"x\": null,\n    \"y\": true\n  }\n}"
        );
        assert_eq!(to_line(&json!("\u{1F600}\u{1}")), r#""\ud83d\ude00\u0001""#);
    }
}
