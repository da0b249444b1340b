"""A minimal M4A writer for tests: 16-bit PCM as Apple Lossless in an MP4 container.

No encoder is available offline (soundfile writes no MP4), so the frames use ALAC's
verbatim mode (each element flagged uncompressed, the samples stored raw): a valid stream
that every ALAC decoder must read back bit for bit. The container holds the boxes a player
needs and nothing else: ftyp, moov (mvhd, trak: tkhd, mdia: mdhd, hdlr, minf: smhd, dinf,
stbl: stsd with the ALAC magic cookie, stts, stsc, stsz, stco) and mdat, and an edit list
(trak: edts: elst) when one is asked for.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FRAME_LENGTH = 4096  # samples per channel in a full ALAC frame (the usual value)


class _Bits:
    """Most-significant-bit-first bit writer (ALAC's order)."""

    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def put(self, value: int, bits: int) -> None:
        self.value = (self.value << bits) | (value & ((1 << bits) - 1))
        self.count += bits

    def bytes(self) -> bytes:
        pad = -self.count % 8
        return (self.value << pad).to_bytes((self.count + pad) // 8, "big")


def _alac_frame(block: np.ndarray) -> bytes:
    """One frame of `block` (samples, channels) int16: one SCE (mono) or CPE (stereo), verbatim."""
    n, channels = block.shape
    bits = _Bits()
    bits.put(1 if channels == 2 else 0, 3)  # element: CPE or SCE
    bits.put(0, 4)  # element instance tag
    bits.put(0, 12)  # unused header bits
    bits.put(1, 1)  # partial frame: the sample count follows
    bits.put(0, 2)  # no shifted low bytes
    bits.put(1, 1)  # uncompressed (verbatim)
    bits.put(n, 32)
    for frame in block:
        for sample in frame:
            bits.put(int(sample), 16)
    bits.put(7, 3)  # end tag
    return bits.bytes()


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, *payload: bytes, flags: int = 0) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def write_m4a(
    path: Path, samples: np.ndarray, sample_rate: int, edits: list[tuple[int, int]] | None = None, version: int = 0
) -> Path:
    """Write int16 `samples` ((n,) mono or (n, 2) stereo) to `path` as ALAC in M4A.

    `edits`: the track's edit list, (duration, media time) per entry in samples (media time
    -1: an empty edit), played at rate 1; `version` 1 writes its 64-bit form.
    """
    block = np.asarray(samples, dtype=np.int16)
    if block.ndim == 1:
        block = block[:, None]
    n, channels = block.shape
    if channels not in (1, 2) or not 0 < sample_rate < 65536:
        raise ValueError("mono or stereo, and a rate below 65536 Hz (the sample entry's 16.16 field)")
    frames = [_alac_frame(block[i : i + FRAME_LENGTH]) for i in range(0, n, FRAME_LENGTH)]
    cookie = struct.pack(">IBBBBBBHIII", FRAME_LENGTH, 0, 16, 40, 10, 14, channels, 255, 0, 0, sample_rate)
    entry = _box(
        b"alac",
        bytes(6) + struct.pack(">H", 1),  # reserved, data reference index
        struct.pack(">HHIHHHHI", 0, 0, 0, channels, 16, 0, 0, sample_rate << 16),
        _full_box(b"alac", cookie),
    )
    counts = [min(FRAME_LENGTH, n - i) for i in range(0, n, FRAME_LENGTH)]
    stts = [(1, c) for c in counts]

    def moov(mdat_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", struct.pack(">I", 1), entry),
            _full_box(b"stts", struct.pack(">I", len(stts)), *(struct.pack(">II", *e) for e in stts)),
            _full_box(b"stsc", struct.pack(">IIII", 1, 1, len(frames), 1)),
            _full_box(b"stsz", struct.pack(">II", 0, len(frames)), *(struct.pack(">I", len(f)) for f in frames)),
            _full_box(b"stco", struct.pack(">II", 1, mdat_offset)),
        )
        minf = _box(
            b"minf",
            _full_box(b"smhd", struct.pack(">HH", 0, 0)),
            _box(b"dinf", _full_box(b"dref", struct.pack(">I", 1), _full_box(b"url ", flags=1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full_box(b"mdhd", struct.pack(">IIIIHH", 0, 0, sample_rate, n, 0x55C4, 0)),
            _full_box(b"hdlr", struct.pack(">I4s12x", 0, b"soun"), b"SoundHandler\0"),
            minf,
        )
        tkhd = _full_box(
            b"tkhd", struct.pack(">IIIIIQHHHH", 0, 0, 1, 0, n, 0, 0, 0, 0x100, 0), _MATRIX, struct.pack(">II", 0, 0), flags=7
        )
        mvhd = _full_box(
            b"mvhd", struct.pack(">IIIIIH10x", 0, 0, sample_rate, n, 0x10000, 0x100), _MATRIX, bytes(24), struct.pack(">I", 2)
        )
        trak = [tkhd, mdia]
        if edits is not None:
            entry_format = ">IiHH" if version == 0 else ">QqHH"
            rows = (struct.pack(entry_format, duration, media_time, 1, 0) for duration, media_time in edits)
            elst = _box(b"elst", struct.pack(">BxxxI", version, len(edits)), *rows)
            trak.insert(1, _box(b"edts", elst))
        return _box(b"moov", mvhd, _box(b"trak", *trak))

    ftyp = _box(b"ftyp", b"M4A ", struct.pack(">I", 0), b"M4A mp42isom")
    head_len = len(ftyp) + len(moov(0)) + 8  # the moov's size does not depend on the offset
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ftyp + moov(head_len) + _box(b"mdat", *frames))
    return path
