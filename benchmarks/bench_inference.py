"""WAV -> label per clip: serlaq `.laq` vs the same model in torch fp32 vs the librosa +
scikit-learn recipe, each stage timed (decode / features / MLP), single process.

    python benchmarks/bench_inference.py --data-dir /work/shared/datasets/emodb-2s

What it does, in one run:
1. discovers the corpus (`serlaq.data.corpora.discover`) and splits it stratified 80/10/10
   as `serlaq fit` does (`serlaq.data.splits.split_indices`, seed `--seed`); every
   pipeline trains on the same train split and is scored on the same test split;
2. times decode and features clip by clip for serlaq (`serlaq.data.audio.load_audio` +
   the shared `FeatureExtractor`) and for the widely used librosa recipe
   (`librosa.load(sr=22050)`, means of `mfcc(n_mfcc=40)`, `chroma_stft`, `melspectrogram`),
   alternating the two on every clip so that machine load hits both alike;
3. gets a `.laq` model of the paper's 3HL MLP. Default (`--train fit`): the product path,
   `serlaq.training.fit` on the corpus with a `laq:` section (defaults, or `--laq JSON`),
   so the LAQ callback writes `model.laq`; the fp32 twin is `model.ckpt`'s network.
   Fallback (`--train plain`, no Lightning): a plain torch loop on the benchmark's own
   features + the project's LAQ importance, paper bit search and quantizer, written with
   `_native.write_laq` (see `train_and_compress`);
4. times the MLP stage at batch 1, clip by clip, rotating between `LaqModel.predict_proba`
   (standardize, packed native layers, softmax), the same trained model in torch fp32
   (standardize, Linear/ReLU, softmax; same features, so decode and features are shared by
   those two rows) and the recipe's sklearn `MLPClassifier` (trained on the train split
   of its own features), `--mlp-passes` passes over every clip;
5. times `LaqModel.predict(path)` end to end per clip;
6. measures, in fresh processes, the import time of `serlaq`, `serlaq.load` and the first
   prediction, and the peak memory (max RSS) of a process that loads the `.laq` and
   predicts one clip.

Single process: torch uses 1 thread (`torch.set_num_threads(1)`), the Rust GEMM's rayon
pool is limited to 1 thread (`RAYON_NUM_THREADS=1`; at batch 1 these layers are below
its parallel threshold anyway), and BLAS pools used by numpy/librosa/sklearn get 1
thread. Times are medians over clips (the first `--warmup` clips of each pipeline are
not timed: librosa's numba kernels compile on first use).
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / torch / the native module start their pools
for _var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


# --- helpers ------------------------------------------------------------------------------


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000.0


def project_split(clips: list[Any], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stratified 80/10/10 split `serlaq fit` makes at this seed (serlaq.data.splits)."""
    from serlaq.data.splits import split_indices

    train, val, test = split_indices([c.label for c in clips], [c.speaker for c in clips], seed=seed)
    return np.asarray(train), np.asarray(val), np.asarray(test)


# --- 2 and 5. decode + features, one clip at a time --------------------------------------------------------


class SerlaqFeatures:
    """serlaq's path: `load_audio` (soundfile, mono, resample) + the shared `FeatureExtractor`."""

    def __init__(self, cfg: Any) -> None:
        from serlaq.data.audio import load_audio
        from serlaq.features import FeatureExtractor

        self.cfg, self.load = cfg, load_audio
        self.extractor = FeatureExtractor(cfg).eval()

    def __call__(self, path: Path) -> tuple[np.ndarray, float, float]:
        t0 = time.perf_counter()
        wave = self.load(path, self.cfg.sample_rate, min_samples=self.cfg.min_samples)
        t1 = time.perf_counter()
        with torch.inference_mode():
            vec = self.extractor(torch.from_numpy(wave)).numpy()
        return vec, t1 - t0, time.perf_counter() - t1


def librosa_recipe_features(path: Path) -> tuple[np.ndarray, float, float]:
    """The widely used recipe: librosa.load at 22050 Hz, then the means of mfcc(40),
    chroma_stft (on |STFT|) and melspectrogram over time."""
    import librosa

    t0 = time.perf_counter()
    sig, sr = librosa.load(str(path), sr=22050)
    t1 = time.perf_counter()
    stft = np.abs(librosa.stft(sig))
    mfcc = np.mean(librosa.feature.mfcc(y=sig, sr=sr, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=sig, sr=sr).T, axis=0)
    vec = np.hstack([mfcc, chroma, mel])
    return vec, t1 - t0, time.perf_counter() - t1


# --- 3. a trained, LAQ-compressed model ------------------------------------------------------------


def fit_and_compress(
    data_dir: Path, dataset: str, seed: int, work: Path, laq: dict[str, Any]
) -> tuple[Path, torch.nn.Module, np.ndarray, np.ndarray, dict[str, Any]]:
    """The product path: `serlaq.training.fit` with a `laq:` section (the LAQ callback writes
    `model.laq` after training). Returns the .laq path, the fp32 twin (`SERClassifier.net`
    of `model.ckpt`, on standardized inputs), its norm stats and the LAQ summary."""
    from serlaq.config import RunConfig
    from serlaq.model import SERClassifier
    from serlaq.training import fit

    config = RunConfig.model_validate({
        "seed": seed, "name": "bench", "out_dir": str(work),
        "data": {"dataset": dataset, "data_dir": str(data_dir), "cache_dir": str(work / "cache")},
        "trainer": {"enable_progress_bar": False},
        "laq": laq,
    })
    result = fit(config)
    assert result is not None
    run_dir = result.run_dir
    summary = json.loads((run_dir / "laq.json").read_text())
    ckpt = SERClassifier.load_from_checkpoint(result.checkpoint, map_location="cpu").eval()
    return (run_dir / "model.laq", ckpt.net.eval(), ckpt.feature_mean.numpy().astype(np.float32),
            ckpt.feature_std.numpy().astype(np.float32), {"summary": summary, "test_fp32": result.metrics})


def train_and_compress(
    x: np.ndarray, y: np.ndarray, labels: list[str], split: tuple[np.ndarray, np.ndarray, np.ndarray],
    cfg: Any, out: Path, seed: int, margin: float,
) -> tuple[torch.nn.Sequential, np.ndarray, np.ndarray, dict[str, Any]]:
    """The paper's 3HL MLP trained in plain torch on the benchmark's own features (Adam 1e-3,
    batch 32, dropout 0.1, early stopping on val loss, patience 5), then compressed with the
    project's LAQ pieces: eq. 1-4 importance, the eq. 5 paper search on the validation
    split (margin `margin`), the per-tensor quantizers, written by `_native.write_laq`.
    Returns the fp32 net (on standardized inputs), the norm stats and the LAQ summary."""
    from serlaq import __version__, _native
    from serlaq.laq.fakequant import PlanQuantizer, make_evaluator, quantizable_layers
    from serlaq.laq.importance import layer_importance
    from serlaq.laq.search import paper_search

    train, val, _ = split
    mean = x[train].mean(0)
    std = x[train].std(0)
    std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
    xs = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    torch.manual_seed(seed)
    dims = [x.shape[1], 256, 512, 64, len(labels)]
    mods: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        mods.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            mods += [torch.nn.ReLU(), torch.nn.Dropout(0.1)]
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, bad = float("inf"), None, 0
    for _epoch in range(200):
        net.train()
        perm = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
        for b in range(0, len(perm), 32):
            idx = perm[b : b + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            vloss = float(torch.nn.functional.cross_entropy(net(xs[val]), yt[val]))
        if vloss < best - 1e-4:
            best, bad = vloss, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= 5:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()

    layers = quantizable_layers(net)
    stats = layer_importance({n: m.weight.detach().numpy() for n, m in layers})
    pq = PlanQuantizer(layers)
    evaluate, baseline = make_evaluator(net, pq, xs[val], yt[val], "accuracy")
    result = paper_search(stats, evaluate, baseline, margin=margin)
    plan = result.plan
    records = []
    for name, mod in layers:
        q = pq.get(name, plan[name])
        records.append({
            "name": name, "bits": q.bits, "quantizer": q.quantizer, "codes": q.codes,
            "scale": q.scale, "zero": q.zero, "bias": mod.bias.detach().numpy().astype(np.float32),
        })
    meta = {
        "serlaq_version": __version__,
        "labels": labels,
        "features": cfg.model_dump(mode="json"),
        "architecture": {"type": "mlp", "input_dim": dims[0], "hidden": dims[1:-1], "activation": "relu",
                         "num_classes": len(labels)},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "laq": {"avg_bits": result.avg_bits, "mode": "paper", "plan": plan, "margin": margin,
                "criterion": "accuracy", "source": "benchmarks/bench_inference.py"},
    }
    _native.write_laq(str(out), json.dumps(meta), records,
                      {"norm.mean": mean.astype(np.float32), "norm.std": std.astype(np.float32)})
    return net, mean.astype(np.float32), std, {"plan": plan, "avg_bits": result.avg_bits,
                                               "val_fp32": baseline, "val_laq": result.score}


# --- 4. MLP stage at batch 1 -----------------------------------------------------------------------------


def laq_mlp(model: Any) -> Any:
    return lambda row: model.predict_proba(row)


def torch_mlp(net: torch.nn.Module, mean: np.ndarray, std: np.ndarray) -> Any:
    mean_t, std_t = torch.from_numpy(mean), torch.from_numpy(std)

    def run(row: np.ndarray) -> np.ndarray:  # called under torch.inference_mode()
        z = net(((torch.from_numpy(row) - mean_t) / std_t)[None])
        return torch.softmax(z, dim=-1)[0].numpy()

    return run


def sklearn_recipe(x: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int) -> Any:
    """The recipe's classifier, trained on the train split of its own features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(alpha=0.01, batch_size=256, epsilon=1e-08, hidden_layer_sizes=(300,),
                        learning_rate="adaptive", max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x[train], y[train])
    return lambda row: clf.predict_proba(row[None])[0]


# --- 6. fresh processes: import time, load, first prediction, peak memory -------------------------------


_COLD = """
import json, resource, sys, time
t0 = time.perf_counter()
import serlaq
t1 = time.perf_counter()
m = serlaq.load(sys.argv[1])
t2 = time.perf_counter()
p = m.predict(sys.argv[2])
t3 = time.perf_counter()
p = m.predict(sys.argv[2])
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "second": t4 - t3,
                  "label": p.label, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "lightning": any(k.startswith("lightning") for k in sys.modules)}))
"""

_TORCH_ONLY = """
import json, resource
import torch
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def fresh_process(code: str, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time_serlaq() -> float:
    """Cumulative `import serlaq` time (s) as `python -X importtime` reports it."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import serlaq"], capture_output=True, text=True,
                         check=True)
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "serlaq":
            return int(parts[1]) / 1e6
    raise RuntimeError("no serlaq line in -X importtime output")


# --- main ------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="corpus (e.g. /work/shared/datasets/emodb-2s)")
    ap.add_argument("--dataset", default="auto", help="corpus layout for serlaq.data.corpora.discover")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", choices=("fit", "plain"), default="fit",
                    help="fit: serlaq.training.fit + the LAQ callback (the product path); "
                         "plain: a torch loop + the LAQ paper search (no Lightning)")
    ap.add_argument("--laq", default="{}", help="JSON of the laq: config section for --train fit (default: defaults)")
    ap.add_argument("--margin", type=float, default=0.01, help="LAQ T_margin for --train plain")
    ap.add_argument("--warmup", type=int, default=10, help="clips per pipeline run but not timed")
    ap.add_argument("--limit", type=int, default=None, help="use N clips spread over the corpus (all by default)")
    ap.add_argument("--mlp-passes", type=int, default=3, help="passes over all clips when timing the MLP stage")
    ap.add_argument("--cold-runs", type=int, default=3, help="fresh processes for import/load/memory (median)")
    ap.add_argument("--json", type=Path, default=None, help="also write all figures to this JSON file")
    args = ap.parse_args()

    torch.set_num_threads(1)
    import serlaq
    from serlaq.data.corpora import discover
    from serlaq.features import FeatureConfig

    clips = discover(args.data_dir, args.dataset)
    if args.limit:  # every k-th clip, so all speakers and classes stay in
        clips = clips[:: max(1, len(clips) // args.limit)][: args.limit]
    paths = [c.path for c in clips]
    labels = sorted({c.label for c in clips})
    y = np.array([labels.index(c.label) for c in clips], dtype=np.int64)
    split = project_split(clips, args.seed)
    test = split[2]
    cfg = FeatureConfig()
    print(f"corpus: {args.data_dir} ({len(clips)} clips, {len(labels)} classes, test split {len(test)} clips)",
          flush=True)

    # Pipelines alternate clip by clip (and swap order every clip) so machine load hits
    # them alike; the first `warmup` clips are run but not timed.
    print("decode + features, serlaq and the librosa recipe, clip by clip ...", flush=True)
    serlaq_feats = SerlaqFeatures(cfg)
    steps = {"serlaq": serlaq_feats, "librosa": librosa_recipe_features}
    vecs: dict[str, list[np.ndarray]] = {k: [] for k in steps}
    t_dec: dict[str, list[float]] = {k: [] for k in steps}
    t_feat: dict[str, list[float]] = {k: [] for k in steps}
    for k, p in enumerate(paths):
        for name in (("serlaq", "librosa") if k % 2 == 0 else ("librosa", "serlaq")):
            vec, dt_dec, dt_feat = steps[name](p)
            vecs[name].append(vec)
            if k >= args.warmup:
                t_dec[name].append(dt_dec)
                t_feat[name].append(dt_feat)
    x = np.stack(vecs["serlaq"]).astype(np.float32)
    lx = np.stack(vecs["librosa"])

    with tempfile.TemporaryDirectory() as tmp:
        if args.train == "fit":
            laq_cfg = json.loads(args.laq)
            print(f"serlaq fit + LAQ callback (laq: {laq_cfg or 'defaults'}) ...", flush=True)
            laq_path, net, mean, std, _ = fit_and_compress(args.data_dir, args.dataset, args.seed, Path(tmp), laq_cfg)
        else:
            laq_path = Path(tmp) / "bench.laq"
            print("plain torch training of the 3HL MLP + LAQ paper search ...", flush=True)
            net, mean, std, _ = train_and_compress(x, y, labels, split, cfg, laq_path, args.seed, args.margin)
        model = serlaq.load(laq_path)
        if model.labels != labels:
            raise SystemExit(f"model labels {model.labels} differ from the corpus labels {labels}")
        print("training the recipe's MLPClassifier ...", flush=True)
        mlps = {"serlaq": laq_mlp(model), "torch": torch_mlp(net, mean, std),
                "sklearn": sklearn_recipe(lx, y, split[0], args.seed)}
        inputs = {"serlaq": x, "torch": x, "sklearn": lx}

        print("MLP stage at batch 1, clip by clip ...", flush=True)
        t_mlp: dict[str, list[float]] = {k: [] for k in mlps}
        pred: dict[str, np.ndarray] = {k: np.zeros(len(paths), np.int64) for k in mlps}
        order = list(mlps)
        with torch.inference_mode():  # entered once: torch's best case at batch 1
            for _ in range(args.mlp_passes):
                for k in range(len(paths)):
                    for name in order[k % 3:] + order[: k % 3]:
                        row = inputs[name][k]
                        t0 = time.perf_counter()
                        prob = mlps[name](row)
                        dt = time.perf_counter() - t0
                        pred[name][k] = int(np.argmax(prob))
                        if k >= args.warmup:
                            t_mlp[name].append(dt)
        acc = {name: float(np.mean(pred[name][test] == y[test])) for name in mlps}

        print("serlaq end to end: LaqModel.predict(path) per clip ...", flush=True)
        e2e = []
        for k, p in enumerate(paths):
            t0 = time.perf_counter()
            model.predict(p)
            if k >= args.warmup:
                e2e.append(time.perf_counter() - t0)

        print("fresh processes: import, load, first prediction, peak memory ...", flush=True)
        cold = [fresh_process(_COLD, str(laq_path), str(paths[0])) for _ in range(max(1, args.cold_runs))]
        torch_only = fresh_process(_TORCH_ONLY)
        imp = statistics.median(import_time_serlaq() for _ in range(max(1, args.cold_runs)))
        size, fp32_size = model.size_bytes, model.fp32_size_bytes
        layer_dims = [model.input_dim, *(layer.rows for layer in model.layers)]
        layer_bits = [layer.bits for layer in model.layers]
        avg_bits = model.avg_bits

    med = {k: statistics.median(c[k] for c in cold) for k in ("import", "load", "first", "second", "maxrss_kb")}
    rows = [
        ("serlaq .laq (Rust packed GEMV)", median_ms(t_dec["serlaq"]), median_ms(t_feat["serlaq"]),
         median_ms(t_mlp["serlaq"]), acc["serlaq"]),
        ("same model, torch fp32 MLP", median_ms(t_dec["serlaq"]), median_ms(t_feat["serlaq"]),
         median_ms(t_mlp["torch"]), acc["torch"]),
        ("librosa + sklearn MLPClassifier", median_ms(t_dec["librosa"]), median_ms(t_feat["librosa"]),
         median_ms(t_mlp["sklearn"]), acc["sklearn"]),
    ]
    total = {name: d + f + m for name, d, f, m, _ in rows}
    serlaq_total = total[rows[0][0]]
    print()
    print(f"WAV -> label per clip, single process, median over {len(t_dec['serlaq'])} clips "
          f"(MLP stage: {len(t_mlp['serlaq'])} calls at batch 1; accuracy on the {len(test)} test clips); ms per clip")
    print(f"{'pipeline':<34}{'decode':>9}{'features':>10}{'MLP':>9}{'total':>9}{'vs serlaq':>11}{'test acc':>10}")
    for name, d, f, m, acc in rows:
        print(f"{name:<34}{d:>9.3f}{f:>10.3f}{m:>9.4f}{total[name]:>9.3f}{total[name] / serlaq_total:>10.1f}x"
              f"{acc * 100:>9.1f}%")
    print(f"{'serlaq LaqModel.predict(path)':<34}{'':>9}{'':>10}{'':>9}{median_ms(e2e):>9.3f}"
          f"{median_ms(e2e) / serlaq_total:>10.1f}x")
    print()
    speedup = total[rows[2][0]] / serlaq_total
    mlp_ratio = median_ms(t_mlp["torch"]) / median_ms(t_mlp["serlaq"])
    print(f"librosa recipe / serlaq .laq per clip:   {speedup:6.1f}x   (target >= 10x: {'met' if speedup >= 10 else 'MISSED'})")
    print(f"torch fp32 MLP / .laq MLP stage:         {mlp_ratio:6.2f}x   (target > 1: {'met' if mlp_ratio > 1 else 'MISSED'})")
    print(f"model ({args.train}): {' -> '.join(str(r) for r in layer_dims)}, bits {layer_bits}, "
          f"avg {avg_bits:.2f} bits, {size / 1000:.1f} KB .laq vs {fp32_size / 1000:.1f} KB fp32 "
          f"({fp32_size / size:.1f}x)")
    print()
    print(f"fresh process (median of {len(cold)}): import serlaq {med['import'] * 1000:.0f} ms "
          f"(-X importtime: {imp * 1000:.0f} ms), serlaq.load {med['load'] * 1000:.0f} ms, "
          f"first predict {med['first'] * 1000:.0f} ms, second {med['second'] * 1000:.1f} ms; "
          f"lightning imported: {any(c['lightning'] for c in cold)}")
    print(f"peak memory (max RSS) of load + predict one clip: {med['maxrss_kb'] / 1024:.0f} MiB "
          f"(a process that only imports torch: {torch_only['maxrss_kb'] / 1024:.0f} MiB)")

    if args.json:
        figures = {
            "clips_timed": len(t_dec["serlaq"]), "test_clips": len(test),
            "rows": [{"pipeline": n, "decode_ms": d, "features_ms": f, "mlp_ms": m, "total_ms": total[n],
                      "test_acc": a} for n, d, f, m, a in rows],
            "serlaq_predict_path_ms": median_ms(e2e), "speedup_vs_librosa": speedup, "mlp_speedup_vs_torch": mlp_ratio,
            "train": args.train, "layer_bits": layer_bits, "avg_bits": avg_bits, "size_bytes": size, "fp32_size_bytes": fp32_size,
            "cold": med, "import_time_s": imp, "torch_only_maxrss_kb": torch_only["maxrss_kb"],
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
