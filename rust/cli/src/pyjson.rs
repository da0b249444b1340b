//! JSON and text the way the Python CLI writes them, so `serlaq-rt` output is the same
//! bytes as `serlaq` output: `json.dumps` defaults (`", "` / `": "` separators,
//! `ensure_ascii`, `indent=2` for `info --json`), `repr(float)` for numbers, `str()` for
//! the `info` text, and objects kept in insertion order (the `.laq` metadata is read in
//! file order, as `json.loads` does).

use std::fmt::Write;

/// A JSON value with ordered objects (Python dicts keep insertion order).
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// An object from `(key, value)` pairs, in that order.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `json.dumps(value)`: one line.
    pub fn dumps(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, None, 0);
        s
    }

    /// `json.dumps(value, indent=2)`.
    pub fn dumps_indent(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, Some(2), 0);
        s
    }

    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(v) => {
                let _ = write!(out, "{v}");
            }
            J::UInt(v) => {
                let _ = write!(out, "{v}");
            }
            J::Float(v) => out.push_str(&json_float(*v)),
            J::Str(s) => escape_into(out, s),
            J::Arr(items) => {
                if items.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    sep(out, indent, level + 1, i == 0);
                    v.write(out, indent, level + 1);
                }
                close(out, indent, level);
                out.push(']');
            }
            J::Obj(items) => {
                if items.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    sep(out, indent, level + 1, i == 0);
                    escape_into(out, k);
                    out.push_str(": ");
                    v.write(out, indent, level + 1);
                }
                close(out, indent, level);
                out.push('}');
            }
        }
    }

    /// Python's `str()` of the value `json.loads` would give (for the `info` text).
    pub fn py_str(&self) -> String {
        match self {
            J::Null => "None".into(),
            J::Bool(b) => if *b { "True" } else { "False" }.into(),
            J::Int(v) => v.to_string(),
            J::UInt(v) => v.to_string(),
            J::Float(v) => py_repr(*v),
            J::Str(s) => s.clone(),
            // Python's repr of containers: only for odd metadata, kept readable
            other => other.dumps(),
        }
    }
}

fn sep(out: &mut String, indent: Option<usize>, level: usize, first: bool) {
    if !first {
        out.push(',');
        if indent.is_none() {
            out.push(' ');
        }
    }
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * level));
    }
}

fn close(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * level));
    }
}

/// A JSON string literal with `ensure_ascii=True` escapes (lowercase hex, surrogate pairs).
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if !(' '..='~').contains(&c) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps` of a float: `repr`, with Python's names for the non-finite values.
pub fn json_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        py_repr(v)
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for
/// decimal exponents -4..=15, otherwise `d.ddde±XX` (at least two exponent digits).
pub fn py_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
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

/// `f"{n:,}"` for an integer.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl From<&serde_json::Value> for J {
    /// serde_json's own map is sorted by key; the values it holds keep their types.
    fn from(v: &serde_json::Value) -> J {
        use serde_json::Value;
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    J::UInt(u)
                } else if let Some(i) = n.as_i64() {
                    J::Int(i)
                } else {
                    J::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::from).collect()),
            Value::Object(m) => J::Obj(m.iter().map(|(k, v)| (k.clone(), J::from(v))).collect()),
        }
    }
}

/// Parses JSON text as `json.loads` does: objects in text order (a repeated key keeps
/// its first place and its last value), floats correctly rounded (`str::parse`), integers
/// as integers. `None` for anything that is not one JSON value.
pub fn loads(text: &str) -> Option<J> {
    let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

/// Deepest nesting accepted (the core's serde_json stops at 128 too).
const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn lit(&mut self, word: &str, v: J) -> Option<J> {
        self.s[self.i..].starts_with(word.as_bytes()).then(|| {
            self.i += word.len();
            v
        })
    }
    fn value(&mut self) -> Option<J> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.enter()?;
                self.i += 1;
                let mut items: Vec<(String, J)> = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        let v = self.value()?;
                        match items.iter_mut().find(|(key, _)| *key == k) {
                            Some(slot) => slot.1 = v,
                            None => items.push((k, v)),
                        }
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Some(J::Obj(items))
            }
            b'[' => {
                self.enter()?;
                self.i += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value()?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Some(J::Arr(items))
            }
            b'"' => self.string().map(J::Str),
            b't' => self.lit("true", J::Bool(true)),
            b'f' => self.lit("false", J::Bool(false)),
            b'n' => self.lit("null", J::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }
    fn number(&mut self) -> Option<J> {
        let start = self.i;
        let mut float = false;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => float = true,
                _ => break,
            }
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if !float {
            if let Ok(u) = t.parse::<u64>() {
                return Some(J::UInt(u));
            }
            if let Ok(i) = t.parse::<i64>() {
                return Some(J::Int(i));
            }
        }
        t.parse::<f64>().ok().map(J::Float)
    }
    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }
    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while !matches!(self.s.get(self.i), Some(b'"' | b'\\') | None) {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => {
                    self.i += 1;
                    let c = *self.s.get(self.i)?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xd800) << 10) + (lo.checked_sub(0xdc00)? & 0x3ff)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        // expected strings are Python 3.11's repr()
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (2.5e-300, "2.5e-300"),
            (0.30000000000000004, "0.30000000000000004"),
            (-42.0, "-42.0"),
            (0.9999999999999999, "0.9999999999999999"),
            (12345678.9, "12345678.9"),
        ];
        for &(v, want) in cases {
            assert_eq!(py_repr(v), want, "{v:e}");
        }
        assert_eq!(json_float(f64::INFINITY), "Infinity");
        // every repr parses back to the same float
        let mut st = 12345u64;
        for _ in 0..20000 {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = f64::from_bits(st);
            if v.is_finite() {
                assert_eq!(py_repr(v).parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v:e}");
            }
            let p = (st >> 11) as f64 / (1u64 << 53) as f64; // probabilities in [0, 1)
            assert_eq!(py_repr(p).parse::<f64>().unwrap(), p);
        }
    }

    #[test]
    fn dumps_matches_python() {
        let v = J::obj([
            ("path", J::Str("é/ü\"\\\n\u{1F600}\u{7f}".into())),
            ("n", J::UInt(3)),
            ("x", J::Arr(vec![J::Float(0.5), J::Null, J::Bool(true)])),
            ("e", J::Obj(vec![])),
            ("l", J::Arr(vec![])),
        ]);
        // json.dumps({...}) in Python 3.11
        assert_eq!(
            v.dumps(),
            r#"{"path": "\u00e9/\u00fc\"\\\n\ud83d\ude00\u007f", "n": 3, "x": [0.5, null, true], "e": {}, "l": []}"#
        );
        assert_eq!(
            J::obj([("a", J::Arr(vec![J::UInt(1), J::UInt(2)])), ("b", J::Obj(vec![]))]).dumps_indent(),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}"
        );
    }

    #[test]
    fn ordered_parse_and_thousands() {
        let j = loads(r#" {"z": 1, "a": [1.0, -2, 2.5e-3, true, null, {}], "s": "\u00e9\ud83d\ude00\n/", "z": 5} "#)
            .unwrap();
        let want = J::obj([
            ("z", J::UInt(5)),
            ("a", J::Arr(vec![J::Float(1.0), J::Int(-2), J::Float(0.0025), J::Bool(true), J::Null, J::Obj(vec![])])),
            ("s", J::Str("é\u{1F600}\n/".into())),
        ]);
        assert_eq!(j, want);
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "nul", "1 2", "\"\\x\""] {
            assert_eq!(loads(bad), None, "{bad}");
        }
        assert_eq!(loads(&"[".repeat(200)), None);
        // what loads reads, dumps writes back (key order, numbers, escapes)
        let text = r#"{"b": [1, 0.1, -0.0, 1e-07, 1e+20], "a": {"\u00e9": "x\"y"}}"#;
        assert_eq!(loads(text).unwrap().dumps(), text);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
