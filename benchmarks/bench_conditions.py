"""The shipped model under simulated rooms and microphones: its own test clips, degraded.

    python benchmarks/bench_conditions.py                     # the general model, configs/general.yaml's test split

Scores a `.laq` (default: the shipped `general`) on the test split of the run config that
trained it (default `configs/general.yaml`: the split is recomputed from the config and its
seed, so the clips were never trained or calibrated on), clean and with each clip passed
through one fixed condition built from the training augmentations (`serlaq.data.augment`,
the same code): additive white / pink noise at an SNR, a synthetic room, a telephone
channel (resampled through 8 kHz: a 0-4 kHz band, low cut at 300 Hz), microphone colour (a spectral tilt),
a quiet recording (-30 dB), a faster / slower voice (speed, pitch and tempo together), a
pause at each end (one second of room tone 45 dB below the clip: a recording started before
the speaker and stopped after), the clip cut tight to its loud part, and a phone's recording
format (AAC-LC in an M4A at 64 and 32 kbit/s), a recorder's (MP3 at 64 and 24 kbit/s,
8-bit PCM, mu-law, IMA ADPCM), a messenger's or a browser's (Opus in OGG at 24 and 12
kbit/s, in WebM at 32 kbit/s): the formats need `ffmpeg` on the PATH to encode, and are left out with
a note without it (serlaq decodes them itself).
Each condition's draws come from one seeded generator per clip (`--seed`), so a rerun gives
the same audio and the same figures.

Per condition, through the runtime (the files written as float WAV at the clip's own rate
and read back by `predict_files`, as a user's recordings would be): UAR, accuracy, the most
predicted label's share, mean confidence, ECE, the median out-of-domain score and the share
of clips above the model's threshold (the clips `serlaq predict` calls far from its training
data), then the same after `LaqModel.adapt` on that condition's unlabelled clips (what
`serlaq adapt` does). Paired differences are against the clean row of the same run.

The speakers are the training speakers (the general model's split is stratified, not
speaker-independent): this measures rooms and microphones, not new voices
(`bench_cross_corpus.py --protocol corpus` measures those).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> (what it is, the transform of (wave tensor, rate, generator))
Condition = Callable[[Any, int, Any], Any]

# conditions that are a file format, not a transform: name -> (suffix, ffmpeg's output arguments)
CODECS = {
    "aac-64": (".m4a", ["-c:a", "aac", "-b:a", "64k"]),
    "aac-32": (".m4a", ["-c:a", "aac", "-b:a", "32k"]),
    "mp3-64": (".mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "mp3-24": (".mp3", ["-c:a", "libmp3lame", "-b:a", "24k"]),
    "pcm-u8": (".wav", ["-c:a", "pcm_u8"]),
    "mulaw": (".wav", ["-c:a", "pcm_mulaw"]),
    "adpcm-ima": (".wav", ["-c:a", "adpcm_ima_wav"]),
    "opus-24": (".opus", ["-c:a", "libopus", "-b:a", "24k"]),
    "opus-12": (".opus", ["-c:a", "libopus", "-b:a", "12k", "-application", "voip"]),
    "webm-32": (".webm", ["-c:a", "libopus", "-b:a", "32k"]),
}


def conditions() -> dict[str, tuple[str, Condition]]:
    from serlaq.data import augment as A

    return {
        "clean": ("as recorded", lambda x, r, g: x),
        "noise-30": ("white noise, 30 dB SNR", lambda x, r, g: A.noise(x, r, 30.0, 0.0, g)),
        "noise-20": ("white noise, 20 dB SNR", lambda x, r, g: A.noise(x, r, 20.0, 0.0, g)),
        "noise-10": ("white noise, 10 dB SNR", lambda x, r, g: A.noise(x, r, 10.0, 0.0, g)),
        "pink-10": ("pink noise, 10 dB SNR", lambda x, r, g: A.noise(x, r, 10.0, 1.0, g)),
        "room": ("synthetic room, RT60 0.6 s, direct-to-reverberant 3 dB", lambda x, r, g: A.reverb(x, r, 0.6, 3.0, g)),
        "telephone": ("resampled through 8 kHz (0-4 kHz band), low cut at 300 Hz", lambda x, r, g: A.eq(A.band_limit(x, r, 8000), r, 0.0, 300.0)),
        "bright-mic": ("tilt +3 dB per octave around 1 kHz", lambda x, r, g: A.eq(x, r, 3.0, 0.0)),
        "dark-mic": ("tilt -3 dB per octave around 1 kHz", lambda x, r, g: A.eq(x, r, -3.0, 0.0)),
        "padded": ("1 s pause at each end (noise 45 dB below the clip)", lambda x, r, g: pad(x, r, 1.0, 45.0, g)),
        "padded-noisy": ("1 s pause at each end (noise 25 dB below the clip: a noisy room)", lambda x, r, g: pad(x, r, 1.0, 25.0, g)),
        "tight": ("leading and trailing quiet cut (20 ms blocks 35 dB below the loudest)", lambda x, r, g: tight(x, r, 35.0)),
        "quiet": ("30 dB quieter", lambda x, r, g: x * 10 ** (-30 / 20)),
        "faster": ("speed x1.1 (pitch and tempo)", lambda x, r, g: A.speed(x, r, 1.1)),
        "slower": ("speed x0.9 (pitch and tempo)", lambda x, r, g: A.speed(x, r, 0.9)),
        "aac-64": ("AAC-LC in M4A at 64 kbit/s (a phone's voice memo)", lambda x, r, g: x),
        "aac-32": ("AAC-LC in M4A at 32 kbit/s", lambda x, r, g: x),
        "mp3-64": ("MP3 at 64 kbit/s (LAME)", lambda x, r, g: x),
        "mp3-24": ("MP3 at 24 kbit/s (LAME; a low-pass near 5.5 kHz)", lambda x, r, g: x),
        "pcm-u8": ("8-bit PCM WAV (quantisation noise about 53 dB under full scale)", lambda x, r, g: x),
        "mulaw": ("mu-law WAV (8 bits, logarithmic: telephone corpora)", lambda x, r, g: x),
        "adpcm-ima": ("IMA ADPCM WAV (4 bits a sample: a voice recorder's)", lambda x, r, g: x),
        "opus-24": ("Opus in OGG at 24 kbit/s (a messenger's voice note)", lambda x, r, g: x),
        "opus-12": ("Opus in OGG at 12 kbit/s, VoIP mode (SILK: a voice note on a poor connection)", lambda x, r, g: x),
        "webm-32": ("Opus in WebM at 32 kbit/s (a browser's MediaRecorder)", lambda x, r, g: x),
    }


def pad(x: Any, rate: int, seconds: float, below_db: float, g: Any) -> Any:
    """`seconds` of white noise `below_db` under the clip's RMS before and after it."""
    import torch

    n = int(rate * seconds)
    level = x.square().mean().sqrt() * 10 ** (-below_db / 20)
    return torch.cat([torch.randn(n, generator=g) * level, x, torch.randn(n, generator=g) * level])


def tight(x: Any, rate: int, below_db: float) -> Any:
    """The clip from its first to its last 20 ms block within `below_db` of the loudest."""
    block = max(1, rate // 50)
    n = len(x) // block
    rms = x[: n * block].reshape(n, block).square().mean(-1).sqrt()
    loud = (rms >= rms.max() * 10 ** (-below_db / 20)).nonzero().flatten()
    return x[int(loud[0]) * block : (int(loud[-1]) + 1) * block]


def test_clips(config_path: Path, sets: list[str], split: str = "test") -> list[Any]:
    """The `split` clips (test by default) of the run `config_path` describes (recomputed from its seed)."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule

    dm = SERDataModule(load_config(config_path, ["trainer.enable_progress_bar=false", *sets]))
    dm.setup()
    return dm.split_clips(split)


def degrade(clips: list[Any], transform: Condition, seed: int, out: Path,
            codec: tuple[str, list[str]] | None = None) -> list[Path]:
    """Each clip through `transform`, written as a float WAV at its own rate under `out`
    (with `codec`, (suffix, arguments): encoded by ffmpeg into that format instead)."""
    import subprocess

    import soundfile as sf
    import torch

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clip in enumerate(clips):
        wave, rate = sf.read(str(clip.path), dtype="float32", always_2d=True)
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        y = transform(torch.from_numpy(np.ascontiguousarray(wave.mean(axis=1))), rate, g)
        path = out / f"{i:05d}.wav"
        sf.write(str(path), np.asarray(y, dtype=np.float32), rate, subtype="FLOAT")
        if codec is not None:
            suffix, arguments = codec
            encoded = path.with_name(f"{i:05d}-coded{suffix}")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), *arguments, str(encoded)], check=True)
            path.unlink()
            path = encoded
        paths.append(path)
    return paths


def score(model: Any, paths: list[Path], clips: list[Any]) -> dict[str, Any]:
    """Runtime scores on the degraded files, answering among the labels the clips have."""
    from dataclasses import replace

    from serlaq.cross_corpus import cross_scores

    labels = [lab for lab in model.labels if lab in {c.label for c in clips}]
    row = cross_scores(model, [replace(c, path=p) for p, c in zip(paths, clips)], labels)
    ood = model.ood_scores(np.stack([model.features_from_file(p) for p in paths]))
    row["ood_median"] = float(statistics.median(ood))
    row["far_share"] = float(np.mean([s > model.ood_threshold for s in ood]))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="general", help="a .laq path or the name general (default)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "general.yaml", help="the run config that trained --model (its test split is scored)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="config override, as the model was trained")
    ap.add_argument("--conditions", nargs="+", default=None, help="subset of the conditions (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="the conditions' random draws")
    ap.add_argument("--no-adapt", dest="adapt", action="store_false", help="skip the adapted rows")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()

    import serlaq

    model = serlaq.load(args.model)
    table = conditions()
    names = args.conditions or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"--conditions: unknown {unknown} (known: {', '.join(table)})")
    if "clean" not in names:
        names.insert(0, "clean")
    if shutil.which("ffmpeg") is None and any(n in CODECS for n in names):
        print(f"no ffmpeg on the PATH to encode {', '.join(n for n in names if n in CODECS)}: left out", file=sys.stderr)
        names = [n for n in names if n not in CODECS]
    clips = test_clips(args.config, args.sets)
    print(f"{args.model}: {len(clips)} test clips of {args.config.name}; threshold {model.ood_threshold:.2f}", file=sys.stderr, flush=True)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-conditions-") as tmp:
        for name in names:
            paths = degrade(clips, table[name][1], args.seed, Path(tmp) / name, CODECS.get(name))
            row = {"condition": name, "what": table[name][0], "zero_shot": score(model, paths, clips)}
            if args.adapt:
                row["adapted"] = score(model.adapt(paths, source=f"bench_conditions {name}"), paths, clips)
            rows[name] = row
            z = row["zero_shot"]
            print(f"{name}: UAR {100 * z['uar']:.1f} top {100 * z['top_share']:.0f}% conf {z['mean_confidence']:.2f} ECE {z['ece']:.2f} far {100 * z['far_share']:.0f}%", file=sys.stderr, flush=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(list(rows.values()), indent=1) + "\n")


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    clean = rows["clean"]["zero_shot"]
    adapted = all("adapted" in r for r in rows.values())
    head = "| condition | UAR % | vs clean | top label % | mean confidence | ECE | median ood | far % |"
    print("\n" + head + (" adapted UAR % | adapted ECE |" if adapted else ""))
    print("|---" * (head.count("|") - 1 + (2 if adapted else 0)) + "|")
    for name, r in rows.items():
        z = r["zero_shot"]
        delta = "–" if name == "clean" else f"{100 * (z['uar'] - clean['uar']):+.1f}"
        line = (f"| {name} ({r['what']}) | {100 * z['uar']:.1f} | {delta} | {100 * z['top_share']:.0f} ({z['top_label']}) | "
                f"{z['mean_confidence']:.2f} | {z['ece']:.2f} | {z['ood_median']:.2f} | {100 * z['far_share']:.0f} |")
        if adapted:
            a = r["adapted"]
            line += f" {100 * a['uar']:.1f} | {a['ece']:.2f} |"
        print(line)


if __name__ == "__main__":
    main()
