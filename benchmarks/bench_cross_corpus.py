"""Cross-condition figure (`emodb` -> `emodb-2s`, the default) and true cross-corpus pairs (`--protocol corpus`: EMODB -> TESS, TESS -> EMODB).

Cross-condition: train on `emodb`, score the compressed `.laq` on `emodb-2s` clips of speakers held out of training.

    nice python benchmarks/bench_cross_corpus.py --data-root /work/shared/datasets --pairs 5

For each of `--pairs` folds, `--held-out` speakers (default 2) are held out of training AND
validation: the emodb speakers are shuffled once by `--first-seed` and cut into disjoint
groups (5 pairs of EMODB's 10 speakers cover every speaker once). The model trains with
`configs/emodb.yaml` (the default preset and recipe; `--set` overrides, e.g.
`--set features.preset=paper --set train.recipe=paper`) on the other speakers' clips
(a seeded, stratified 10% of them for validation, seed = first seed + fold), is
default-compressed (the config's `laq:` section, else the default `qat` mode) into a `.laq`,
and that file is scored through the runtime (`serlaq.evaluation.evaluate_corpus(...,
speakers=[...])`, shared labels only) on:

- the held-out speakers' clips of `emodb` (in-corpus, speaker-independent: the baseline), and
- the held-out speakers' clips of `emodb-2s` (the cross-condition figure).

The fp32 model's in-corpus score (torch, same clips) is printed beside them.

What this measures, honestly: `emodb-2s` is not a different corpus. It is a re-cut,
resampled public copy of the same recordings (every clip cut or zero-padded to 2.0 s and
resampled from 16 kHz to 22.05 kHz). Holding the speakers out of training keeps the test
speakers unseen, but the utterances, speakers and recording conditions are EMODB's; the
difference to the in-corpus column is what the cut (lost or padded audio) and the rate
change cost a model trained on the original clips: a cross-condition test, not the
cross-corpus generalization the paper names as its limitation (that needs a corpus with
other speakers, language and microphones: `--target` and `--target-dataset` point at any
corpus folder under `--data-root`, scored on the labels it shares with EMODB; with other
speakers, pass their ids as `--target-speakers` or leave it out to score every clip).
Test clips are only scored, never used to choose anything.

**True cross-corpus pairs** (`--protocol corpus`, issue 18):

    nice python benchmarks/bench_cross_corpus.py --protocol corpus --seeds 5 --presets rich,portable

For each direction of `--directions` (default `emodb:tess,tess:emodb`), each seed and each
feature preset of `--presets` (the first is the baseline the others are paired against),
the source corpus's own config (`configs/<source>.yaml`: its stratified 80/10/10 split,
the default recipe) trains a model that is default-compressed into a `.laq`, then every
clip of the target corpus is scored through the runtime on the labels both corpora share
(the model answers among those labels; its probabilities are renormalised over them):

- zero-shot: the `.laq` as trained;
- adapted (`--adapt`, the default when `LaqModel.adapt` exists): `LaqModel.adapt` on the
  target corpus's audio, labels unused (what `serlaq adapt` does: statistics and label
  balance), then scored the same way; "adapted, no balance" is its first step alone
  (`serlaq adapt --no-balance`) and "adapted, std=target" the adaptation with the target's
  own std instead of the default widened one (`serlaq adapt --std target`, the rule before
  2026-12-05);
- stream (`--stream`, the default): the target's clips as one live recording (shuffled
  by the seed, each centre-cut or looped to 96 STFT hops so that one window is one clip),
  segmented with the model's statistics ("stream") and with running normalisation
  ("stream, running norm.": each window standardized with the model's statistics mixed
  with those of the windows so far and divided by the stream's label mix so far,
  `--running-norm`; "..., no balance": statistics alone, `--no-running-balance`); the
  first windows count too.

Reported per cell, mean ± sd over seeds: UAR, accuracy, the share of the most predicted
label, mean confidence and expected calibration error (ECE: 10 equal-width confidence
bins, |accuracy - confidence| weighted by the bin's share), and the paired UAR difference
to the baseline preset on the same seed and split. No target label chooses anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def mean_sd(values: list[float]) -> str:
    v = [100 * x for x in values]
    return f"{statistics.fmean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}"


def speaker_groups(speakers: list[str], size: int, count: int, seed: int) -> list[list[str]]:
    """`count` groups of `size` speakers: disjoint while the shuffled list lasts, then reshuffled."""

    rng = np.random.default_rng(seed)
    groups: list[list[str]] = []
    order: list[str] = []
    while len(groups) < count:
        if len(order) < size:
            order = [str(s) for s in rng.permutation(sorted(speakers))]
        groups.append(sorted(order[:size]))
        order = order[size:]
    return groups


def run_fold(args: argparse.Namespace, base: list[str], clips: list[Any], held: list[str], seed: int, tmp: Path) -> dict[str, Any]:
    """Train without `held`, compress, score fp32 (torch) and the `.laq` (runtime) in- and cross-corpus."""
    import torch

    from serlaq import metrics
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.data.splits import split_indices
    from serlaq.evaluation import evaluate_corpus
    from serlaq.laq.compress import load_checkpoint
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.laq_config import LaqConfig
    from serlaq.runtime import LaqModel
    from serlaq.training import fit, quiet_lightning

    name = f"cross-{'-'.join(held)}-s{seed}"
    config = load_config(args.config, [*base, f"seed={seed}", f"name={name}"])
    settings = (config.laq if config.laq is not None else LaqConfig()).resolved()
    config = config.model_copy(update={"laq": None})
    speakers = np.array([c.speaker for c in clips])
    test = np.flatnonzero(np.isin(speakers, held))
    rest = np.flatnonzero(~np.isin(speakers, held))
    tr, va, _ = split_indices([clips[i].label for i in rest], seed=seed, fractions=(0.9, 0.1, 0.0))
    splits = {"train": rest[tr].tolist(), "val": rest[va].tolist(), "test": test.tolist()}
    assert not set(held) & {clips[i].speaker for i in splits["train"] + splits["val"]}
    datamodule = SERDataModule(config, splits=splits)
    started = time.perf_counter()
    result = fit(config, datamodule=datamodule)
    assert result is not None
    model = load_checkpoint(result.checkpoint).eval()
    data = splits_of(datamodule)
    x, y = data["test"]
    with torch.no_grad():
        fp32 = metrics.label_scores(y.numpy(), model(x).argmax(1).numpy(), list(model.labels))
    with quiet_lightning():
        out = compress_model(
            model, data, settings, datamodule=datamodule,
            trainer_settings=config.trainer.model_dump(exclude_none=True), lr=config.train.lr, seed=seed,
        )  # fmt: skip
    laq_path = tmp / f"{name}.laq"
    size = out.write(laq_path)
    laq = LaqModel.load(laq_path)
    inside = evaluate_corpus(laq, args.data_root / args.train, "emodb", speakers=held)
    target_speakers = held if args.target_speakers is None else (args.target_speakers or None)
    cross = evaluate_corpus(laq, args.data_root / args.target, args.target_dataset, speakers=target_speakers)
    for rep in (inside, cross):
        if rep.failures:
            raise SystemExit(f"{rep.data_dir}: {len(rep.failures)} files failed: {rep.failures[0]}")
    return {
        "held": held,
        "seed": seed,
        "clips": {"train": len(splits["train"]), "val": len(splits["val"]), "test": inside.n_clips, "cross": cross.n_clips},
        "fp32_acc": fp32.accuracy,
        "fp32_uar": fp32.uar,
        "in_acc": inside.accuracy,
        "in_uar": inside.uar,
        "cross_acc": cross.accuracy,
        "cross_uar": cross.uar,
        "avg_bits": out.avg_bits,
        "laq_kb": size / 1000,
        "labels": cross.labels,
        "excluded": cross.excluded,
        "unscored": cross.unscored_model_labels,
        "seconds": time.perf_counter() - started,
    }


STREAM_HOPS = 96  # one stream window = one clip, centre-cut (or looped) to 96 STFT hops (1.536 s at 16 kHz)


def stream_recording(laq: Any, clips: list[Any], labels: list[str], seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The target's clips as one live recording: back to back in a shuffled order (`seed`),
    each cut to `STREAM_HOPS` STFT hops so that window k (window = hop, no gate) is clip k.
    Returns (wave, label index per window, samples per window); decoded once per model."""
    from serlaq import _native

    rate = laq.sample_rate
    n = STREAM_HOPS * laq.feature_config.hop_length
    waves, y = [], []
    for i in np.random.default_rng(seed).permutation(len(clips)):
        try:
            w = _native.load_audio(str(clips[i].path), rate, laq.min_samples)
        except Exception:  # an unreadable clip is left out (cross_scores counts it as failed)
            continue
        at = max(0, (len(w) - n) // 2)
        waves.append(np.resize(w[at : at + n], n))
        y.append(labels.index(clips[i].label))
    wave = np.concatenate([*waves, waves[0]])  # the first clip once more: the last window is a full one
    return wave, np.array(y), n


def stream_scores(laq: Any, recording: tuple[np.ndarray, np.ndarray, int], labels: list[str], running: bool,
                  balance: bool = True) -> dict[str, Any]:
    """`stream_recording` segmented and scored like `cross_scores`. `running`: with running
    normalisation (the stream adapts itself to the corpus as it plays; the first windows see
    mostly the model's statistics), `balance`: its label balance too (the default of
    `running_norm`)."""
    from serlaq.cross_corpus import proba_scores

    wave, y, n = recording
    rate = laq.sample_rate
    segs = list(laq.segments(wave, rate, window=n / rate, hop=n / rate, vad=False, running_norm=running,
                             running_balance=balance))[: len(y)]
    assert len(segs) == len(y) and all(s.start_sample == k * n for k, s in enumerate(segs))
    proba = np.array([[s.probabilities[lab] for lab in labels] for s in segs], dtype=np.float64)
    return proba_scores(proba / proba.sum(1, keepdims=True), y, labels)


def run_pair(args: argparse.Namespace, source: str, target: str, preset: str, seed: int, tmp: Path) -> dict[str, Any]:
    """Train on `source` (its config, `preset`, `seed`), compress, score on `target` zero-shot (and adapted)."""
    from _common import fit_compressed
    from serlaq.cross_corpus import corpus_rows, cross_scores, shared_clips
    from serlaq.runtime import LaqModel

    name = f"{source}-{target}-{preset}-s{seed}"
    overrides = [
        f"data.data_dir={args.data_root / source}",
        f"data.cache_dir={args.cache_dir or tmp / 'cache'}",
        f"out_dir={tmp / 'runs'}",
        "trainer.enable_progress_bar=false",
        f"features.preset={preset}",
        f"seed={seed}",
        f"name={name}",
        *args.set,
    ]
    started = time.perf_counter()
    laq_path = tmp / f"{name}.laq"
    result, out, size, _ = fit_compressed(ROOT / "configs" / f"{source}.yaml", overrides, seed, laq_path)
    laq = LaqModel.load(laq_path)
    row: dict[str, Any] = corpus_rows(laq, args.data_root / target, target, adapt=args.adapt)
    if args.adapt:  # the adaptation's first step alone (statistics, no label balance), for the paired figure
        clips, labels = shared_clips(laq, args.data_root / target, target)
        plain = laq.adapt([args.data_root / target], source=str(args.data_root / target), balance=False)
        row["adapted, no balance"] = cross_scores(plain, clips, labels)
        # the adaptation with the target's own std (the rule before "widen"), for the paired figure
        target_std = laq.adapt([args.data_root / target], source=str(args.data_root / target), std="target")
        row["adapted, std=target"] = cross_scores(target_std, clips, labels)
    if args.stream:
        clips, labels = shared_clips(laq, args.data_root / target, target)
        recording = stream_recording(laq, clips, labels, seed)
        row["stream"] = stream_scores(laq, recording, labels, running=False)
        row["stream, running norm., no balance"] = stream_scores(laq, recording, labels, running=True, balance=False)
        row["stream, running norm."] = stream_scores(laq, recording, labels, running=True)
    in_corpus = float(result.metrics["test"]["accuracy"])  # fp32, the source's own test split
    row.update({"clips": row["zero-shot"]["clips"], "avg_bits": out.avg_bits, "kb": size / 1000, "in_acc": in_corpus})
    row["seconds"] = time.perf_counter() - started
    return row


def main_corpus(args: argparse.Namespace) -> None:
    from serlaq.runtime import LaqModel

    if args.adapt is None:
        args.adapt = hasattr(LaqModel, "adapt")
    presets = [p for p in args.presets.split(",") if p]
    directions = [tuple(d.split(":")) for d in args.directions.split(",") if d]
    if any(len(d) != 2 for d in directions) or not presets:
        raise SystemExit("--directions: SOURCE:TARGET[,...]; --presets: at least one preset")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cross-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        for source, target in directions:
            for seed in seeds:
                for preset in presets:
                    r = run_pair(args, source, target, preset, seed, tmp)
                    rows.setdefault((source, target, preset), []).append(r)
                    cells = "  ".join(
                        f"{mode} UAR {100 * r[mode]['uar']:.1f} acc {100 * r[mode]['accuracy']:.1f} top {100 * r[mode]['top_share']:.0f}% "
                        f"conf {r[mode]['mean_confidence']:.2f} ECE {r[mode]['ece']:.2f}"
                        for mode in ("zero-shot", "adapted, no balance", "adapted, std=target", "adapted", "stream", "stream, running norm., no balance",
                                     "stream, running norm.")
                        if mode in r
                    )
                    print(
                        f"{source}->{target} {preset} seed {seed}: {cells}  (in-corpus fp32 test acc {100 * r['in_acc']:.1f}; "
                        f"{r['avg_bits']:.3f} b, {r['kb']:.1f} KB, {r['seconds']:.0f} s)",
                        flush=True,
                    )
    modes = ["zero-shot", "adapted, no balance", "adapted, std=target", "adapted"] if args.adapt else ["zero-shot"]
    modes += ["stream", "stream, running norm., no balance", "stream, running norm."] if args.stream else []
    print(f"\n### True cross-corpus pairs ({args.seeds} seeds, mean ± sd; paired against preset {presets[0]})\n")
    print("| direction | preset | mode | UAR % | accuracy % | top label % | mean confidence | ECE | UAR vs " + presets[0] + " (paired) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for source, target in directions:
        base = rows[(source, target, presets[0])]
        for preset in presets:
            runs = rows[(source, target, preset)]
            for mode in modes:
                def ms(key: str, scale: float = 100.0, fmt: str = ".1f") -> str:
                    v = [scale * r[mode][key] for r in runs]
                    return f"{statistics.fmean(v):{fmt}} ± {statistics.stdev(v) if len(v) > 1 else 0.0:{fmt}}"

                d = [100 * (r[mode]["uar"] - b[mode]["uar"]) for r, b in zip(runs, base)]
                diff = "–" if preset == presets[0] else f"{statistics.fmean(d):+.1f} ± {statistics.stdev(d) if len(d) > 1 else 0.0:.1f}"
                print(
                    f"| {source} → {target} | {preset} | {mode} | {ms('uar')} | {ms('accuracy')} | {ms('top_share')} | "
                    f"{ms('mean_confidence', 1.0, '.2f')} | {ms('ece', 1.0, '.2f')} | {diff} |"
                )
    first = next(iter(rows.values()))[0]
    print(f"\nScored labels: {', '.join(first['labels'])} ({first['clips']} clips of the first target).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path("/work/shared/datasets"), help="folder holding the two corpora")
    parser.add_argument("--train", default="emodb", help="training corpus folder under --data-root (emodb layout)")
    parser.add_argument("--target", default="emodb-2s", help="evaluation corpus folder under --data-root (layout: --target-dataset)")
    parser.add_argument("--target-dataset", default="emodb", help="layout of --target (emodb, tess, savee, ravdess, cremad, emovo, folder, auto)")
    parser.add_argument(
        "--target-speakers", type=lambda v: [s for s in v.split(",") if s], default=None,
        help="comma-separated speakers of --target to score (default: the held-out emodb speakers; '' = every clip)",
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "emodb.yaml")
    parser.add_argument("--pairs", type=int, default=5, help="folds (speaker groups held out)")
    parser.add_argument("--held-out", type=int, default=2, help="speakers held out of train and val per fold")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: a temp dir)")
    parser.add_argument("--protocol", choices=["condition", "corpus"], default="condition", help="condition: emodb -> emodb-2s (held-out speakers); corpus: true cross-corpus pairs")
    parser.add_argument("--directions", default="emodb:tess,tess:emodb", help="--protocol corpus: SOURCE:TARGET pairs (folders under --data-root, named by their layout)")
    parser.add_argument("--presets", default="rich,portable", help="--protocol corpus: feature presets, the first is the paired baseline")
    parser.add_argument("--seeds", type=int, default=5, help="--protocol corpus: seeds per direction and preset")
    parser.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None, help="--protocol corpus: also score after LaqModel.adapt on the target's audio")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True, help="--protocol corpus: also score the target's clips as one live stream, with and without running normalisation")
    args = parser.parse_args()
    args.data_root = args.data_root.resolve()
    if args.protocol == "corpus":
        if args.seeds < 1:
            raise SystemExit("--seeds: must be >= 1")
        main_corpus(args)
        return
    if args.pairs < 1 or args.held_out < 1:
        raise SystemExit("--pairs and --held-out: must be >= 1")

    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.reports.loso import corpus_clips

    with tempfile.TemporaryDirectory(prefix="bench-cross-") as tmp_name:
        tmp = Path(tmp_name)
        base = [
            f"data.data_dir={args.data_root / args.train}",
            "data.dataset=emodb",
            f"data.cache_dir={args.cache_dir or tmp / 'cache'}",
            f"out_dir={tmp / 'runs'}",
            "trainer.enable_progress_bar=false",
            *args.set,
        ]
        outer = SERDataModule(load_config(args.config, base))
        outer.setup()
        clips = corpus_clips(outer)
        spk = sorted({c.speaker for c in clips})
        if args.held_out >= len(spk):
            raise SystemExit(f"--held-out: {args.held_out} of {len(spk)} speakers leaves none to train on")
        preset = outer.config.features
        print(
            f"train {args.train} ({len(clips)} clips, {len(spk)} speakers), target {args.target}; features preset "
            f"{preset.preset} ({preset.dim}-d), recipe {outer.config.train.recipe}; overrides {args.set or 'none'}",
            flush=True,
        )
        rows = []
        for k, held in enumerate(speaker_groups(spk, args.held_out, args.pairs, args.first_seed)):
            r = run_fold(args, base, clips, held, args.first_seed + k, tmp)
            rows.append(r)
            print(
                f"fold {k} held out {','.join(held)} ({r['clips']['test']} clips, {r['clips']['cross']} in {args.target})  "
                f"fp32 {100 * r['fp32_acc']:5.1f}/{100 * r['fp32_uar']:5.1f}  .laq in-corpus {100 * r['in_acc']:5.1f}/{100 * r['in_uar']:5.1f}  "
                f".laq {args.target} {100 * r['cross_acc']:5.1f}/{100 * r['cross_uar']:5.1f}  (acc/UAR %)  "
                f"{r['avg_bits']:.3f} b, {r['laq_kb']:.1f} KB, {r['seconds']:.0f} s",
                flush=True,
            )
    first = rows[0]
    left = f"corpus labels the model lacks: {first['excluded'] or 'none'}; model labels {args.target} lacks: {first['unscored'] or 'none'}"
    print(f"\n### Train {args.train}, test on held-out speakers ({args.pairs} folds of {args.held_out}; mean ± sd over folds)\n")
    print(f"Scored labels ({len(first['labels'])}): {', '.join(first['labels'])}; {left}.\n")
    print("| model | scored on | avg bits | `.laq` KB | accuracy % | UAR % | vs in-corpus `.laq` (acc / UAR, paired) |")
    print("|---|---|---|---|---|---|---|")
    who = "held-out speakers" if args.target_speakers is None else (f"speakers {','.join(args.target_speakers)}" if args.target_speakers else "every clip")
    bits = f"{statistics.fmean(r['avg_bits'] for r in rows):.3f}"
    kb = f"{statistics.fmean(r['laq_kb'] for r in rows):.1f}"

    def paired(key: str, ref: str) -> str:
        d = [100 * (r[key] - r[ref]) for r in rows]
        return f"{statistics.fmean(d):+.1f} ± {statistics.stdev(d) if len(d) > 1 else 0.0:.1f}"

    print(f"| fp32 (torch) | {args.train}, held-out speakers | 32 | – | {mean_sd([r['fp32_acc'] for r in rows])} | {mean_sd([r['fp32_uar'] for r in rows])} | {paired('fp32_acc', 'in_acc')} / {paired('fp32_uar', 'in_uar')} |")
    print(f"| default-compressed `.laq` | {args.train}, held-out speakers | {bits} | {kb} | {mean_sd([r['in_acc'] for r in rows])} | {mean_sd([r['in_uar'] for r in rows])} | – |")
    print(f"| default-compressed `.laq` | {args.target}, {who} | {bits} | {kb} | {mean_sd([r['cross_acc'] for r in rows])} | {mean_sd([r['cross_uar'] for r in rows])} | {paired('cross_acc', 'in_acc')} / {paired('cross_uar', 'in_uar')} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
