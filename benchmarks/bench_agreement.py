"""Packed Rust model vs fake-quantized torch model: label agreement and logit difference.

    python benchmarks/bench_agreement.py --data-root /work/shared/datasets
    python benchmarks/bench_agreement.py --data-root ... --seeds 2 --corpus emodb-2s   # shorter

For each corpus (emodb, emodb-2s) and seed (default 0-4): `serlaq.training.fit` trains the
model of `configs/emodb.yaml` (as bench_laq.py does), `serlaq.laq.compress.compress`
default-compresses it (budget search + QAT, the `serlaq compress` default) into a `.laq`
file, and on EVERY clip of the corpus (train, val and test) the same raw feature vectors
go through
- the packed model: `serlaq.load(model.laq).logits(features)` and `.predict_features`
  (the Rust kernels, `serlaq._native.kernel()` names which), and
- the fake-quantized torch model the compressor returns (`LaqOutcome.fake_quantized()`,
  float32 weights `scale * (q - zero)`).
Printed per run and overall: label agreement (%), clips whose labels differ, and the
largest absolute logit difference. The figures are measured, not asserted.

End to end (issue 10's parity acceptance): the same `.laq` also predicts every clip from
its FILE through the runtime alone (`predict_files`: Rust decode, resample, features,
packed layers), against the fake-quantized torch model on the training side's torchaudio
features of the same clips: label agreement, largest standardized feature difference, and
the test accuracy of each path on the run's test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from bench_laq import base_overrides  # noqa: E402  (the fit overrides every real-data benchmark uses)

CORPORA = ("emodb", "emodb-2s")


def all_features(model) -> tuple[np.ndarray, list[str], np.ndarray, int]:
    """Raw (torchaudio) feature vectors of every clip of the model's corpus (train, val,
    test), the clips' paths, their labels (class ids) and how many come last as test."""
    from serlaq.data.datamodule import SERDataModule

    dm = SERDataModule.from_model(model)
    dm.setup()
    splits = ("train", "val", "test")
    x = np.concatenate([dm.split_tensors(s)[0].numpy() for s in splits]).astype(np.float32)
    y = np.concatenate([dm.split_tensors(s)[1].numpy() for s in splits])
    paths = [str(c.path) for s in splits for c in dm.split_clips(s)]
    return x, paths, y, len(dm.split_clips("test"))


def run_one(config_path: Path, data_dir: Path, seed: int, out_dir: Path, cache_dir: Path, extra: list[str]) -> dict:
    import torch

    import serlaq
    from serlaq.config import load_config
    from serlaq.laq.compress import compress, load_checkpoint
    from serlaq.training import fit

    args = SimpleNamespace(set=extra)
    config = load_config(config_path, base_overrides(args, data_dir, seed, out_dir, cache_dir))
    t0 = time.perf_counter()
    result = fit(config)
    assert result is not None
    laq_path = result.run_dir / "agreement.laq"
    outcome = compress(result.checkpoint, laq_path)
    x, paths, y, n_test = all_features(load_checkpoint(result.checkpoint))

    packed = serlaq.load(laq_path)
    # end to end: the runtime from the files alone
    from_files = packed.predict_files(paths, workers=1)
    assert all(r.ok for r in from_files), [r for r in from_files if not r.ok][:3]
    labels_e2e = [r.label for r in from_files]
    x_rust = np.stack([packed.features_from_file(p) for p in paths])
    std = x.astype(np.float64).std(axis=0)  # standardized as a model would see them
    feature_gap = float((np.abs(x_rust.astype(np.float64) - x) / np.where(std > 0, std, 1.0)).max())
    z_rust = packed.logits(x).astype(np.float64)
    labels_rust = [p.label for p in packed.predict_features(x)]
    fq = outcome.fake_quantized().eval()
    with torch.inference_mode():
        z_torch = fq(torch.from_numpy(x)).double().numpy()
    labels_torch = [packed.labels[i] for i in z_torch.argmax(axis=1)]
    differ = [i for i, (a, b) in enumerate(zip(labels_rust, labels_torch)) if a != b]
    differ_e2e = sum(a != b for a, b in zip(labels_e2e, labels_torch))
    truth = [packed.labels[i] for i in y[-n_test:]]
    acc_e2e = float(np.mean([a == b for a, b in zip(labels_e2e[-n_test:], truth)]))
    acc_torch = float(np.mean([a == b for a, b in zip(labels_torch[-n_test:], truth)]))
    diff = np.abs(z_rust - z_torch)
    # How close the runner-up was where labels differ (a tie within the logit error).
    gaps = [float(np.sort(z_torch[i])[-1] - np.sort(z_torch[i])[-2]) for i in differ]
    return {
        "corpus": data_dir.name,
        "seed": seed,
        "clips": len(x),
        "avg_bits": float(outcome.avg_bits),
        "agree": 1 - len(differ) / len(x),
        "differ": len(differ),
        "differ_gaps": gaps,
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_logit": float(np.abs(z_torch).max()),
        "differ_e2e": int(differ_e2e),
        "feature_gap": feature_gap,
        "test_acc_e2e": acc_e2e,
        "test_acc_torch": acc_torch,
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding emodb/ and emodb-2s/")
    parser.add_argument("--corpus", action="append", choices=CORPORA, help="corpora (default: both)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "emodb.yaml")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "serlaq-bench-cache")
    parser.add_argument("--json", type=Path, help="also write the per-run figures here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    args = parser.parse_args(argv)

    from serlaq import _native
    from serlaq.training import quiet_lightning

    corpora = args.corpus or list(CORPORA)
    for name in corpora:
        if not (args.data_root / name).is_dir():
            print(f"{args.data_root / name}: corpus directory not found", file=sys.stderr)
            return 2
    print(f"packed (Rust kernel {_native.kernel()}) vs fake-quantized torch, default compress, every clip; "
          f"seeds 0-{args.seeds - 1}")
    print(f"{'corpus':<9} {'seed':>4} {'clips':>5} {'bits':>6} {'agree %':>8} {'differ':>6} "
          f"{'max |dz|':>10} {'mean |dz|':>10} {'max |z|':>8} {'s':>6}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="serlaq-agreement-") as tmp, quiet_lightning():
        for name in corpora:
            for seed in range(args.seeds):
                r = run_one(args.config, args.data_root / name, seed, Path(tmp), args.cache_dir, args.set)
                runs.append(r)
                print(f"{r['corpus']:<9} {seed:>4} {r['clips']:>5} {r['avg_bits']:>6.3f} {100 * r['agree']:>8.2f} "
                      f"{r['differ']:>6} {r['max_abs_logit_diff']:>10.2e} {r['mean_abs_logit_diff']:>10.2e} "
                      f"{r['max_abs_logit']:>8.2f} {r['seconds']:>6.1f}", flush=True)
    clips = sum(r["clips"] for r in runs)
    differ = sum(r["differ"] for r in runs)
    worst = max(r["max_abs_logit_diff"] for r in runs)
    print()
    for name in corpora:
        rs = [r for r in runs if r["corpus"] == name]
        n, d = sum(r["clips"] for r in rs), sum(r["differ"] for r in rs)
        print(f"{name}: {len(rs)} models x {rs[0]['clips']} clips: label agreement {100 * (1 - d / n):.2f}% "
              f"({d} of {n} differ), largest |logit difference| {max(r['max_abs_logit_diff'] for r in rs):.2e}")
    print(f"all: label agreement {100 * (1 - differ / clips):.3f}% ({differ} of {clips} predictions differ), "
          f"largest |logit difference| {worst:.2e}")
    gaps = [g for r in runs for g in r["differ_gaps"]]
    print("\nend to end: runtime from files (Rust features) vs fake-quantized torch on torchaudio features")
    for name in corpora:
        rs = [r for r in runs if r["corpus"] == name]
        n, d = sum(r["clips"] for r in rs), sum(r["differ_e2e"] for r in rs)
        accs = ", ".join(f"{100 * r['test_acc_e2e']:.1f}/{100 * r['test_acc_torch']:.1f}" for r in rs)
        print(f"{name}: labels identical on {100 * (1 - d / n):.2f}% ({d} of {n} differ; target >= 99.9%), "
              f"largest standardized feature difference {max(r['feature_gap'] for r in rs):.2e} (target <= 1e-3); "
              f"test accuracy runtime/torch per seed: {accs}")
    if gaps:
        print(f"where labels differ, the torch model's top-2 logit gap is at most {max(gaps):.2e}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
