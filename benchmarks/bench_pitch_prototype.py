"""Would explicit pitch statistics help across corpora? A prototype before any runtime code.

    python benchmarks/bench_pitch_prototype.py --emodb ../shared/datasets/emodb --tess ../shared/datasets/tess

serlaq's features have no explicit pitch. The spread of a voice's pitch in semitones is a
speaker-independent arousal cue, so this measures, before a pitch tracker is written for
the runtime (with its own parity test), what it would buy: six numbers per clip from
librosa's `pyin` (60-600 Hz, 1024/256 at 16 kHz) on the voiced frames (the std and the
90th-10th percentile range of the pitch in semitones, the median |change| from frame to
frame, the voiced share, the slope, the mean voicing probability), appended to the default
preset's features (torch reference, cached). Classifier: the prototype of docs/features.md
(scikit-learn MLP 256-128-64, all of one corpus standardized with its own statistics).
Scored on the inner speakers only (EMODB -> TESS speaker OAF, TESS -> EMODB speakers 03,
08, 09, 10, 11), the labels both corpora share, paired per seed against the features alone.
Variants: `pitch` (the six), `pitch+level` (and the median pitch: a speaker's level),
`pitchonly` (the six alone). The pitch track is cached in --cache (about 15 CPU-minutes
for both corpora on the first run).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

INNER = {"emodb->tess": {"OAF"}, "tess->emodb": {"03", "08", "09", "10", "11"}}
VARIANTS = ("base", "pitch", "pitch+level", "pitchonly")


def track(path: str) -> tuple[str, Any]:
    import librosa
    import soundfile as sf

    try:
        y, sr = sf.read(path, always_2d=True)
    except Exception:  # an unreadable file gets no pitch: its row is dropped below
        return path, None
    y = y.mean(axis=1)
    if sr != 16000:
        y = librosa.resample(y, orig_sr=sr, target_sr=16000)
    f0, voiced, prob = librosa.pyin(y, fmin=60, fmax=600, sr=16000, frame_length=1024, hop_length=256)
    return path, (f0.astype(np.float32), voiced, prob.astype(np.float32))


def pitch_stats(t: Any, with_level: bool) -> list[float]:
    f0, voiced, prob = t
    semis = 12 * np.log2(f0[voiced & np.isfinite(f0)] / 100.0)
    if len(semis) < 3:
        semis = np.zeros(3)
    steps = np.abs(np.diff(semis))
    slope = np.polyfit(np.arange(len(semis)), semis, 1)[0]
    row = [semis.std(), np.percentile(semis, 90) - np.percentile(semis, 10), np.median(steps), voiced.mean(), 10 * slope, prob.mean()]
    return row + [float(np.median(semis))] if with_level else row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emodb", type=Path, required=True)
    ap.add_argument("--tess", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--cache", type=Path, default=Path("bench-pitch-tracks.pkl"))
    args = ap.parse_args()

    from sklearn.neural_network import MLPClassifier

    from serlaq.config import load_config
    from serlaq.data.cache import extract_features
    from serlaq.data.corpora import discover

    config = load_config(None)
    corpora = {}
    for name, root in (("emodb", args.emodb), ("tess", args.tess)):
        ex = extract_features(discover(root, name), config.features, config.data.cache_dir, progress=False)
        corpora[name] = (ex.clips, ex.X)
    tracks: dict[str, Any] = pickle.loads(args.cache.read_bytes()) if args.cache.exists() else {}
    key = lambda clip: str(Path(clip.path).resolve())  # noqa: E731  (the cache outlives the working directory)
    todo = [key(c) for clips, _ in corpora.values() for c in clips if key(c) not in tracks]
    if todo:
        with Pool() as pool:
            tracks.update(pool.imap_unordered(track, todo, chunksize=8))
        args.cache.write_bytes(pickle.dumps(tracks))
    shared = sorted({c.label for c in corpora["emodb"][0]} & {c.label for c in corpora["tess"][0]})

    def rows(clips: list[Any], X: np.ndarray, speakers: set[str] | None, variant: str) -> tuple[np.ndarray, np.ndarray]:
        keep = [i for i, c in enumerate(clips) if c.label in shared and tracks.get(key(c)) is not None
                and (speakers is None or c.speaker in speakers)]
        y = np.array([clips[i].label for i in keep])
        if variant == "base":
            return X[keep], y
        P = np.array([pitch_stats(tracks[key(clips[i])], variant == "pitch+level") for i in keep])
        return (P if variant == "pitchonly" else np.hstack([X[keep], P])), y

    uar: dict[tuple[str, str, int], float] = {}
    for seed in range(args.seeds):
        for direction, speakers in INNER.items():
            source, target = direction.split("->")
            for variant in VARIANTS:
                X, y = rows(*corpora[source], None, variant)
                Xt, yt = rows(*corpora[target], speakers, variant)
                mu, sd = X.mean(0), X.std(0) + 1e-6
                clf = MLPClassifier((256, 128, 64), max_iter=200, alpha=1e-3, random_state=seed).fit((X - mu) / sd, y)
                pred = clf.predict((Xt - mu) / sd)
                uar[(direction, variant, seed)] = 100 * float(np.mean([np.mean(pred[yt == k] == k) for k in shared]))
                print(f"{direction} {variant} seed {seed}: UAR {uar[(direction, variant, seed)]:.1f}", flush=True)
    print("\n| variant | " + " | ".join(f"{d} UAR | paired vs base" for d in INNER) + " |\n|---|" + "---|---|" * len(INNER))
    for variant in VARIANTS:
        cells = []
        for d in INNER:
            u = [uar[(d, variant, s)] for s in range(args.seeds)]
            p = [uar[(d, variant, s)] - uar[(d, "base", s)] for s in range(args.seeds)]
            cells.append(f"{statistics.mean(u):.1f} | " + ("–" if variant == "base" else f"{statistics.mean(p):+.1f} ({', '.join(f'{x:+.1f}' for x in p)})"))
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
