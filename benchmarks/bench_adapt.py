"""What `serlaq adapt` and the calibration temperature do on a corpus a model never heard.

For each model: zero-shot and adapted (statistics re-estimated on all of the target's
audio, its labels unused), scored on the labels model and corpus share: UAR, accuracy, the
share of the most predicted label, mean confidence and ECE (15 bins) with the stored
temperature and without it (T = 1), and the median out-of-domain score. `--curve` also
adapts on N random target clips (3 draws each) to show how much audio adaptation needs.
`--long SECONDS` also adapts on the same audio as long recordings: each speaker's clips in
a shuffled order (seed 0) joined into recordings of about SECONDS (the row
`adapted_long`), which `serlaq adapt` cuts into 2-s speech windows.

    python benchmarks/bench_adapt.py --target ../shared/datasets/tess --dataset tess \
        runs/emodb-s0/model.laq runs/emodb-s1/model.laq runs/emodb-s2/model.laq --curve

Needs no torch. Prints one Markdown table (mean ± sd over the models) and writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from serlaq.data.corpora import discover
from serlaq.metrics import confidence_scores, label_scores, top_label_share
from serlaq.runtime import LaqModel
from serlaq.runtime.adapt import adapt


def softmax(z: np.ndarray, t: float) -> np.ndarray:
    z = z / t
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def score(model: LaqModel, feats: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Scores on the shared labels (the model's other labels are not offered)."""
    cols = [model.labels.index(lab) for lab in labels]
    logits = np.asarray(model.logits(feats), dtype=np.float64)[:, cols]
    out: dict[str, float] = {}
    for name, t in (("", model.temperature), ("_t1", 1.0)):
        p = softmax(logits, t)
        conf = confidence_scores(p, y)
        out["ece" + name] = conf["ece"]
        out["confidence" + name] = conf["mean_confidence"]
    pred = logits.argmax(axis=1)
    s = label_scores(y, pred, labels)
    out.update(uar=s.uar, accuracy=s.accuracy, top_share=top_label_share(pred, len(labels))[1])
    out["ood_median"] = float(np.median(model.ood_scores(feats)))
    return out


def joined(clips: list, seconds: float, out: Path) -> list[str]:
    """Each speaker's clips, in a shuffled order (seed 0), joined into WAV recordings of
    about `seconds` (mono at the first clip's rate; a clip at another rate is resampled)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    paths = []
    speakers = sorted({c.speaker for c in clips})
    for s_i, speaker in enumerate(speakers):
        mine = [c for c in clips if c.speaker == speaker]
        random.Random(0).shuffle(mine)
        rate, parts, total = None, [], 0.0

        def flush() -> None:
            if parts:
                p = out / f"{s_i}-{len(paths)}.wav"
                sf.write(str(p), np.concatenate(parts), rate, subtype="FLOAT")
                paths.append(str(p))
                parts.clear()

        for c in mine:
            try:
                x, r = sf.read(str(c.path), dtype="float32", always_2d=True)
            except Exception as exc:  # an unreadable file: left out, named
                print(f"skip: {c.path}: {exc}", file=sys.stderr)
                continue
            x = x.mean(axis=1)
            rate = rate or r
            if r != rate:
                x = resample_poly(x, rate, r).astype(np.float32)
            parts.append(x)
            total += len(x) / rate
            if total >= seconds:
                flush()
                total = 0.0
        flush()
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--target", type=Path, required=True)
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--curve", action="store_true", help="also adapt on N random target clips")
    ap.add_argument("--long", type=float, metavar="SECONDS",
                    help="also adapt on the clips joined into recordings of about SECONDS")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    clips = discover(args.target, args.dataset)
    long_dir = tempfile.TemporaryDirectory() if args.long else None
    recordings = joined(clips, args.long, Path(long_dir.name)) if long_dir else []
    rows = []
    for path in args.models:
        model = LaqModel.load(path)
        labels = [lab for lab in model.labels if any(c.label == lab for c in clips)]
        kept = [c for c in clips if c.label in labels]
        feats, y, paths = [], [], []
        for c in kept:
            try:
                feats.append(model.features_from_file(c.path))
            except Exception as exc:  # an unreadable file: left out, named
                print(f"skip: {exc}", file=sys.stderr)
                continue
            y.append(labels.index(c.label))
            paths.append(str(c.path))
        x, yy = np.stack(feats), np.asarray(y)
        adapted = model.adapt(paths, source=str(args.target))
        row = {"model": str(path), "temperature": model.temperature, "ood_threshold": model.ood_threshold,
               "clips": len(y), "labels": labels, "zero_shot": score(model, x, yy, labels),
               "adapted": score(adapted, x, yy, labels)}
        if recordings:
            from_long = model.adapt(recordings, source="joined")
            row["adapted_long"] = score(from_long, x, yy, labels)
            row["long"] = {"recordings": len(recordings), "windows": from_long.adaptation.clips,
                           "speech_seconds": from_long.adaptation.speech_seconds}
        if args.curve:
            curve = {}
            for n in (5, 10, 20, 40, 80, 160):
                uars = []
                for draw in range(3):
                    pick = random.Random(draw).sample(paths, min(n, len(paths)))
                    m, _ = adapt(model, pick, min_clips=1, min_speech_seconds=0.0)
                    uars.append(score(m, x, yy, labels)["uar"])
                curve[n] = uars
            row["curve"] = curve
        rows.append(row)
        print(f"{path}: zero-shot UAR {row['zero_shot']['uar']:.3f}, adapted {row['adapted']['uar']:.3f}", file=sys.stderr)

    def ms(key: str, what: str, scale: float = 100.0, fmt: str = ".1f") -> str:
        v = np.array([r[key][what] for r in rows]) * scale
        return f"{v.mean():{fmt}} ± {v.std(ddof=1) if len(v) > 1 else 0.0:{fmt}}"

    print(f"target {args.target} ({rows[0]['clips']} clips, labels {', '.join(rows[0]['labels'])}), {len(rows)} models")
    print("| | UAR | accuracy | top label share | ECE (stored T) | ECE (T = 1) | confidence (stored T) | confidence (T = 1) | median OOD score |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in ("zero_shot", "adapted", *(["adapted_long"] if recordings else [])):
        print(f"| {key} | {ms(key, 'uar')} | {ms(key, 'accuracy')} | {ms(key, 'top_share')} | "
              f"{ms(key, 'ece', 1, '.3f')} | {ms(key, 'ece_t1', 1, '.3f')} | {ms(key, 'confidence', 1, '.3f')} | "
              f"{ms(key, 'confidence_t1', 1, '.3f')} | {ms(key, 'ood_median', 1, '.2f')} |")
    temps = ", ".join(f"{r['temperature']:.3f}" for r in rows)
    thresholds = ", ".join(f"{r['ood_threshold']:.3f}" for r in rows)
    print(f"temperatures: {temps}; OOD thresholds: {thresholds}")
    if recordings:
        long = rows[0]["long"]
        diff = np.array([r["adapted_long"]["uar"] - r["adapted"]["uar"] for r in rows]) * 100
        print(f"adapted_long: {long['recordings']} recordings of about {args.long:g} s, cut into {long['windows']} "
              f"speech windows; UAR against adapted on the clips, paired: {diff.mean():+.1f} ± "
              f"{diff.std(ddof=1) if len(diff) > 1 else 0.0:.1f}")
    if args.curve:
        print("\nadapted UAR by clips used (mean over models x 3 draws):")
        for n in rows[0]["curve"]:
            v = np.array([u for r in rows for u in r["curve"][n]]) * 100
            print(f"  {n:>4} clips: {v.mean():.1f} ± {v.std(ddof=1):.1f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
