//! A WebM/Matroska file cut short (an interrupted download or copy of a browser's
//! recording): its Segment states a size past the end of the file, and symphonia's reader
//! then finds no Segment at all. Read as a live stream writes it, of unknown size, the
//! Segment's clusters are read up to the cut, as they are from a pipe.

/// An EBML variable-length integer at the start of `b`: (its length in bytes, its value).
fn vint(b: &[u8]) -> Option<(usize, u64)> {
    let len = b.first()?.leading_zeros() as usize + 1;
    let bytes = b.get(..len).filter(|_| len <= 8)?;
    let value = bytes[1..].iter().fold(u64::from(bytes[0]) & (0xFF >> len), |v, &b| v << 8 | u64::from(b));
    Some((len, value))
}

/// An element at `at` in `head`: (its id, where its body starts, the body's length).
fn element(head: &[u8], at: usize) -> Option<(&[u8], usize, u64)> {
    let id_len = head.get(at)?.leading_zeros() as usize + 1;
    let id = head.get(at..at + id_len).filter(|_| id_len <= 4)?;
    let (size_len, size) = vint(head.get(at + id_len..)?)?;
    Some((id, at + id_len + size_len, size))
}

/// `bytes` written at `at` over `head`, as whole 4-byte patches (the bytes after them kept).
fn rewrite(head: &[u8], at: usize, bytes: &[u8]) -> Option<Vec<(u64, [u8; 4])>> {
    let mut out = head.get(at..at + bytes.len().div_ceil(4) * 4)?.to_vec();
    out[..bytes.len()].copy_from_slice(bytes);
    Some(out.chunks_exact(4).enumerate().map(|(i, c)| ((at + 4 * i) as u64, [c[0], c[1], c[2], c[3]])).collect())
}

/// The patches that make a cut file in `head` (a file's first bytes) read up to `len`, its
/// length: the Segment's size rewritten to "unknown", and the index's (SeekHead's) pointers
/// past the cut to the Segment's start, which the reader passes over (ffmpeg points them at
/// the Cues it writes last). Empty for a file that is not cut.
pub(super) fn cut_short(head: &[u8], len: u64) -> Vec<(u64, [u8; 4])> {
    segment(head, len).unwrap_or_default()
}

fn segment(head: &[u8], len: u64) -> Option<Vec<(u64, [u8; 4])>> {
    let (ebml, body, size) = element(head, 0)?;
    let at = body.checked_add(usize::try_from(size).ok()?)?;
    let (id, data, size) = element(head, at)?;
    if ebml != [0x1A, 0x45, 0xDF, 0xA3] || id != [0x18, 0x53, 0x80, 0x67] {
        return None;
    }
    let size_len = data - at - 4;
    let unknown = u64::MAX >> (64 - 7 * size_len);
    if size == unknown || (data as u64).checked_add(size).is_some_and(|end| end <= len) {
        return None;
    }
    let mut marker = vec![0xFF; size_len];
    marker[0] = 0xFF >> (size_len - 1);
    let mut patches = rewrite(head, at + 4, &marker)?;
    // the SeekHead, when it is the Segment's first element: each Seek's SeekPosition
    if let Some(([0x11, 0x4D, 0x9B, 0x74], body, size)) = element(head, data) {
        let end = body.saturating_add(usize::try_from(size).unwrap_or(usize::MAX)).min(head.len());
        let mut seek = body;
        while let Some(([0x4D, 0xBB], inner, size)) = element(head, seek).filter(|_| seek < end) {
            let next = inner.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
            let mut field = inner;
            while let Some((id, value, n)) = element(head, field).filter(|_| field < next) {
                let n = usize::try_from(n).ok().filter(|&n| n <= 8)?;
                let bytes = head.get(value..value + n)?;
                let position = bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
                if id == [0x53, 0xAC] && (data as u64).saturating_add(position) >= len {
                    patches.extend(rewrite(head, value, &vec![0; n])?);
                }
                field = value + n;
            }
            seek = next;
        }
    }
    Some(patches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: its id, an 8-byte size (as ffmpeg writes the Segment's), its body.
    fn el(id: &[u8], body: &[u8]) -> Vec<u8> {
        [id, &[0x01, 0, 0, 0][..], &(body.len() as u32).to_be_bytes(), body].concat()
    }

    fn patched(file: &[u8], patches: &[(u64, [u8; 4])]) -> Vec<u8> {
        let mut out = file.to_vec();
        for &(at, bytes) in patches {
            out[at as usize..at as usize + 4].copy_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn a_cut_segment_reads_as_one_of_unknown_size_whose_index_past_the_cut_is_passed_over() {
        let header = el(&[0x1A, 0x45, 0xDF, 0xA3], &[0x42, 0x82, 0x84, b'w', b'e', b'b', b'm']);
        let seek = |position: u32| {
            let id = el(&[0x53, 0xAB], &[0x1C, 0x53, 0xBB, 0x6B]);
            el(&[0x4D, 0xBB], &[id, el(&[0x53, 0xAC], &position.to_be_bytes())].concat())
        };
        let index = el(&[0x11, 0x4D, 0x9B, 0x74], &[seek(100), seek(5000)].concat());
        let clusters = vec![0xECu8; 6000];
        let file = [header.clone(), el(&[0x18, 0x53, 0x80, 0x67], &[index.clone(), clusters].concat())].concat();
        assert_eq!(cut_short(&file, file.len() as u64), vec![], "whole");
        let cut = &file[..3000];
        let read = patched(cut, &cut_short(cut, 3000));
        let size = header.len() + 4;
        assert_eq!(read[size..size + 8], [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "unknown size");
        // the pointer before the cut is kept, the one past it points at the Segment's start
        let positions: Vec<usize> =
            read.windows(2).enumerate().filter(|(_, w)| w == &[0x53, 0xAC]).map(|(i, _)| i + 10).collect();
        assert_eq!(read[positions[0]..positions[0] + 4], 100u32.to_be_bytes());
        assert_eq!(read[positions[1]..positions[1] + 4], [0; 4]);
        // every other byte is the file's
        let changed = read.iter().zip(cut).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 7 + 2, "{changed}");
        // no EBML header, no Segment, an unknown size already: left alone
        assert_eq!(cut_short(&cut[4..], 2996), vec![]);
        let mut unknown = cut.to_vec();
        unknown[size..size + 8].copy_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(cut_short(&unknown, 3000), vec![]);
    }

    #[test]
    fn vints_read_as_ebml_writes_them() {
        assert_eq!(vint(&[0x81]), Some((1, 1)));
        assert_eq!(vint(&[0x40, 0x02]), Some((2, 2)));
        assert_eq!(vint(&[0x01, 0, 0, 0, 0, 0x08, 0xA4, 0xFE]), Some((8, 0x8A4FE)));
        assert_eq!(vint(&[0x00, 1, 2, 3, 4, 5, 6, 7, 8]), None); // no marker in 8 bytes
        assert_eq!(vint(&[0x01, 0]), None); // cut short
        assert_eq!(vint(&[]), None);
    }
}
