//! AIFF-C beyond what symphonia's AIFF reader takes. Its compression code is read from the
//! `COMM` chunk, so a refusal can name it ([`unread_compression`]); and IMA4 (Apple's IMA
//! ADPCM, what old Macs recorded into) is read through symphonia's CAF reader, which takes
//! the same packets: [`Ima4AsCaf`] shows the file's sound data behind a CAF header.

#[cfg(feature = "m4a")]
use std::io::{Read, Seek, SeekFrom};
#[cfg(feature = "m4a")]
use symphonia::core::io::MediaSource;

/// The AIFF-C compression codes symphonia's AIFF reader takes (symphonia-format-riff's
/// `aiff/chunks.rs`; either case): PCM in its byte orders and widths, floats, A-law, mu-law.
const READ: &[&[u8; 4]] =
    &[b"none", b"alaw", b"ulaw", b"in24", b"in32", b"23ni", b"fl32", b"fl64", b"sowt", b"twos", b"raw "];

/// The chunks of an AIFF-C (`FORM` ... `AIFC`) whose 8-byte headers lie in `head`:
/// (offset of the chunk's payload, id, declared size). Chunks are padded to an even size.
fn chunks(head: &[u8]) -> impl Iterator<Item = (usize, [u8; 4], usize)> + '_ {
    let aifc = head.len() >= 12 && &head[..4] == b"FORM" && &head[8..12] == b"AIFC";
    let mut next = aifc.then_some(12usize);
    std::iter::from_fn(move || {
        let at = next?;
        let chunk = head.get(at..at.checked_add(8)?)?;
        let id: [u8; 4] = chunk[..4].try_into().ok()?;
        let size = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        next = at.checked_add(8)?.checked_add(size)?.checked_add(size & 1);
        Some((at + 8, id, size))
    })
}

/// The `COMM` chunk's (channels, frames, rate field, compression code), when it lies in `head`.
fn common(head: &[u8]) -> Option<(u16, u32, [u8; 10], [u8; 4])> {
    let (at, _, _) = chunks(head).find(|(_, id, _)| id == b"COMM")?;
    let b = head.get(at..at + 22)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
        b[8..18].try_into().ok()?,
        b[18..22].try_into().ok()?,
    ))
}

/// An AIFF-C's compression code, printable, when symphonia's reader does not take it: MACE,
/// QDesign, ..., and IMA4 where [`Ima4AsCaf`] cannot show it (a build without CAF, a
/// header past the first bytes read; a pipe is named as such first).
pub(super) fn unread_compression(head: &[u8]) -> Option<String> {
    let (_, _, _, code) = common(head)?;
    let read = READ.iter().any(|known| known.eq_ignore_ascii_case(&code));
    let shown = code.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' });
    (!read).then(|| shown.collect())
}

/// Whether `head` starts an AIFF-C holding IMA4 (either case).
pub(super) fn is_ima4(head: &[u8]) -> bool {
    common(head).is_some_and(|(_, _, _, code)| code.eq_ignore_ascii_case(b"ima4"))
}

/// An 80-bit IEEE extended float (AIFF's sample rate) as `f64`; `None` for a negative,
/// infinite or unnormalised one.
#[cfg(feature = "m4a")]
fn extended(b: [u8; 10]) -> Option<f64> {
    let exponent = i32::from(u16::from_be_bytes([b[0], b[1]]));
    let mantissa = u64::from_be_bytes(b[2..10].try_into().ok()?);
    if exponent >= 0x7FFF || exponent & 0x8000 != 0 || mantissa >> 63 == 0 {
        return None;
    }
    Some(mantissa as f64 * 2f64.powi(exponent - 16383 - 63))
}

/// Bytes of one IMA4 packet per channel: a 2-byte preamble and 64 samples at 4 bits.
#[cfg(feature = "m4a")]
const IMA4_PACKET: u64 = 34;

/// An IMA4 AIFF-C shown as the CAF file that holds the same packets: a CAF header (`desc`,
/// then `data` with no edits), then the bytes of the `SSND` chunk's sound data, whole
/// packets only, as many as `COMM` counts. Seekable sources only, as symphonia's CAF reader
/// needs.
#[cfg(feature = "m4a")]
pub(super) struct Ima4AsCaf<'s> {
    inner: Box<dyn MediaSource + 's>,
    header: Vec<u8>,
    /// Where the file starts in `inner`, where its sound data starts in the file, and the
    /// sound data's length in bytes.
    base: u64,
    start: u64,
    len: u64,
    pos: u64,
}

#[cfg(feature = "m4a")]
impl<'s> Ima4AsCaf<'s> {
    /// The view of `inner` (positioned at the file's start, whose first bytes are `head`), or
    /// `inner` back when it is not an IMA4 AIFF-C whose header this can read.
    pub(super) fn wrap(
        mut inner: Box<dyn MediaSource + 's>,
        head: &[u8],
    ) -> Result<Box<dyn MediaSource + 's>, Box<dyn MediaSource + 's>> {
        let base = if inner.is_seekable() { inner.stream_position().ok() } else { None };
        let (Some(base), Some((header, start, len))) = (base, layout(head)) else { return Err(inner) };
        Ok(Box::new(Ima4AsCaf { inner, header, base, start, len, pos: 0 }))
    }

    fn total(&self) -> u64 {
        self.header.len() as u64 + self.len
    }
}

/// The CAF header of an IMA4 AIFF-C whose first bytes are `head`, with where its sound data
/// starts in the file and its length in bytes.
#[cfg(feature = "m4a")]
fn layout(head: &[u8]) -> Option<(Vec<u8>, u64, u64)> {
    let (channels, packets, rate, code) = common(head)?;
    if !code.eq_ignore_ascii_case(b"ima4") || channels == 0 || usize::from(channels) > super::limits::MAX_CHANNELS {
        return None;
    }
    let rate = extended(rate)?;
    let (at, _, size) = chunks(head).find(|(_, id, _)| id == b"SSND")?;
    let offset = u64::from(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let packet = IMA4_PACKET * u64::from(channels);
    // the sound data after SSND's offset and block size, cut to whole packets and to COMM's count
    let room = (size as u64).checked_sub(8)?.checked_sub(offset)?;
    let len = (room / packet).min(u64::from(packets)) * packet;
    let start = (at as u64).checked_add(8)?.checked_add(offset)?;
    let mut header = Vec::with_capacity(68);
    header.extend_from_slice(b"caff\x00\x01\x00\x00");
    header.extend_from_slice(b"desc");
    header.extend_from_slice(&32i64.to_be_bytes());
    header.extend_from_slice(&rate.to_be_bytes());
    header.extend_from_slice(b"ima4");
    header.extend_from_slice(&0u32.to_be_bytes()); // format flags
    header.extend_from_slice(&(packet as u32).to_be_bytes()); // bytes per packet
    header.extend_from_slice(&64u32.to_be_bytes()); // frames per packet
    header.extend_from_slice(&u32::from(channels).to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes()); // bits per channel: compressed
    header.extend_from_slice(b"data");
    header.extend_from_slice(&(i64::try_from(len).ok()? + 4).to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes()); // edit count
    Some((header, start, len))
}

#[cfg(feature = "m4a")]
impl Read for Ima4AsCaf<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let header = self.header.len() as u64;
        if self.pos < header {
            let from = &self.header[self.pos as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let room = usize::try_from(self.total().saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let take = buf.len().min(room);
        if take == 0 {
            return Ok(0);
        }
        self.inner.seek(SeekFrom::Start(self.base + self.start + (self.pos - header)))?;
        let n = self.inner.read(&mut buf[..take])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(feature = "m4a")]
impl Seek for Ima4AsCaf<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(d) => self.total().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or(std::io::ErrorKind::InvalidInput)?;
        Ok(self.pos)
    }
}

#[cfg(feature = "m4a")]
impl MediaSource for Ima4AsCaf<'_> {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        Some(self.total())
    }
}

#[cfg(all(test, feature = "m4a"))]
mod tests {
    use super::*;

    #[test]
    fn extended_floats_read_as_aiff_writes_them() {
        let rate = |b: [u8; 10]| extended(b);
        assert_eq!(rate([0x40, 0x0C, 0xFA, 0, 0, 0, 0, 0, 0, 0]), Some(16000.0));
        assert_eq!(rate([0x40, 0x0E, 0xAC, 0x44, 0, 0, 0, 0, 0, 0]), Some(44100.0));
        assert_eq!(rate([0x40, 0x0E, 0xBB, 0x80, 0, 0, 0, 0, 0, 0]), Some(48000.0));
        assert_eq!(rate([0xC0, 0x0C, 0xFA, 0, 0, 0, 0, 0, 0, 0]), None); // negative
        assert_eq!(rate([0x7F, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]), None); // infinite
        assert_eq!(rate([0x40, 0x0C, 0x7A, 0, 0, 0, 0, 0, 0, 0]), None); // unnormalised
    }
}
