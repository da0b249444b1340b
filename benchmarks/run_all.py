"""Run every benchmark in sequence and print their tables (`make bench`).

    python benchmarks/run_all.py --data-root ../shared/datasets [--quick] [--only kernels,laq]

Each benchmark is its own script (run one alone for its options); this runner only
chooses the arguments the README's figures were measured with. Timing benchmarks run
first, before the long accuracy runs, on a machine that should otherwise be idle.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAPER = ["--set", "features.preset=paper"]


def plan(root: Path, quick: bool) -> list[tuple[str, list[str]]]:
    emodb, emodb2s = str(root / "emodb"), str(root / "emodb-2s")
    seeds = "3" if quick else "20"
    return [
        ("kernels", ["bench_kernels.py"] + (["--quick"] if quick else [])),
        ("features", ["features.py", "--data-dir", emodb]),
        ("inference", ["bench_inference.py", "--data-dir", emodb2s, "--batch-dir", emodb]
         + (["--limit", "100"] if quick else ["--install-size"])),
        ("rt", ["bench_rt.py"]),
        ("segments", ["bench_segments.py"] + (["--minutes", "10"] if quick else [])),
        ("soak", ["bench_soak.py"]),
        ("threads", ["bench_threads.py"] + (["--repeats", "1"] if quick else [])),
        ("parity", ["bench_parity.py", "--data-root", str(root)]),
        ("fuzz", ["fuzz_laq.py", "--seconds", "10" if quick else "60"]),
        ("agreement", ["bench_agreement.py", "--data-root", str(root), "--seeds", "2" if quick else "5"]),
        # the paper's tables: the paper preset (features and recipe), one switch
        ("fit", ["bench_fit.py", "--data-dir", emodb2s, "--seeds", "5" if quick else "20", *PAPER]),
        ("fit-emodb", ["bench_fit.py", "--data-dir", emodb, "--seeds", seeds, "--no-timing", *PAPER]),
        ("laq-paper", ["bench_laq.py", "--data-dir", emodb2s, "--seeds", "5", "--no-qat-rows", *PAPER]),
        ("laq", ["bench_laq.py", "--data-dir", emodb, "--data-dir", emodb2s, "--seeds", seeds, *PAPER]),
        # beyond the paper: the default preset and recipe against the paper preset

        ("acceptance", ["bench_fit.py", "--data-dir", emodb, "--protocol", "acceptance", "--seeds", seeds]),
        ("acceptance-2s", ["bench_fit.py", "--data-dir", emodb2s, "--protocol", "acceptance", "--seeds", seeds]),
        ("loso", ["bench_fit.py", "--data-dir", emodb, "--protocol", "loso"]),
        ("cross-corpus", ["bench_cross_corpus.py", "--data-root", str(root), "--pairs", "2" if quick else "5"]),
        # configs/general.yaml names its corpora relative to the repository root (../shared/datasets)
        ("conditions", ["bench_conditions.py"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--quick", action="store_true", help="fewer seeds and smaller sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(n for n, _ in plan(Path("."), False)))
    args = parser.parse_args()
    if not (args.data_root / "emodb").is_dir() or not (args.data_root / "emodb-2s").is_dir():
        parser.error(f"--data-root {args.data_root}: expected the folders emodb/ and emodb-2s/ in it")
    only = {name for name in args.only.split(",") if name}
    failed = []
    for name, argv in plan(args.data_root, args.quick):
        if only and name not in only:
            continue
        print(f"\n===== {name}: python benchmarks/{' '.join(argv)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]])
        print(f"===== {name}: exit {code} in {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
