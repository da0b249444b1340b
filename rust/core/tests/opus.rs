//! Opus in OGG and in WebM: packets from `ropus`' encoder (a port of libopus'), muxed here
//! the way libopus' `opusenc` (OGG) and a browser's MediaRecorder (WebM: a segment and
//! clusters of unknown size) write them. tests/test_audio.py reads libsndfile's Opus files
//! (libopus itself), tests/test_serve_browser.py a browser's own recording. Decoding must give the signal back,
//! aligned (the pre-skip dropped) and exactly as long as the OGG file says (its end trim).
#![cfg(feature = "opus")]

use serlaq_core::audio::{self, AudioError, AudioReader, FORMATS, SUFFIXES, UNDECODED};
use std::f64::consts::PI;

const RATE: u32 = 48_000;
const FRAME: usize = 960; // 20 ms
/// libopus' look-ahead at 48 kHz (2.5 ms + 4 ms): what an encoder writes as the pre-skip.
const PRE_SKIP: usize = 312;

fn tone(n: usize, freq: f64, amp: f64) -> Vec<f32> {
    (0..n).map(|i| (amp * (2.0 * PI * freq * i as f64 / RATE as f64).sin()) as f32).collect()
}

/// A 440 Hz tone whose amplitude steps at 0.5 s: something to align by.
fn signal(n: usize) -> Vec<f32> {
    let mut y = tone(n, 440.0, 0.2);
    y.iter_mut().skip(RATE as usize / 2).for_each(|v| *v *= 3.0);
    y
}

/// Opus packets of interleaved `pcm`, zero-padded to whole frames plus the look-ahead;
/// VoIP at a low rate is SILK, audio at a high rate CELT.
fn encode_with(pcm: &[f32], channels: usize, bitrate: u32, voip: bool) -> Vec<Vec<u8>> {
    let layout = if channels == 2 { ropus::Channels::Stereo } else { ropus::Channels::Mono };
    let app = if voip { ropus::Application::Voip } else { ropus::Application::Audio };
    let mut enc = ropus::Encoder::builder(RATE, layout, app).bitrate(ropus::Bitrate::Bits(bitrate)).build().unwrap();
    assert_eq!(enc.lookahead() as usize, PRE_SKIP);
    let mut padded = pcm.to_vec();
    let frames = (pcm.len() / channels + PRE_SKIP).div_ceil(FRAME);
    padded.resize(frames * FRAME * channels, 0.0);
    let mut out = vec![0u8; 4000];
    padded
        .chunks(FRAME * channels)
        .map(|frame| {
            let n = enc.encode_float(frame, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect()
}

fn encode(pcm: &[f32], channels: usize, bitrate: u32) -> Vec<Vec<u8>> {
    encode_with(pcm, channels, bitrate, false)
}

/// The identification header (RFC 7845, 5.1), mapping family 0.
fn opus_head(channels: u8, gain_q8: i16) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.extend_from_slice(&[1, channels]);
    h.extend_from_slice(&(PRE_SKIP as u16).to_le_bytes());
    h.extend_from_slice(&16000u32.to_le_bytes()); // the input rate: information only
    h.extend_from_slice(&gain_q8.to_le_bytes());
    h.push(0);
    h
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial 0.
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

fn ogg_page(packets: &[&[u8]], granule: u64, seq: u32, flags: u8) -> Vec<u8> {
    let mut lacing = Vec::new();
    for p in packets {
        lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
        lacing.push((p.len() % 255) as u8);
    }
    let mut page = b"OggS".to_vec();
    page.extend_from_slice(&[0, flags]);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&0x5e71u32.to_le_bytes());
    page.extend_from_slice(&seq.to_le_bytes());
    page.extend_from_slice(&[0; 4]);
    page.push(lacing.len() as u8);
    page.extend_from_slice(&lacing);
    packets.iter().for_each(|p| page.extend_from_slice(p));
    let crc = ogg_crc(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

/// An Ogg Opus file of `frames` samples per channel: ten packets a page, the last page's
/// granule position marking where the signal ends.
fn ogg_opus(head: &[u8], packets: &[Vec<u8>], frames: usize) -> Vec<u8> {
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&5u32.to_le_bytes());
    tags.extend_from_slice(b"tests");
    tags.extend_from_slice(&0u32.to_le_bytes());
    let mut out = ogg_page(&[head], 0, 0, 0x02);
    out.extend(ogg_page(&[&tags], 0, 1, 0));
    let pages: Vec<&[Vec<u8>]> = packets.chunks(10).collect();
    for (i, page) in pages.iter().enumerate() {
        let last = i + 1 == pages.len();
        let granule = if last { PRE_SKIP + frames } else { (i * 10 + page.len()) * FRAME };
        let refs: Vec<&[u8]> = page.iter().map(|p| p.as_slice()).collect();
        out.extend(ogg_page(&refs, granule as u64, 2 + i as u32, if last { 0x04 } else { 0 }));
    }
    out
}

fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut e = id.to_vec();
    e.push(0x01); // an 8-byte size
    e.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
    e.extend_from_slice(body);
    e
}

fn ebml_uint(id: &[u8], v: u64) -> Vec<u8> {
    ebml(id, &v.to_be_bytes())
}

/// A WebM file as a browser's MediaRecorder writes one: the segment and each cluster of
/// unknown size, no cues, no duration, no end trim. `track_rate` is the container's
/// sampling frequency (ffmpeg writes the encoder's input rate there).
fn webm_opus(head: &[u8], packets: &[Vec<u8>], channels: u64, track_rate: f64) -> Vec<u8> {
    const UNKNOWN: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let mut out = ebml(
        &[0x1A, 0x45, 0xDF, 0xA3],
        &[
            ebml_uint(&[0x42, 0x86], 1),
            ebml_uint(&[0x42, 0xF7], 1),
            ebml_uint(&[0x42, 0xF2], 4),
            ebml_uint(&[0x42, 0xF3], 8),
            ebml(&[0x42, 0x82], b"webm"),
            ebml_uint(&[0x42, 0x87], 4),
            ebml_uint(&[0x42, 0x85], 2),
        ]
        .concat(),
    );
    out.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
    out.extend_from_slice(&UNKNOWN);
    out.extend(ebml(
        &[0x15, 0x49, 0xA9, 0x66],
        &[ebml_uint(&[0x2A, 0xD7, 0xB1], 1_000_000), ebml(&[0x4D, 0x80], b"t"), ebml(&[0x57, 0x41], b"t")].concat(),
    ));
    let audio = [ebml(&[0xB5], &track_rate.to_be_bytes()), ebml_uint(&[0x9F], channels)].concat();
    let track = [
        ebml_uint(&[0xD7], 1),
        ebml_uint(&[0x73, 0xC5], 1),
        ebml_uint(&[0x83], 2),
        ebml(&[0x86], b"A_OPUS"),
        ebml(&[0x63, 0xA2], head),
        ebml(&[0xE1], &audio),
    ]
    .concat();
    out.extend(ebml(&[0x16, 0x54, 0xAE, 0x6B], &ebml(&[0xAE], &track)));
    for (c, cluster) in packets.chunks(25).enumerate() {
        out.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75]);
        out.extend_from_slice(&UNKNOWN);
        out.extend(ebml_uint(&[0xE7], (c * 25 * 20) as u64)); // milliseconds
        for (i, p) in cluster.iter().enumerate() {
            let mut block = vec![0x81];
            block.extend_from_slice(&((i * 20) as i16).to_be_bytes());
            block.push(0x80);
            block.extend_from_slice(p);
            out.extend(ebml(&[0xA3], &block));
        }
    }
    out
}

fn decode(bytes: &[u8], name: &str) -> Result<Vec<f32>, AudioError> {
    let mut d = audio::Decoder::from_bytes(bytes, name, None)?;
    assert_eq!(d.sample_rate(), RATE, "{name}: Opus decodes at 48 kHz");
    let (mut all, mut chunk) = (Vec::new(), Vec::new());
    while d.next_mono(&mut chunk)? {
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

fn snr_db(got: &[f32], want: &[f32]) -> f64 {
    let (s, e) = got.iter().zip(want).fold((0.0, 0.0), |(s, e), (&g, &w)| {
        (s + f64::from(w) * f64::from(w), e + f64::from(g - w) * f64::from(g - w))
    });
    10.0 * (s / e).log10()
}

/// The shift of `got` against `want` (within ±`max`) where they agree best.
fn best_lag(got: &[f32], want: &[f32], max: isize) -> isize {
    (-max..=max)
        .min_by(|&a, &b| {
            let err = |lag: isize| -> f64 {
                (4000..want.len() - 4000).map(|i| f64::from(got[(i as isize + lag) as usize] - want[i]).powi(2)).sum()
            };
            err(a).total_cmp(&err(b))
        })
        .unwrap()
}

#[test]
fn ogg_opus_decodes_aligned_and_to_its_exact_length() {
    let n = 40_000; // not a whole number of frames: the last page's granule trims the end
    let y = signal(n);
    let packets = encode(&y, 1, 64_000);
    let got = decode(&ogg_opus(&opus_head(1, 0), &packets, n), "memo.opus").unwrap();
    assert_eq!(got.len(), n, "the pre-skip and the end padding are dropped");
    assert_eq!(best_lag(&got, &y, 400), 0, "aligned with the input: the pre-skip is dropped once");
    let snr = snr_db(&got[2000..n - 2000], &y[2000..n - 2000]);
    assert!(snr > 20.0, "SNR {snr:.1} dB");
    // SILK (speech at a low rate: what voice notes hold) is aligned too
    let voice = decode(&ogg_opus(&opus_head(1, 0), &encode_with(&y, 1, 16_000, true), n), "voip.opus").unwrap();
    assert_eq!(voice.len(), n);
    let lag = best_lag(&voice, &y, 400); // SILK's filters are not phase-exact: within 0.2 ms
    assert!(lag.abs() <= 8, "SILK off by {lag} samples");
    // the same through the file path, the streaming reader and at the model's rate
    let dir = std::env::temp_dir().join(format!("serlaq-opus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("memo.opus");
    std::fs::write(&path, ogg_opus(&opus_head(1, 0), &packets, n)).unwrap();
    assert_eq!(audio::load(&path, RATE, 1).unwrap(), got);
    let at16 = audio::load(&path, 16_000, 1).unwrap();
    assert_eq!(at16, audio::resample(&got, RATE, 16_000).unwrap());
    let mut reader = AudioReader::open(&path, 16_000).unwrap();
    let mut streamed = Vec::new();
    while let Some(chunk) = reader.next_chunk().unwrap() {
        streamed.extend_from_slice(chunk);
    }
    assert_eq!(streamed, at16);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stereo_is_averaged_and_the_header_gain_applied() {
    let n = 30_000;
    let left = signal(n);
    let pcm: Vec<f32> = left.iter().flat_map(|&l| [l, 0.0]).collect(); // right channel silent
    let packets = encode(&pcm, 2, 96_000);
    let plain = decode(&ogg_opus(&opus_head(2, 0), &packets, n), "s.ogg").unwrap();
    let half: Vec<f32> = left.iter().map(|v| v / 2.0).collect();
    assert_eq!(plain.len(), n);
    let snr = snr_db(&plain[2000..n - 2000], &half[2000..n - 2000]);
    assert!(snr > 15.0, "the mean of the two channels: SNR {snr:.1} dB");
    // +6.0206 dB in Q7.8 (1541/256): twice as loud, sample for sample
    let louder = decode(&ogg_opus(&opus_head(2, 1541), &packets, n), "g.ogg").unwrap();
    for (a, b) in louder.iter().zip(&plain) {
        assert!((a - 2.0 * b).abs() < 1e-3 * 2.0f32.max(b.abs()), "{a} vs 2 * {b}");
    }
}

#[test]
fn webm_opus_as_a_browser_records_it() {
    let n = 40_000;
    let packets = encode(&signal(n), 1, 64_000);
    let ogg = decode(&ogg_opus(&opus_head(1, 0), &packets, n), "a.ogg").unwrap();
    // the container's sampling frequency is the input's (16 kHz): Opus still decodes at 48
    let webm = decode(&webm_opus(&opus_head(1, 0), &packets, 1, 16_000.0), "memo.webm").unwrap();
    // WebM has no end trim here: the same samples, then the encoder's padding
    assert_eq!(webm.len(), packets.len() * FRAME - PRE_SKIP);
    assert_eq!(&webm[..n], &ogg[..], "the pre-skip from the codec header, as in OGG");
}

#[test]
fn bad_opus_headers_and_packets_are_named() {
    let packets = encode(&signal(20_000), 1, 32_000);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "two channels in mapping family 0 is the most",
            {
                let mut h = opus_head(3, 0);
                h[9] = 3;
                h
            },
            "3 channels with mapping family 0",
        ),
        (
            "a mapping table cut short",
            {
                let mut h = opus_head(3, 0);
                h[18] = 1;
                h.extend_from_slice(&[2, 1, 0]); // 2 streams, 1 coupled, 1 of 3 entries
                h
            },
            "channel mapping (family 1) is cut short",
        ),
        (
            "a channel mapped past the streams",
            {
                let mut h = opus_head(2, 0);
                h[18] = 1;
                h.extend_from_slice(&[1, 0, 0, 7]);
                h
            },
            "maps a channel to stream channel 7",
        ),
        (
            "no streams",
            {
                let mut h = opus_head(1, 0);
                h[18] = 1;
                h.extend_from_slice(&[0, 0, 0]);
                h
            },
            "gives 0 streams",
        ),
    ];
    // WebM states the channels twice: they must agree
    let err = decode(&webm_opus(&opus_head(1, 0), &packets, 2, 48e3), "two.webm").unwrap_err();
    assert!(err.to_string().contains("the Opus header gives 1 channels, the container 2"), "{err}");
    // a valid header of a family symphonia's OGG reader does not take (255: unidentified)
    let mut family255 = opus_head(2, 0);
    family255[18] = 255;
    family255.extend_from_slice(&[2, 0, 0, 1]);
    let err = decode(&ogg_opus(&family255, &packets, 20_000), "amb.opus").unwrap_err();
    assert!(err.to_string().contains("mapping family 255 with 2 channels is not read"), "{err}");
    let line = serlaq_core::runtime::plain_error(&err.to_string());
    assert!(line.starts_with("amb.opus: cannot decode audio: an OGG/Opus file serlaq cannot read"), "{line}");
    for (what, head, want) in cases {
        for (bytes, name) in
            [(ogg_opus(&head, &packets, 20_000), "h.opus"), (webm_opus(&head, &packets, 2, 48e3), "h.webm")]
        {
            let err = decode(&bytes, name).expect_err(what);
            assert!(err.to_string().contains(want), "{what} ({name}): {err}");
            assert!(!err.to_string().contains('\n'));
        }
    }
    // a packet the decoder refuses (code 3, no frame count) ends the stream there, naming
    // where; the chunks before it were already given
    let mut damaged = encode(&signal(40_000), 1, 32_000);
    damaged[30] = vec![0xFB];
    let bytes = ogg_opus(&opus_head(1, 0), &damaged, 40_000);
    let err = decode(&bytes, "d.opus").unwrap_err();
    assert_eq!(err.kind(), "corrupt audio", "{err}");
    assert!(err.to_string().contains("decode error at 0.59"), "{err}");
    let mut reader = AudioReader::from_bytes(&bytes, "d.opus", RATE).unwrap();
    let mut before = 0;
    let err = loop {
        match reader.next_chunk() {
            Ok(Some(c)) => before += c.len(),
            Ok(None) => panic!("the damaged packet was not reported"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), "corrupt audio");
    assert!(before >= 28 * FRAME, "{before} samples before the damage");
}

#[test]
fn opus_and_webm_are_decoded_formats() {
    for ext in ["opus", "webm"] {
        assert!(SUFFIXES.contains(&ext), "a folder search takes .{ext}");
    }
    assert!(FORMATS.iter().any(|(name, exts)| name.contains("Opus") && exts.contains(&"opus")));
    assert!(!UNDECODED.contains(&"OGG/Opus") && !UNDECODED.contains(&"WebM/Matroska"));
}

/// Opus files with random damage: an error or a clip, never a panic or a hang.
#[test]
fn mutated_opus_files_never_panic() {
    let n = 20_000;
    let y = signal(n);
    let files = [
        ogg_opus(&opus_head(1, 0), &encode(&y, 1, 24_000), n),
        webm_opus(&opus_head(1, 0), &encode(&y, 1, 24_000), 1, 48e3),
    ];
    let mut state = 0x2026_1207u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for file in &files {
        for _ in 0..300 {
            let mut bytes = file.clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if next() % 4 == 0 {
                let keep = (next() as usize) % bytes.len();
                bytes.truncate(keep.max(1));
            }
            if let Ok(y) = audio::load_bytes(&bytes, "fuzz", 16_000, 1) {
                assert!(y.iter().all(|v| v.is_finite()));
            }
        }
    }
}
