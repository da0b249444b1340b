//! CAF (Apple's container) as symphonia reads it, with one fix: libsndfile pads an odd
//! data chunk with a byte CAF does not have, which symphonia would read as a chunk header.

use std::io::{Read, Seek, SeekFrom};
use symphonia::core::io::MediaSource;

/// Where a CAF's last chunk, its audio data, ends, when a few bytes follow it (libsndfile
/// pads an odd chunk to an even length; CAF has no padding): symphonia would read them as
/// the next chunk's header and refuse the file. Chunk headers are found by seeking.
fn data_end(media: &mut dyn MediaSource) -> Option<u64> {
    let (len, start) = (media.byte_len()?, media.stream_position().ok()?);
    let mut at = start.checked_add(8)?; // after "caff", version and flags
    let mut found = None;
    for _ in 0..4096 {
        let mut head = [0u8; 12];
        if media.seek(SeekFrom::Start(at)).is_err() || media.read_exact(&mut head).is_err() {
            break;
        }
        let size = i64::from_be_bytes([head[4], head[5], head[6], head[7], head[8], head[9], head[10], head[11]]);
        let Some(end) = u64::try_from(size).ok().and_then(|s| (at + 12).checked_add(s)) else { break };
        if &head[..4] == b"data" && end < len && len - end < 12 {
            found = Some(end);
            break;
        }
        at = end;
    }
    let _ = media.seek(SeekFrom::Start(start));
    found
}

/// A seekable source read as if it ended at `end` (an absolute offset).
pub(super) struct Ending<'s> {
    inner: Box<dyn MediaSource + 's>,
    pos: u64,
    end: u64,
}

impl<'s> Ending<'s> {
    /// A CAF (positioned at its start) read to the end of its data chunk when a few bytes
    /// follow it; any other source (a stream, a CAF that ends where its data does) as it is.
    pub(super) fn wrap(mut media: Box<dyn MediaSource + 's>) -> Box<dyn MediaSource + 's> {
        if !media.is_seekable() {
            return media;
        }
        match (data_end(&mut *media), media.stream_position()) {
            (Some(end), Ok(pos)) => Box::new(Ending { inner: media, pos, end }),
            _ => media,
        }
    }
}

impl Read for Ending<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let take = buf.len().min(room);
        let n = self.inner.read(&mut buf[..take])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Ending<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let to = match to {
            SeekFrom::End(d) => {
                SeekFrom::Start(self.end.checked_add_signed(d).ok_or(std::io::ErrorKind::InvalidInput)?)
            }
            other => other,
        };
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for Ending<'_> {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        Some(self.end)
    }
}
