//! The edit lists of an MP4 (M4A) file, which symphonia parses but does not apply.
//!
//! An AAC encoder's first frame is priming: 1024 samples from ffmpeg's encoder, 2112 from
//! Apple's, that the file's edit list (`moov/trak/edts/elst`) tells a reader to skip. Read
//! without it, every time in the recording comes late by that much (64 ms at 16 kHz) and
//! the decoded samples differ from what ffmpeg, a browser or a phone plays back.
//!
//! Only the box headers and the few small boxes needed are read (mvhd, tkhd, mdhd, hdlr,
//! elst), by seeking over everything else; a box that is cut short, sized past its parent
//! or nested too deep ends the search with no edits found, never an error: symphonia's own
//! reader judges the file.

use std::io::{Cursor, Read, Seek, SeekFrom};

/// The boxes looked at, at most, in one file (a hostile file of 8-byte boxes stops here).
const MAX_BOXES: usize = 4096;
/// Edit list entries read, at most, per track (the rule below needs the first few).
const MAX_ENTRIES: u32 = 64;

/// Where a track's presentation starts in its media, as its (only) edit says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// The track's id (`tkhd`), as symphonia numbers its tracks.
    pub track_id: u32,
    /// The media time the presentation starts at, in `timescale` units per second.
    pub media_time: u64,
    /// The media's timescale (`mdhd`), units per second.
    pub timescale: u32,
}

impl Edit {
    /// The leading frames to drop at `rate` Hz (rounded to the nearest frame).
    pub fn skip_frames(&self, rate: u32) -> u64 {
        let frames = (u128::from(self.media_time) * u128::from(rate) + u128::from(self.timescale) / 2)
            / u128::from(self.timescale);
        u64::try_from(frames).unwrap_or(u64::MAX)
    }
}

/// The start edit of every sound track in `media`, which is rewound to where it was.
///
/// The rule, as ffmpeg applies it to audio: empty edits (media time -1, a pause before
/// the track starts) are passed over; a track with exactly one other edit, played at rate
/// 1, starts at that edit's media time. A track with several (a cut within the recording)
/// or none keeps all its samples. The edit's duration is not applied at the end: ffmpeg
/// keeps the encoder's padding there too (at most one frame).
pub fn start_edits<R: Read + Seek + ?Sized>(media: &mut R) -> Vec<Edit> {
    let Ok(at) = media.stream_position() else { return Vec::new() };
    let mut walk = Walk { media, boxes: 0, base: at };
    let edits = walk.file().unwrap_or_default();
    let _ = walk.media.seek(SeekFrom::Start(at));
    edits
}

/// The last top-level box's size, rewritten to end where the file does, when it is the audio
/// (`mdat`) after the index (`moov`) and runs past the end: a recording written index first
/// (faststart), then cut short (an interrupted download or copy). symphonia skips a box that
/// overruns the file, and with it every sample; read to the cut, the audio before it is kept.
/// As (offset from `media`'s position, 4 bytes) patches; `media` is rewound.
pub fn cut_short<R: Read + Seek + ?Sized>(media: &mut R) -> Vec<(u64, [u8; 4])> {
    let Ok(at) = media.stream_position() else { return Vec::new() };
    let mut walk = Walk { media, boxes: 0, base: at };
    let patches = walk.cut_short().unwrap_or_default();
    let _ = walk.media.seek(SeekFrom::Start(at));
    patches
}

/// Whether the index (`moov`) comes before the audio (`mdat`) among the top-level boxes
/// whose headers lie in `head`, a file's first bytes (false when `head` ends before either:
/// a large `mdat` went first, out of a pipe's reach).
pub fn index_first(head: &[u8]) -> bool {
    let mut walk = Walk { media: &mut Cursor::new(head), boxes: 0, base: 0 };
    let mut at = 0u64;
    while let Some((kind, size, _)) = walk.header(at, u64::MAX) {
        match &kind {
            b"moov" => return true,
            b"mdat" => return false,
            _ => match at.checked_add(size) {
                Some(next) => at = next,
                None => return false,
            },
        }
    }
    false
}

struct Walk<'m, R: ?Sized> {
    media: &'m mut R,
    boxes: usize,
    base: u64,
}

/// A box: its type and where its payload starts and ends (absolute offsets).
struct BoxAt {
    kind: [u8; 4],
    start: u64,
    end: u64,
}

/// What one `trak` box holds that matters here.
#[derive(Default)]
struct Track {
    id: Option<u32>,
    sound: bool,
    timescale: Option<u32>,
    edits: Option<Vec<(u64, i64, i32)>>,
}

impl<R: Read + Seek + ?Sized> Walk<'_, R> {
    fn file(&mut self) -> Option<Vec<Edit>> {
        let end = self.media.seek(SeekFrom::End(0)).ok()?;
        // top-level boxes up to the index: a box after it may run past the end (a cut file)
        let mut at = self.base;
        let moov = loop {
            let (kind, size, header) = self.header(at, end)?;
            if size > end - at {
                return None;
            }
            if &kind == b"moov" {
                break BoxAt { kind, start: at + header, end: at + size };
            }
            at += size;
        };
        let mut edits = Vec::new();
        for trak in self.children(moov.start, moov.end)?.into_iter().filter(|b| &b.kind == b"trak") {
            if let Some(edit) = self.track(&trak).and_then(start_edit) {
                edits.push(edit);
            }
        }
        Some(edits)
    }

    fn cut_short(&mut self) -> Option<Vec<(u64, [u8; 4])>> {
        let end = self.media.seek(SeekFrom::End(0)).ok()?;
        let (mut at, mut index) = (self.base, false);
        while at < end {
            let (kind, size, header) = self.header(at, end)?;
            let next = at.checked_add(size)?;
            if next <= end {
                index |= &kind == b"moov";
                at = next;
                continue;
            }
            let (offset, len) = (at - self.base, end - at);
            return match (&kind, index, header) {
                (b"mdat", true, 8) => Some(vec![(offset, u32::try_from(len).ok()?.to_be_bytes())]),
                (b"mdat", true, _) => Some(vec![
                    (offset + 8, ((len >> 32) as u32).to_be_bytes()),
                    (offset + 12, (len as u32).to_be_bytes()),
                ]),
                _ => None,
            };
        }
        None
    }

    fn track(&mut self, trak: &BoxAt) -> Option<Track> {
        let mut track = Track::default();
        for child in self.children(trak.start, trak.end)? {
            match &child.kind {
                b"tkhd" => {
                    let b = self.payload(&child, 24)?;
                    // version 1 widens the two times before the id to 64 bits
                    let at = if b[0] == 1 { 20 } else { 12 };
                    track.id = Some(be32(b.get(at..at + 4)?));
                }
                b"edts" => {
                    let elst = self.children(child.start, child.end)?.into_iter().find(|b| &b.kind == b"elst")?;
                    track.edits = Some(self.elst(&elst)?);
                }
                b"mdia" => {
                    for part in self.children(child.start, child.end)? {
                        match &part.kind {
                            b"mdhd" => {
                                let b = self.payload(&part, 24)?;
                                let at = if b[0] == 1 { 20 } else { 12 };
                                track.timescale = Some(be32(b.get(at..at + 4)?));
                            }
                            b"hdlr" => track.sound = self.payload(&part, 12)?.get(8..12)? == b"soun",
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Some(track)
    }

    /// (segment duration, media time, media rate as 16.16) for the first entries.
    fn elst(&mut self, elst: &BoxAt) -> Option<Vec<(u64, i64, i32)>> {
        let head = self.payload(elst, 8)?;
        let version = head[0];
        let count = be32(&head[4..8]);
        let width = match version {
            0 => 12,
            1 => 20,
            _ => return None,
        };
        let count = count.min(MAX_ENTRIES) as usize;
        let b = self.payload(elst, 8 + count * width)?;
        Some(
            b[8..]
                .chunks_exact(width)
                .map(|e| match version {
                    0 => (u64::from(be32(&e[0..4])), i64::from(be32(&e[4..8]) as i32), be32(&e[8..12]) as i32),
                    _ => (be64(&e[0..8]), be64(&e[8..16]) as i64, be32(&e[16..20]) as i32),
                })
                .collect(),
        )
    }

    /// The boxes between `start` and `end`, headers only; `None` if one is malformed.
    fn children(&mut self, start: u64, end: u64) -> Option<Vec<BoxAt>> {
        let mut found = Vec::new();
        let mut at = start;
        while at < end {
            let (kind, size, header) = self.header(at, end)?;
            if size > end - at {
                return None;
            }
            found.push(BoxAt { kind, start: at + header, end: at + size });
            at += size;
        }
        Some(found)
    }

    /// The box header at `at` inside a parent ending at `end`: (type, size, header length);
    /// `None` past [`MAX_BOXES`], when fewer than 8 bytes remain, or for a size under its header.
    fn header(&mut self, at: u64, end: u64) -> Option<([u8; 4], u64, u64)> {
        self.boxes += 1;
        if self.boxes > MAX_BOXES || end.checked_sub(at)? < 8 {
            return None;
        }
        self.media.seek(SeekFrom::Start(at)).ok()?;
        let mut head = [0u8; 16];
        self.media.read_exact(&mut head[..8]).ok()?;
        let kind: [u8; 4] = head[4..8].try_into().ok()?;
        let (size, header) = match be32(&head[..4]) {
            0 => (end - at, 8), // to the end of its parent (or of the file)
            1 => {
                self.media.read_exact(&mut head[8..16]).ok()?;
                (be64(&head[8..16]), 16)
            }
            n => (u64::from(n), 8),
        };
        (size >= header).then_some((kind, size, header))
    }

    /// The first `len` bytes of a box's payload (`None` if it holds fewer).
    fn payload(&mut self, at: &BoxAt, len: usize) -> Option<Vec<u8>> {
        if (at.end - at.start) < len as u64 {
            return None;
        }
        self.media.seek(SeekFrom::Start(at.start)).ok()?;
        let mut b = vec![0u8; len];
        self.media.read_exact(&mut b).ok()?;
        Some(b)
    }
}

/// The rule in [`start_edits`], for one track.
fn start_edit(track: Track) -> Option<Edit> {
    let (id, timescale, edits) = (track.id?, track.timescale.filter(|&t| t > 0)?, track.edits?);
    if !track.sound {
        return None;
    }
    let mut played = edits.iter().filter(|&&(_, media_time, _)| media_time != -1);
    let &(_, media_time, rate) = played.next()?;
    if played.next().is_some() || rate != 0x1_0000 || media_time <= 0 {
        return None;
    }
    Some(Edit { track_id: id, media_time: media_time as u64, timescale })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
        let body = parts.concat();
        [&(8 + body.len() as u32).to_be_bytes()[..], kind, &body].concat()
    }

    /// A track: tkhd (id), edts/elst (entries: duration, media time, rate 16.16), mdia (mdhd
    /// timescale, hdlr handler); `v1` writes the 64-bit forms.
    fn trak(id: u32, handler: &[u8; 4], timescale: u32, edits: Option<Entries>, v1: bool) -> Vec<u8> {
        let times = if v1 { vec![0u8; 16] } else { vec![0u8; 8] };
        let version = [u8::from(v1), 0, 0, 0];
        let tkhd = boxed(b"tkhd", &[&version, &times, &id.to_be_bytes(), &[0u8; 60]]);
        let mdhd = boxed(b"mdhd", &[&version, &times, &timescale.to_be_bytes(), &[0u8; 12]]);
        let hdlr = boxed(b"hdlr", &[&[0u8; 8], handler, &[0u8; 13]]);
        let mut parts = vec![tkhd];
        if let Some(edits) = edits {
            let mut elst = [&version[..], &(edits.len() as u32).to_be_bytes()].concat();
            for &(duration, media_time, rate) in edits {
                if v1 {
                    elst.extend(duration.to_be_bytes());
                    elst.extend(media_time.to_be_bytes());
                } else {
                    elst.extend((duration as u32).to_be_bytes());
                    elst.extend((media_time as i32).to_be_bytes());
                }
                elst.extend(rate.to_be_bytes());
            }
            parts.push(boxed(b"edts", &[&boxed(b"elst", &[&elst])]));
        }
        parts.push(boxed(b"mdia", &[&mdhd, &hdlr, &boxed(b"minf", &[])]));
        boxed(b"trak", &parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    fn file(traks: &[Vec<u8>]) -> Vec<u8> {
        let moov = boxed(b"moov", &traks.iter().map(Vec::as_slice).collect::<Vec<_>>());
        [boxed(b"ftyp", &[b"M4A \0\0\0\0"]), boxed(b"mdat", &[&[0u8; 100]]), moov].concat()
    }

    const ONE: u32 = 0x1_0000;

    /// Edit list entries as written: (duration, media time, rate 16.16).
    type Entries<'a> = &'a [(u64, i64, u32)];

    #[test]
    fn a_sound_tracks_one_edit_gives_its_start() {
        for v1 in [false, true] {
            let bytes = file(&[trak(7, b"soun", 44100, Some(&[(50000, 2112, ONE)]), v1)]);
            let edits = start_edits(&mut Cursor::new(bytes));
            assert_eq!(edits, vec![Edit { track_id: 7, media_time: 2112, timescale: 44100 }], "v1 {v1}");
            assert_eq!(edits[0].skip_frames(44100), 2112);
            assert_eq!(edits[0].skip_frames(16000), 766); // 766.3, rounded
        }
    }

    #[test]
    fn the_rule_passes_over_empty_edits_and_leaves_cuts_and_other_tracks_alone() {
        let cases: [(Entries, Option<u64>); 6] = [
            (&[(500, -1, ONE), (50000, 1024, ONE)], Some(1024)), // a pause first
            (&[(500, 0, ONE), (50000, 1024, ONE)], None),        // a cut: all samples kept
            (&[(50000, 1024, 2 * ONE)], None),                   // played at twice the rate
            (&[(50000, 0, ONE)], None),                          // nothing to skip
            (&[(500, -1, ONE)], None),                           // only a pause
            (&[], None),
        ];
        for (edits, want) in cases {
            let got = start_edits(&mut Cursor::new(file(&[trak(1, b"soun", 48000, Some(edits), false)])));
            assert_eq!(got.first().map(|e| e.media_time), want, "{edits:?}");
        }
        // a video track's edit is not the sound's; the sound track is found by its id
        let bytes = file(&[
            trak(1, b"vide", 600, Some(&[(600, 300, ONE)]), false),
            trak(2, b"soun", 48000, Some(&[(96000, 2112, ONE)]), false),
            trak(3, b"soun", 48000, None, false),
        ]);
        assert_eq!(
            start_edits(&mut Cursor::new(bytes)),
            vec![Edit { track_id: 2, media_time: 2112, timescale: 48000 }]
        );
    }

    #[test]
    fn the_source_is_left_where_it_was() {
        // the walk starts at the source's position (a stream read from the middle) and returns to it
        let bytes = [vec![0xAB; 37], file(&[trak(1, b"soun", 16000, Some(&[(16000, 1024, ONE)]), false)])].concat();
        let mut cursor = Cursor::new(bytes);
        cursor.set_position(37);
        assert_eq!(start_edits(&mut cursor).len(), 1);
        assert_eq!(cursor.position(), 37);
    }

    #[test]
    fn damaged_and_hostile_files_give_no_edit_and_no_panic() {
        let good = file(&[trak(1, b"soun", 44100, Some(&[(50000, 2112, ONE)]), false)]);
        // every cut (the moov is last, so each one cuts it), and every byte rewritten to
        // each value that matters to a box size
        for cut in 0..good.len() {
            assert_eq!(start_edits(&mut Cursor::new(&good[..cut])), vec![], "cut at {cut}");
        }
        for at in 0..good.len() {
            for value in [0x00, 0x01, 0x07, 0x08, 0x7F, 0xFF] {
                let mut bad = good.clone();
                bad[at] = value;
                let _ = start_edits(&mut Cursor::new(bad));
            }
        }
        // hostile sizes: a 64-bit box size past the file, an entry count of 2^32 - 1
        let mut huge = good.clone();
        let elst = good.windows(4).position(|w| w == b"elst").unwrap();
        huge[elst + 8..elst + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(start_edits(&mut Cursor::new(huge)).is_empty());
        let wide =
            [boxed(b"ftyp", &[b"M4A \0\0\0\0"]), [&1u32.to_be_bytes()[..], b"moov", &u64::MAX.to_be_bytes()].concat()];
        assert!(start_edits(&mut Cursor::new(wide.concat())).is_empty());
        // a million 8-byte boxes: the walk stops after MAX_BOXES
        let many = [boxed(b"ftyp", &[b"M4A \0\0\0\0"]), boxed(b"free", &[]).repeat(1 << 20), good].concat();
        assert!(start_edits(&mut Cursor::new(many)).is_empty());
    }

    #[test]
    fn audio_cut_short_after_its_index_is_read_to_the_cut() {
        let ftyp = boxed(b"ftyp", &[b"M4A \0\0\0\0"]);
        let moov = boxed(b"moov", &[&trak(1, b"soun", 16000, Some(&[(16000, 1024, ONE)]), false)]);
        let mdat = boxed(b"mdat", &[&[7u8; 1000]]);
        let whole = [ftyp.clone(), moov.clone(), mdat.clone()].concat();
        let at = (ftyp.len() + moov.len()) as u64;
        assert_eq!(cut_short(&mut Cursor::new(&whole)), vec![], "whole");
        let cut = &whole[..whole.len() - 400];
        assert_eq!(cut_short(&mut Cursor::new(cut)), vec![(at, 608u32.to_be_bytes())]);
        // its priming is skipped as the whole file's is
        assert_eq!(start_edits(&mut Cursor::new(cut)), start_edits(&mut Cursor::new(&whole)));
        assert_eq!(start_edits(&mut Cursor::new(cut)).len(), 1);
        // a 64-bit size: its two halves; a source read from an offset: offsets from there
        let wide = [&1u32.to_be_bytes()[..], b"mdat", &1016u64.to_be_bytes(), &[7u8; 1000]].concat();
        let cut = [&b"junk"[..], &ftyp, &moov, &wide[..600]].concat();
        let mut source = Cursor::new(cut);
        source.set_position(4);
        assert_eq!(cut_short(&mut source), vec![(at + 8, [0; 4]), (at + 12, 600u32.to_be_bytes())]);
        assert_eq!(source.position(), 4);
        // audio before its index (the index is then lost), or a cut index: nothing to read
        let first = [ftyp.clone(), mdat, moov.clone()].concat();
        assert_eq!(cut_short(&mut Cursor::new(&first[..first.len() - 10])), vec![]);
        assert_eq!(cut_short(&mut Cursor::new(&[ftyp, moov].concat()[..50])), vec![]);
    }

    #[test]
    fn a_huge_media_time_saturates() {
        let edit = Edit { track_id: 1, media_time: u64::MAX, timescale: 1 };
        assert_eq!(edit.skip_frames(384_000), u64::MAX);
    }

    #[test]
    fn the_index_is_found_first_or_after_the_audio_in_a_files_head() {
        let moov = boxed(b"moov", &[]);
        let mdat = boxed(b"mdat", &[&[0u8; 64]]);
        let ftyp = boxed(b"ftyp", &[b"M4A \0\0\0\0"]);
        let mut wide_free = vec![0, 0, 0, 1];
        wide_free.extend_from_slice(b"free");
        wide_free.extend_from_slice(&24u64.to_be_bytes());
        wide_free.extend_from_slice(&[0u8; 8]);
        assert!(index_first(&[ftyp.clone(), moov.clone(), mdat.clone()].concat()));
        assert!(index_first(&[ftyp.clone(), wide_free, moov.clone()].concat()));
        assert!(!index_first(&[ftyp.clone(), mdat.clone(), moov.clone()].concat()));
        // the head ends inside a large mdat, or before either box; a box to the end of the
        // file or sized under its header ends the walk
        let big_mdat = [ftyp.clone(), vec![0x7F, 0, 0, 0], b"mdat".to_vec()].concat();
        assert!(!index_first(&big_mdat));
        assert!(!index_first(&ftyp));
        assert!(!index_first(&[ftyp.clone(), vec![0, 0, 0, 0], b"free".to_vec(), moov.clone()].concat()));
        assert!(!index_first(&[ftyp, vec![0, 0, 0, 4], b"free".to_vec(), moov].concat()));
        assert!(!index_first(&[]));
    }
}
