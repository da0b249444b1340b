"""Segment timelines (`LaqModel.segments / segment_file / stream`, `serlaq predict --segments`)
on generated recordings: tone clips of known classes (the trained tone model of
rt_builders) separated by silence. No torch: these run in the runtime-only venv too."""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from serlaq import _native
from serlaq.cli import main
from serlaq.errors import AudioError
from serlaq.runtime import LaqModel, Segment
from serlaq.runtime.segments import DEFAULT_HOP, DEFAULT_MIN_SPEECH, DEFAULT_VAD_DB, DEFAULT_WINDOW, summarize

from rt_builders import shared_tone_model, tone, write_wav

SR = 16000
BANDS = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
# (class or None = silence, seconds): what the recording holds, in order
PLAN = [("sad", 4.0), (None, 3.0), ("angry", 4.0), (None, 3.0), ("neutral", 4.0), (None, 3.0)]


def recording() -> tuple[np.ndarray, list[tuple[str | None, float, float]]]:
    parts, spans, t = [], [], 0.0
    for j, (lab, secs) in enumerate(PLAN):
        if lab is None:
            parts.append(np.zeros(int(secs * SR), np.float32))
        else:
            parts.append(tone(BANDS[lab], SR, secs, seed=j, amplitude=0.3))
        spans.append((lab, t, t + secs))
        t += secs
    return np.concatenate(parts), spans


def pcm16(x: np.ndarray) -> np.ndarray:
    """What write_wav stores (and the decoder reads back)."""
    return np.clip(np.rint(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def laq() -> LaqModel:
    return LaqModel.load(shared_tone_model().path)


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> tuple[Path, np.ndarray, list]:
    x, spans = recording()
    path = write_wav(tmp_path_factory.mktemp("rec") / "rec.wav", x, SR)
    return path, x, spans


def inside(seg: Segment, spans: list) -> str | None | bool:
    """The class (None = silence) of the span holding the whole window, False if it straddles."""
    for lab, a, b in spans:
        if a <= seg.start + 1e-9 and seg.end <= b + 1e-9:
            return lab
    return False


def test_timeline_lines_up_with_the_generated_recording(laq, rec):
    path, _, spans = rec
    segs = list(laq.segments(path))
    assert [s.index for s in segs] == list(range(len(segs)))
    assert segs[0].start == 0.0 and abs(segs[-1].end - 21.0) < 1.0
    judged = 0
    for s in segs:
        truth = inside(s, spans)
        if truth is False:
            continue
        judged += 1
        if truth is None:
            assert not s.speech and s.label == "silence" and s.confidence is None and s.probabilities == {}, s
        else:
            assert s.speech and s.label == truth, (s.start, s.end, s.label, truth)
            assert s.confidence > 0.5 and s.voiced == 1.0
    assert judged >= 8
    # every silence gap of >= one window holds a silence window, every tone a window of its class
    for lab, a, b in spans:
        held = [s for s in segs if a <= s.start + 1e-9 and s.end <= b + 1e-9]
        assert held, (lab, a, b)
        assert all(s.label == (lab or "silence") for s in held)
    summary = summarize(segs, path=str(path))
    assert summary.segments == len(segs) and summary.speech_segments == sum(s.speech for s in segs)
    assert set(summary.emotions) == {"sad", "angry", "neutral"}
    for lab in ("sad", "angry", "neutral"):  # 4 s of each of 12 s of tone, give or take a window edge
        assert abs(summary.emotion_seconds[lab] - 4.0) < 1.2, summary
    assert abs(sum(summary.emotions.values()) - 1.0) < 1e-9
    assert abs(summary.speech_seconds - 12.0) < 2.5


def test_stream_with_random_chunks_equals_offline(laq, rec):
    path, x, _ = rec
    offline = laq.segment_file(path)
    assert offline.error is None
    pcm = pcm16(x)
    rng = np.random.default_rng(0)
    for trial in range(3):
        stream = laq.stream(SR)
        got: list[Segment] = []
        at = 0
        while at < pcm.size:
            n = int(rng.integers(0, 9000)) if trial else int(rng.integers(1, 50))  # tiny chunks once
            if trial == 0 and at > 40000:
                n = pcm.size  # the rest in one go (keeps the tiny-chunk trial short)
            got += stream.push(pcm[at : at + n])
            at += n
        got += stream.flush()
        want = [Segment(**{**s.__dict__, "path": None}) for s in offline.segments]
        assert got == want, f"trial {trial}"
    # a float waveform: the same windows as the int16 PCM it scales to
    wave_segs = list(laq.segments(pcm.astype(np.float32) / 32768.0, sample_rate=SR))
    assert wave_segs == want


def test_window_and_hop_are_whole_stft_hops(laq):
    s = laq.stream(SR)
    assert (s._native.window_frames, s._native.hop_frames) == (86, 43)  # 22050 Hz, hop 512
    assert s.window_seconds == 86 * 512 / 22050 and s.hop_seconds == 43 * 512 / 22050
    assert (DEFAULT_WINDOW, DEFAULT_HOP, DEFAULT_VAD_DB, DEFAULT_MIN_SPEECH) == (2.0, 1.0, -50.0, 0.25)
    import inspect

    for fn in (LaqModel.segments, LaqModel.stream, LaqModel.segment_file):  # literal defaults = Rust's
        p = inspect.signature(fn).parameters
        assert (p["window"].default, p["hop"].default, p["vad_db"].default, p["min_speech"].default) == (
            _native.SEGMENT_WINDOW, _native.SEGMENT_HOP, _native.VAD_DB, _native.VAD_MIN_SPEECH)


def test_short_recordings(laq, tmp_path):
    short = write_wav(tmp_path / "short.wav", tone(180.0, SR, 0.7, amplitude=0.3), SR)
    segs = list(laq.segments(short))
    assert len(segs) == 1 and segs[0].label == "sad"
    assert (segs[0].start, segs[0].end_sample) == (0.0, int(0.7 * SR))
    tiny = write_wav(tmp_path / "tiny.wav", tone(180.0, SR, 0.05), SR)
    tl = laq.segment_file(tiny)
    assert tl.segments == [] and tl.error is not None
    assert tl.error.startswith(f"{tiny}: too short (0.050 s;"), tl.error
    with pytest.raises(AudioError, match="too short"):
        list(laq.segments(tiny))


def test_vad_options(laq, rec):
    path, _, _ = rec
    no_gate = list(laq.segments(path, vad=False))
    assert all(s.speech for s in no_gate)
    strict = list(laq.segments(path, min_speech=1.0))
    default = list(laq.segments(path))
    assert sum(s.speech for s in strict) < sum(s.speech for s in default)
    deaf = list(laq.segments(path, vad_db=-5.0))  # the tones are at -13 dBFS mean square
    assert not any(s.speech for s in deaf)
    with pytest.raises(ValueError, match="min_speech: must be a share"):
        laq.segment_file(path, min_speech=2.0)
    with pytest.raises(ValueError, match="hop: must be a step"):
        laq.stream(SR, window=1.0, hop=2.0)


def test_stream_bad_input(laq):
    s = laq.stream(SR, source="mic")
    s.push(np.zeros(1000, np.float32))
    bad = np.zeros(500, np.float32)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"^mic: NaN/inf sample at 0\.063 s \(sample 1007\)"):
        s.push(bad)
    assert s.samples == 1000  # the chunk was rejected whole
    s.push(np.zeros(10, np.float32))  # and the stream goes on
    with pytest.raises(ValueError, match="^mic: chunk dtype float64 differs from the stream's float32"):
        s.push(np.zeros(10))
    with pytest.raises(ValueError, match="^mic: samples must be float or PCM integers, got dtype bool"):
        s.push(np.zeros(10, bool))
    with pytest.raises(ValueError, match="^mic: sample rate changed from 16000 Hz to 44100 Hz"):
        s.push(np.zeros(10, np.float32), sample_rate=44100)
    with pytest.raises(ValueError, match="^mic: samples must be 1-D mono"):
        s.push(np.zeros((2, 10), np.float32))
    s.push(np.zeros(10, np.float32), sample_rate=16000)
    s.push(tone(600.0, SR, 1.0))
    assert len(s.flush()) == 1
    with pytest.raises(ValueError, match="push after flush"):
        s.push(np.zeros(10, np.float32))
    for rate in (16000.0, -5, 10**12):  # also those a C integer cannot hold: no OverflowError
        with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
            laq.stream(rate)
        with pytest.raises(AudioError, match="^waveform: sample_rate must be a positive integer"):
            list(laq.segments(np.zeros(16000, np.float32), sample_rate=rate))
    with pytest.raises(AudioError, match="unsupported sample rate"):
        laq.stream(500)
    # the native layer refuses non-float arrays outright
    native = _native.Segmenter(laq._native, SR)
    with pytest.raises(TypeError, match="samples must be a float numpy array, got dtype int16"):
        native.push(np.zeros(10, np.int16))
    with pytest.raises(AudioError, match="NaN/inf"):
        list(laq.segments(np.full(40000, np.inf, np.float32), sample_rate=SR))


def test_truncated_file_keeps_the_windows_before_the_damage(laq, rec, tmp_path):
    path, _, _ = rec
    full = laq.segment_file(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * SR * 9])  # 9.0 s of the declared 21 s
    tl = laq.segment_file(cut)
    assert tl.error == f"{cut}: truncated audio (data ends at 9.000 s of the 21.000 s the header declares)"
    # windows whose frames (and the resampler's look-ahead) end before the damage are unchanged
    before = [s for s in full.segments if s.end <= 9.0 - 0.1]
    assert len(before) >= 6
    assert [Segment(**{**s.__dict__, "path": str(cut)}) for s in before] == tl.segments[: len(before)]
    assert tl.segments[-1].end <= 9.0 + 1e-9
    with pytest.raises(AudioError, match="truncated audio"):
        for _ in laq.segments(cut):
            pass
    # a damaged body (garbage where the data chunk says samples are) still decodes as PCM:
    # a corrupt header is the unreadable case: no segments, one error line
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    tl = laq.segment_file(junk)
    assert tl.segments == [] and tl.error.startswith(f"{junk}: ")


def test_summary_shares_the_overlap_by_nearest_centre():
    def seg(a: float, b: float, label: str) -> Segment:
        speech = label != "silence"
        return Segment(a, b, label, 0.9 if speech else None, {}, speech)

    segs = [seg(0, 2, "sad"), seg(1, 3, "sad"), seg(2, 4, "silence"), seg(3, 5, "angry")]
    s = summarize(segs)
    # centres 1, 2, 3, 4: sad owns 0..2.5, silence 2.5..3.5, angry 3.5..5
    assert s.emotion_seconds == {"sad": 2.5, "angry": 1.5}
    assert s.speech_seconds == 4.0 and s.duration == 5.0
    assert s.emotions == {"sad": 2.5 / 4.0, "angry": 1.5 / 4.0}
    assert summarize([]).emotions == {}


# --- CLI ---------------------------------------------------------------------------------


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["serlaq", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return (0 if exc.value.code is None else int(exc.value.code)), out.out, out.err


def test_cli_segments_every_format(laq, rec, capsys, monkeypatch, tmp_path):
    path, _, _ = rec
    model = laq.path
    segs = laq.segment_file(path, top_k=2).segments
    code, out, err = run_cli(["predict", model, path, "--segments", "--top-k", "2"], capsys, monkeypatch)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(segs) + 1
    first = lines[0].split("\t")
    assert first[:4] == [str(path), "0.000", f"{segs[0].end:.3f}", "sad"] and len(first) == 6
    silent = next(i for i, s in enumerate(segs) if not s.speech)
    assert lines[silent].split("\t")[3:] == ["silence", "-"]
    assert lines[-1].startswith(f"{path}\tsummary\t{len(segs)} segments (")

    code, out, _ = run_cli(["predict", model, path, "--segments", "--format", "jsonl"], capsys, monkeypatch)
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(objs) == len(segs) + 1
    assert objs[0]["label"] == "sad" and objs[0]["path"] == str(path) and objs[0]["speech"] is True
    assert objs[-1]["summary"]["segments"] == len(segs)
    assert set(objs[-1]["summary"]["emotions"]) == {"sad", "angry", "neutral"}
    # each speech window carries its out-of-domain score, as the library's segments do; silence none
    assert [o.get("ood") for o in objs[:-1]] == [s.ood for s in segs]
    assert all((s.ood is None) == (not s.speech) for s in segs) and any(s.speech for s in segs)
    assert segs[0].to_dict()["ood"] == segs[0].ood

    code, out, _ = run_cli(["predict", model, path, "--segments", "--format", "json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out) == objs

    code, out, err = run_cli(["predict", model, path, "--segments", "--format", "csv", "--hop", "0.5"], capsys, monkeypatch)
    rows = out.strip().splitlines()
    assert code == 0 and rows[0] == "path,start,end,label,confidence,speech,voiced,error,p_angry,p_neutral,p_sad,ood"
    assert len(rows) - 1 == len(laq.segment_file(path, hop=0.5).segments)
    assert err.startswith(f"{path}\tsummary\t")  # the summary goes to stderr: stdout stays one table


def test_cli_segments_errors_and_damage(laq, rec, capsys, monkeypatch, tmp_path):
    path, _, _ = rec
    model = laq.path
    code, _, err = run_cli(["predict", model, path, "--window", "3"], capsys, monkeypatch)
    assert code == 2 and "--window: only with --segments" in err
    code, _, err = run_cli(["predict", model, path, "--segments", "--no-vad", "--vad-db", "-40"], capsys, monkeypatch)
    assert code == 2 and "--no-vad: cannot be combined" in err
    code, _, err = run_cli(["predict", model, path, "--segments", "--hop", "5"], capsys, monkeypatch)
    assert code == 2 and "error: --hop: must be a step in seconds within (0, window = 2]" in err
    code, _, err = run_cli(["predict", model, path, "--segments", "--vad-db", "1"], capsys, monkeypatch)
    assert code == 2 and "error: --vad-db: " in err
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[: 44 + 2 * SR * 9])
    code, out, err = run_cli(["predict", model, cut, path, "--segments", "--format", "jsonl"], capsys, monkeypatch)
    assert code == 1
    assert err.strip() == f"serlaq: error: {cut}: truncated audio (data ends at 9.000 s of the 21.000 s the header declares)"
    objs = [json.loads(line) for line in out.splitlines()]
    errors = [o for o in objs if "error" in o]
    assert len(errors) == 1 and errors[0]["path"] == str(cut)
    assert sum(1 for o in objs if "summary" in o) == 2  # the damaged file keeps its windows and summary
    assert sum(1 for o in objs if o.get("path") == str(cut) and "label" in o) >= 7


def test_cli_plot(laq, rec, capsys, monkeypatch, tmp_path):
    path, _, _ = rec
    png = tmp_path / "timeline.png"
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        code, _, err = run_cli(["predict", laq.path, path, path, "--segments", "--plot", png], capsys, monkeypatch)
        assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, _, err = run_cli(["predict", laq.path, path, "--segments", "--plot", tmp_path / "x.png"], capsys, monkeypatch)
    assert code == 1 and err.strip() == 'serlaq: error: --plot needs matplotlib: pip install "serlaq[plot]"'
    assert not (tmp_path / "x.png").exists()


def test_wav_reader_sanity(rec):
    path, x, _ = rec  # the helpers agree with the stdlib reader (what the stream tests push)
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.array_equal(data, pcm16(x))
