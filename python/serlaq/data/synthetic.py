"""A seeded synthetic emotional-speech corpus: the demo's data and the tests' data.

Each clip is a short "utterance" from a source-filter model of voiced speech:

- source: a Rosenberg glottal pulse train (differentiated: lip radiation) whose period
  follows an f0 contour (speaker base pitch x emotion scale, declination, pitch accents
  on stressed syllables, tremor) with per-period jitter and shimmer, plus aspiration
  noise (breathiness) gated by the glottal flow;
- filter: per syllable a vowel's formants F1-F4 (scaled by the speaker's vocal tract),
  a spectral tilt, all as one FIR response applied by FFT convolution;
- syllables with raised-cosine envelopes and pauses at an emotion-dependent tempo,
  fricative noise onsets, a background noise floor and a clip gain.

Emotions differ in pitch (mean, range, contour), tempo, energy, jitter/shimmer, tilt,
breathiness and glottal open quotient; every parameter also varies per speaker and per
clip, so the classes overlap: an MLP on the 180 features learns them well but not
perfectly. Files are PCM16 WAV in the folder layout `root/<label>/<speaker>/*.wav` that
`discover(root, "folder")` (and "auto") reads. The bytes depend only on the parameters.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from serlaq.errors import DataError

# Bump whenever the generated audio changes for the same parameters.
GENERATOR_VERSION = 3
MARKER = "serlaq-synthetic.json"

EMOTIONS: tuple[str, ...] = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")


@dataclass(frozen=True)
class Profile:
    """Mean acoustic settings of one emotion (clips scatter around them)."""

    f0_scale: float  # x speaker base f0
    f0_range: float  # semitones of pitch-accent excursion
    f0_slope: float  # semitones of declination over the utterance (negative: falling)
    rate: float  # syllables per second
    energy_db: float  # level relative to neutral
    jitter: float  # relative sd of the period, per period
    shimmer: float  # relative sd of the amplitude, per period
    tilt_db: float  # spectral slope above 500 Hz, dB per octave
    breath: float  # aspiration noise relative to the glottal pulse
    open_quotient: float  # fraction of a period the glottis is open (low: pressed voice)
    tremor: float = 0.0  # semitones of 6-8 Hz pitch tremor
    formant_shift: float = 1.0  # x F1 (open / smiling vs. lax)
    f2_shift: float = 1.0  # x F2


PROFILES: dict[str, Profile] = {
    "neutral": Profile(1.00, 2.5, -2.0, 4.2, 0.0, 0.006, 0.04, -9.0, 0.03, 0.55),
    "angry": Profile(1.30, 4.5, -3.0, 5.0, 6.0, 0.012, 0.08, -5.0, 0.01, 0.40, formant_shift=1.08),
    "happy": Profile(1.40, 6.5, 1.0, 4.8, 3.0, 0.008, 0.05, -7.0, 0.03, 0.50, formant_shift=1.05, f2_shift=1.06),
    "fear": Profile(1.50, 3.0, 0.5, 5.5, -1.0, 0.020, 0.10, -8.0, 0.08, 0.55, tremor=0.6),
    "sad": Profile(0.90, 1.5, -2.5, 3.0, -5.0, 0.010, 0.06, -13.0, 0.08, 0.65, formant_shift=0.95),
    "boredom": Profile(0.88, 1.0, -1.0, 3.4, -3.0, 0.006, 0.05, -11.0, 0.04, 0.60, formant_shift=0.96),
    "disgust": Profile(0.95, 3.5, -4.0, 3.2, 0.0, 0.012, 0.07, -9.0, 0.05, 0.55, f2_shift=0.92),
    "surprise": Profile(1.55, 7.0, 4.0, 4.5, 2.0, 0.008, 0.05, -7.0, 0.03, 0.50, formant_shift=1.06),
    "calm": Profile(0.95, 1.8, -1.5, 3.6, -3.0, 0.005, 0.04, -11.0, 0.05, 0.60),
}

# Vowel formants (Hz) of an adult male voice; speakers scale them by vocal-tract length.
_VOWELS = np.array(
    [
        [730, 1090, 2440, 3400],  # a
        [270, 2290, 3010, 3700],  # i
        [300, 870, 2240, 3300],  # u
        [530, 1840, 2480, 3500],  # e
        [570, 840, 2410, 3400],  # o
        [660, 1720, 2410, 3500],  # ae
        [500, 1500, 2500, 3500],  # schwa
    ],
    dtype=np.float64,
)
_BANDWIDTHS = np.array([70.0, 100.0, 140.0, 180.0])
_FIR = 1024  # formant impulse responses decay well within this many samples


@dataclass(frozen=True)
class Speaker:
    name: str
    f0: float  # base pitch, Hz
    tract: float  # formant scale (shorter vocal tract: higher)
    rate: float  # tempo factor
    tilt_db: float  # offset of spectral tilt
    breath: float  # offset of breathiness
    level_db: float  # habitual loudness


def _speakers(n: int, seed: int) -> list[Speaker]:
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1_000_003, i])
        female = i % 2 == 0
        out.append(
            Speaker(
                name=f"{'f' if female else 'm'}{i + 1:02d}",
                f0=float((205.0 if female else 115.0) * np.exp(rng.normal(0, 0.10))),
                tract=float((1.15 if female else 1.0) * np.exp(rng.normal(0, 0.04))),
                rate=float(np.exp(rng.normal(0, 0.10))),
                tilt_db=float(rng.normal(0, 1.5)),
                breath=float(abs(rng.normal(0, 0.02))),
                level_db=float(rng.normal(0, 2.0)),
            )
        )
    return out


def _clip_params(p: Profile, spk: Speaker, rng: np.random.Generator) -> dict[str, float]:
    """One clip's settings: the emotion's mean, the speaker's habits, per-clip scatter.

    The scatter sizes are tuned so that the demo's MLP on the 180 features reaches about
    85% test accuracy on a 7 x 35-clip corpus (72-96% over run seeds 0-5; 25 test clips):
    learnable, not trivial. Speakers and random syllable/vowel content add the rest.
    """

    def lognorm(sd: float) -> float:
        return float(np.exp(rng.normal(0, sd)))

    return {
        "f0": spk.f0 * p.f0_scale * lognorm(0.025),
        "f0_range": p.f0_range * lognorm(0.07),
        "f0_slope": p.f0_slope + rng.normal(0, 0.3),
        "rate": p.rate * spk.rate * lognorm(0.03),
        "energy_db": p.energy_db + spk.level_db + rng.normal(0, 0.6),
        "jitter": p.jitter * lognorm(0.07),
        "shimmer": p.shimmer * lognorm(0.07),
        "tilt_db": p.tilt_db + spk.tilt_db + rng.normal(0, 0.4),
        "breath": max(0.0, p.breath + spk.breath) * lognorm(0.1),
        "open_quotient": float(np.clip(p.open_quotient + rng.normal(0, 0.0125), 0.3, 0.8)),
        "tremor": p.tremor * lognorm(0.07),
        "f1": spk.tract * p.formant_shift * lognorm(0.008),
        "f2": spk.tract * p.f2_shift * lognorm(0.008),
    }


def _formant_ir(formants: np.ndarray, tilt_db: float, sr: int) -> np.ndarray:
    """Impulse response of a cascade of 2-pole resonators plus a spectral tilt."""
    freqs = np.fft.rfftfreq(_FIR, 1.0 / sr)
    z1 = np.exp(-2j * np.pi * freqs / sr)
    h = np.ones_like(z1)
    for f, bw in zip(formants, _BANDWIDTHS, strict=True):
        f = min(f, 0.45 * sr)
        r = np.exp(-np.pi * bw / sr)
        c = 2 * r * np.cos(2 * np.pi * f / sr)
        h *= (1 - c + r * r) / (1 - c * z1 + r * r * z1 * z1)
    h *= (np.maximum(freqs, 500.0) / 500.0) ** (tilt_db / 6.02)
    return np.fft.irfft(h, _FIR)


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def _raised_cosine(n: int, ramp: int) -> np.ndarray:
    env = np.ones(n)
    ramp = max(1, min(ramp, n // 2))
    edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[:ramp] = edge
    env[n - ramp :] = edge[::-1]
    return env


def synthesize_clip(emotion: str, speaker: Speaker, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One utterance as float64 samples in [-1, 1]."""
    sr = sample_rate
    p = _clip_params(PROFILES[emotion], speaker, rng)
    n = int(round(seconds * rng.uniform(0.85, 1.15) * sr))
    t = np.arange(n) / sr

    # Syllable plan: nucleus start/length, stress, vowel, fricative onset.
    syllables = []
    pos = rng.uniform(0.03, 0.08)
    period = 1.0 / p["rate"]
    while pos < seconds * 0.95:
        length = period * rng.uniform(0.45, 0.75)
        syllables.append((pos, min(length, n / sr - pos - 0.01), rng.random() < 0.35, int(rng.integers(len(_VOWELS))), rng.random() < 0.4))
        pos += period * rng.uniform(0.8, 1.25) + (rng.uniform(0.05, 0.2) if rng.random() < 0.15 else 0.0)
    syllables = [s for s in syllables if s[1] > 0.03]

    # f0 contour in semitones around the clip's mean pitch.
    semis = p["f0_slope"] * (t / t[-1] - 0.5)
    for start, length, stressed, _, _ in syllables:
        if stressed:
            centre, width = start + 0.5 * length, 0.7 * length
            bump = np.clip(1 - ((t - centre) / width) ** 2, 0, None)
            semis += p["f0_range"] * rng.uniform(0.6, 1.2) * bump
    semis += p["f0_range"] * 0.15 * np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t + rng.uniform(0, 2 * np.pi))
    if p["tremor"] > 0:
        semis += p["tremor"] * np.sin(2 * np.pi * rng.uniform(6, 8) * t)
    f0 = p["f0"] * 2.0 ** (semis / 12)

    # Glottal periods with jitter and shimmer, then a Rosenberg pulse inside each period.
    jitter = 1 + p["jitter"] * rng.standard_normal(int(n * f0.max() / sr * 2) + 16)
    starts, lengths = [], []
    s = 0.0
    while s < n:
        length = max(sr / (f0[int(s)] * jitter[len(starts) % jitter.size]), 2.0)
        starts.append(s)
        lengths.append(length)
        s += length
    starts_a, lengths_a = np.asarray(starts), np.asarray(lengths)
    amps = np.clip(1 + p["shimmer"] * rng.standard_normal(starts_a.size), 0.2, None)
    idx = np.searchsorted(starts_a, np.arange(n), side="right") - 1
    phase = (np.arange(n) - starts_a[idx]) / lengths_a[idx]
    oq = p["open_quotient"]
    tp, tn = 0.6 * oq, 0.4 * oq
    flow = np.where(
        phase < tp,
        0.5 * (1 - np.cos(np.pi * phase / tp)),
        np.where(phase < tp + tn, np.cos(0.5 * np.pi * (phase - tp) / tn), 0.0),
    )
    flow *= amps[idx]
    source = np.diff(flow, prepend=0.0) * (f0 / 100.0) ** -0.5  # radiation; keep level ~ f0-independent
    source += p["breath"] * 0.15 * flow * rng.standard_normal(n)

    out = np.zeros(n + _FIR)
    for start, length, _, vowel, fricative in syllables:
        a, m = int(start * sr), int(length * sr)
        formants = _VOWELS[vowel] * np.array([p["f1"], p["f2"], p["f1"], p["f1"]])
        env = _raised_cosine(m, int(0.025 * sr))
        seg = _fft_convolve(source[a : a + m] * env, _formant_ir(formants, p["tilt_db"], sr))
        out[a : a + seg.size] += seg
        if fricative and a > int(0.04 * sr):
            f_len = int(rng.uniform(0.03, 0.07) * sr)
            f_start = max(0, a - f_len)
            noise = rng.standard_normal(a - f_start) * _raised_cosine(a - f_start, int(0.01 * sr))
            centre = rng.uniform(3000, 6000) * p["f1"]
            band = np.array([centre, centre * 1.3, centre * 1.6, min(centre * 1.9, 0.45 * sr)])
            fric = _fft_convolve(noise, _formant_ir(band, 0.0, sr))
            voiced_rms = np.sqrt(np.mean(seg**2)) + 1e-12
            fric *= voiced_rms * rng.uniform(0.1, 0.3) / (np.sqrt(np.mean(fric**2)) + 1e-12)
            out[f_start : f_start + fric.size] += fric
    wave = out[:n]

    rms = np.sqrt(np.mean(wave**2)) or 1.0
    target = 10 ** ((-32.0 + p["energy_db"]) / 20)
    wave = wave * (target / rms)
    wave += 10 ** (rng.uniform(-70, -55) / 20) * rng.standard_normal(n)  # recording noise floor
    peak = np.abs(wave).max()
    if peak > 0.98:  # limit instead of clipping; loud classes stay loud
        wave *= 0.98 / peak
    return wave


def corpus_params(
    seed: int,
    clips_per_class: int,
    speakers: int,
    seconds: float,
    sample_rate: int,
    emotions: Sequence[str],
) -> dict[str, object]:
    """The parameters that determine a corpus (the marker file stores them)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "clips_per_class": int(clips_per_class),
        "speakers": int(speakers),
        "seconds": float(seconds),
        "sample_rate": int(sample_rate),
        "emotions": list(emotions),
    }


def generate_corpus(
    out_dir: str | Path,
    seed: int = 0,
    clips_per_class: int = 35,
    speakers: int = 4,
    seconds: float = 1.0,
    sample_rate: int = 22050,
    emotions: Sequence[str] = EMOTIONS,
) -> Path:
    """Write the synthetic corpus to `out_dir` (or reuse it) and return `out_dir`.

    Layout: `out_dir/<emotion>/<speaker>/<speaker>_<emotion>_<nnn>.wav`, PCM16 mono, plus
    `serlaq-synthetic.json` with the parameters. Clip k of an emotion is spoken by
    speaker k mod `speakers`. If `out_dir` already holds a complete corpus with the same
    parameters nothing is written. The corpus is built in a temporary sibling folder and
    renamed into place, so readers never see a half-written corpus, and concurrent
    callers (e.g. DDP ranks) with the same parameters agree on one result.
    """
    out_dir = Path(out_dir)
    emotions = list(emotions)
    unknown = [e for e in emotions if e not in PROFILES]
    if unknown:
        raise DataError(f"synthetic corpus: unknown emotion(s) {unknown} (available: {', '.join(PROFILES)})")
    if len(set(emotions)) != len(emotions) or not emotions:
        raise DataError(f"synthetic corpus: emotions must be distinct and non-empty, got {emotions}")
    if clips_per_class < 1 or speakers < 1 or not (0.2 <= seconds <= 30.0) or sample_rate < 8000:
        raise DataError(
            "synthetic corpus: need clips_per_class >= 1, speakers >= 1, 0.2 <= seconds <= 30, "
            f"sample_rate >= 8000 (got {clips_per_class}, {speakers}, {seconds}, {sample_rate})"
        )
    params = corpus_params(seed, clips_per_class, speakers, seconds, sample_rate, emotions)
    if is_complete(out_dir, params):
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise DataError(f"{out_dir}: exists and is not a serlaq synthetic corpus; refusing to overwrite it")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        files = _write_corpus(tmp, params)
        _write_marker(tmp, params, files)
        _install(tmp, out_dir, params)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _write_corpus(root: Path, params: dict) -> list[str]:
    seed, sr, seconds = params["seed"], params["sample_rate"], params["seconds"]
    spk = _speakers(params["speakers"], seed)
    files = []
    for emotion in params["emotions"]:
        # Seeded by the label's name, so a clip does not change when other emotions are added.
        label_key = int.from_bytes(emotion.encode(), "little")
        for k in range(params["clips_per_class"]):
            speaker = spk[k % len(spk)]
            rng = np.random.default_rng([seed, label_key, k])
            wave = synthesize_clip(emotion, speaker, seconds, sr, rng)
            rel = Path(emotion) / speaker.name / f"{speaker.name}_{emotion}_{k:03d}.wav"
            (root / rel.parent).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / rel), wave.astype(np.float32), sr, subtype="PCM_16", format="WAV")
            files.append(rel.as_posix())
    return files


def _write_marker(root: Path, params: dict, files: list[str]) -> None:
    body = json.dumps({"params": params, "files": files}, indent=1, sort_keys=True)
    (root / MARKER).write_text(body + "\n", encoding="utf-8")


def read_marker(root: str | Path) -> dict | None:
    """The marker of a synthetic corpus at `root`, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(root: str | Path, params: dict) -> bool:
    """True when `root` holds a finished corpus generated with exactly `params`."""
    marker = read_marker(root)
    if marker is None or marker.get("params") != params:
        return False
    return all((Path(root) / f).is_file() for f in marker.get("files", []))


def _install(tmp: Path, out_dir: Path, params: dict) -> None:
    old = None
    if out_dir.exists():
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        else:  # an outdated synthetic corpus: move it aside, then swap
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(out_dir, old)
            except FileNotFoundError:
                old = None
    try:
        os.rename(tmp, out_dir)
    except OSError:
        # Another process installed a corpus first; fine if it is the one we wanted.
        if not is_complete(out_dir, params):
            raise DataError(f"{out_dir}: could not install the synthetic corpus (the folder changed meanwhile)") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
