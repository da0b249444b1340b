"""Would a lead-in line relative to the clip's own noise floor help? A prototype before any runtime code.

    python benchmarks/bench_edge_floor_prototype.py                  # the general model, its validation clips

`portable-trimmed` cuts a lead-in and tail to 0.15 s where its 20 ms blocks are more than
40 dB under the loudest block (docs/features.md, "Edge pauses"): room tone in a quiet room,
not in a noisy one. A recording started a second early in a room whose noise sits 20-30 dB
under the voice keeps its lead-in, and the general model reads such clips badly. This
measures, before a new feature rule (and preset) is written for both pipelines with its
parity test, what a second line would buy: a block also counts as quiet when its energy is
under `--above-db` over the clip's floor, the `--quantile` of its block energies (0 = the
quietest block); the span is cut to `--keep-s` around the first and last block that passes
both lines, as the shipped rule does. Applied at inference to the unchanged model: each
degraded clip is written as a float WAV, cut by the prototype, and both versions are scored
through the runtime (which still applies the model's own cut to each).

The 10th-percentile, 10 dB line is built since (`features.edge_floor`, the
`portable-trimmed-floor` preset, the `general` model's): on such a model the prototype's
column repeats the model's own cut, and the script stays to try other floors and lines.

Clips: a split of the run config that trained the model (`--split val`, the default: an
inner holdout, so a rule may be chosen on it; `test` only to report). Conditions: as
recorded, white noise at 30 / 20 dB SNR through the whole clip (`bench_conditions`), and one
second of white room tone before and after the clip at `--pad-db` dB under its RMS (the
clip itself clean). Speakers are the training speakers: this measures the cut, not new voices.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_conditions as conditions  # noqa: E402  (the degradations and the runtime scores)


def floor_span(wave: np.ndarray, rate: int, keep_s: float, above_db: float, quantile: float) -> tuple[int, int]:
    """[start, end) kept: `keep_s` around the blocks within 40 dB of the loudest AND `above_db` over the floor."""
    block = max(1, int(np.floor(0.02 * rate + 0.5)))
    n = len(wave) // block
    if n < 2:
        return 0, len(wave)
    energy = np.square(wave[: n * block].astype(np.float64)).reshape(n, block).sum(1)
    floor = float(np.quantile(energy, quantile, method="lower"))
    loud = np.nonzero((energy >= energy.max() * 1e-4) & (energy >= floor * 10 ** (above_db / 10)))[0]
    if len(loud) == 0:  # digital silence or a flat level: nothing stands above the floor
        return 0, len(wave)
    keep = int(np.floor(keep_s * rate + 0.5))
    return max(0, int(loud[0]) * block - keep), min(len(wave), (int(loud[-1]) + 1) * block + keep)


def cut_files(paths: list[Path], rule: Callable[[np.ndarray, int], tuple[int, int]], tag: str) -> list[Path]:
    import soundfile as sf

    out = []
    for p in paths:
        wave, rate = sf.read(p, dtype="float32")
        start, end = rule(wave, rate)
        q = p.with_name(f"{p.stem}.{tag}.wav")
        sf.write(q, wave[start:end], rate, subtype="FLOAT")
        out.append(q)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="general", help="a .laq path or the name general (default)")
    ap.add_argument("--config", type=Path, default=HERE.parent / "configs" / "general.yaml", help="the run config that trained --model")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="config override, as the model was trained")
    ap.add_argument("--split", default="val", choices=["val", "test"], help="which clips (val: an inner holdout; test: report only)")
    ap.add_argument("--pad-db", type=float, nargs="+", default=[20, 25, 30, 35, 45], help="room tone levels under the clip's RMS")
    ap.add_argument("--above-db", type=float, nargs="+", default=[10], help="the floor line(s), dB over the floor")
    ap.add_argument("--quantile", type=float, nargs="+", default=[0.0, 0.1], help="the floor: this quantile of the block energies")
    ap.add_argument("--keep-s", type=float, default=0.15, help="lead-in and tail kept around the loud blocks")
    ap.add_argument("--seed", type=int, default=0, help="the conditions' random draws")
    args = ap.parse_args()

    import serlaq
    from serlaq.data import augment as A

    model = serlaq.load(args.model)
    clips = conditions.test_clips(args.config, args.sets, args.split)
    table: dict[str, Callable[[Any, int, Any], Any]] = {
        "as recorded": lambda x, r, g: x,
        "white noise 30 dB SNR": lambda x, r, g: A.noise(x, r, 30.0, 0.0, g),
        "white noise 20 dB SNR": lambda x, r, g: A.noise(x, r, 20.0, 0.0, g),
    }
    for db in args.pad_db:
        table[f"1 s room tone {db:g} dB under, each end"] = (lambda d: lambda x, r, g: conditions.pad(x, r, 1.0, d, g))(db)
    rules = [(q, a) for q in args.quantile for a in args.above_db]
    head = " | ".join(f"floor q{q:g} +{a:g} dB" for q, a in rules)
    print(f"{args.model}: {len(clips)} {args.split} clips of {args.config.name}; UAR % (most predicted label %)\n")
    print(f"| condition | the model's own cut | {head} |")
    print("|---|---|" + "---|" * len(rules))
    with tempfile.TemporaryDirectory(prefix="bench-edge-floor-") as tmp:
        for i, (name, transform) in enumerate(table.items()):
            paths = conditions.degrade(clips, transform, args.seed, Path(tmp) / str(i))
            cells = []
            for files in [paths] + [
                cut_files(paths, lambda w, r, q=q, a=a: floor_span(w, r, args.keep_s, a, q), f"q{q:g}a{a:g}")
                for q, a in rules
            ]:
                z = conditions.score(model, files, clips)
                cells.append(f"{100 * z['uar']:.1f} ({100 * z['top_share']:.0f})")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
