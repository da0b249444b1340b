"""A minimal WebM writer for tests: libopus' packets (from libsndfile's Ogg Opus) in the
container a browser's MediaRecorder writes (EBML header, a segment and clusters of unknown
size, one Opus track whose CodecPrivate is the OpusHead, SimpleBlocks).

soundfile writes no WebM, but it writes Ogg Opus: its pages are split into packets here and
muxed again, so the audio is what libopus encoded and only the container is ours.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

_UNKNOWN = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def ogg_packets(data: bytes) -> list[bytes]:
    """The packets of a one-stream Ogg file, in order (continued packets joined)."""
    packets, partial, at = [], b"", 0
    while at < len(data):
        assert data[at:at + 4] == b"OggS", f"no Ogg page at byte {at}"
        nseg = data[at + 26]
        lacing = data[at + 27:at + 27 + nseg]
        body = at + 27 + nseg
        for n in lacing:
            partial += data[body:body + n]
            body += n
            if n < 255:
                packets.append(partial)
                partial = b""
        at = body
    return packets


def _el(ident: bytes, body: bytes) -> bytes:
    return ident + b"\x01" + struct.pack(">Q", len(body))[1:] + body


def _uint(ident: bytes, value: int) -> bytes:
    return _el(ident, struct.pack(">Q", value))


def write_webm(path: Path, y: np.ndarray, rate: int) -> Path:
    """(samples,) float audio as Opus in WebM; `rate` as soundfile takes it (libopus resamples)."""
    with tempfile.TemporaryDirectory() as tmp:
        ogg = Path(tmp) / "x.opus"
        sf.write(str(ogg), y, rate, format="OGG", subtype="OPUS")
        head, _tags, *audio = ogg_packets(ogg.read_bytes())
    assert head.startswith(b"OpusHead")
    ebml = _el(b"\x1a\x45\xdf\xa3", _uint(b"\x42\x86", 1) + _uint(b"\x42\xf7", 1) + _uint(b"\x42\xf2", 4)
               + _uint(b"\x42\xf3", 8) + _el(b"\x42\x82", b"webm") + _uint(b"\x42\x87", 4) + _uint(b"\x42\x85", 2))
    info = _el(b"\x15\x49\xa9\x66", _uint(b"\x2a\xd7\xb1", 1_000_000) + _el(b"\x4d\x80", b"serlaq tests")
               + _el(b"\x57\x41", b"serlaq tests"))
    audio_el = _el(b"\xe1", _el(b"\xb5", struct.pack(">d", float(rate))) + _uint(b"\x9f", head[9]))
    track = _el(b"\xae", _uint(b"\xd7", 1) + _uint(b"\x73\xc5", 1) + _uint(b"\x83", 2) + _el(b"\x86", b"A_OPUS")
                + _el(b"\x63\xa2", head) + audio_el)
    out = bytearray(ebml + b"\x18\x53\x80\x67" + _UNKNOWN + info + _el(b"\x16\x54\xae\x6b", track))
    for c in range(0, len(audio), 25):  # 25 packets of 20 ms a cluster, as a recorder's 0.5 s
        out += b"\x1f\x43\xb6\x75" + _UNKNOWN + _uint(b"\xe7", c * 20)
        for i, packet in enumerate(audio[c:c + 25]):
            out += _el(b"\xa3", b"\x81" + struct.pack(">h", i * 20) + b"\x80" + packet)
    path.write_bytes(bytes(out))
    return path
