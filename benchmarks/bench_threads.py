"""QAT under CPU contention: `serlaq compress` wall time idle and beside a busy neighbour process.

One synthetic demo run is trained twice (`--no-compress`): with the default thread count
(`train.threads: 1`) and with `train.threads: null` (a pool over every CPU available to
the process: what torch's own default did before). Each checkpoint is then compressed
(default mode: budget search + 30 QAT epochs) in a fresh process, once on an idle machine
and once while a neighbour process keeps one core busy (a spin loop that stops by itself).
The QAT seconds come from each run's laq.json; every ratio is against the idle run of the
same thread setting, measured in the same invocation.

    python benchmarks/bench_threads.py [--repeats 3] [--clips-per-class 35]

Target: the default's QAT with one busy core within 2x of its idle time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def serlaq(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "serlaq.cli", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"serlaq {' '.join(args)} failed:\n{result.stderr}")
    return result


def qat_seconds(checkpoint: Path, out: Path, env: dict[str, str], busy: bool) -> tuple[float, float]:
    """(QAT seconds from laq.json, wall seconds of the whole command), optionally beside a spinner."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=600)]) if busy else None
    try:
        if spinner is not None:
            time.sleep(0.5)  # let it take its core
        started = time.perf_counter()
        summary = json.loads(serlaq("compress", "--checkpoint", str(checkpoint), "--out", str(out), "--json", env=env).stdout)
        wall = time.perf_counter() - started
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return float(summary["timings"]["qat_s"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="compressions per setting (median reported)")
    parser.add_argument("--clips-per-class", type=int, default=35, help="synthetic corpus size (demo: 35)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "python"))  # this checkout's serlaq, as the subprocesses get
    from serlaq.cpus import available_cpus

    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'python'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        env["SERLAQ_CACHE"] = str(Path(tmp) / "cache")
        settings = {"threads=1 (default)": "1", f"threads=null ({available_cpus()} available CPUs)": "null"}
        checkpoints = {}
        for name, threads in settings.items():
            run = Path(tmp) / f"run-{threads}"
            serlaq(
                "fit", "--config", str(ROOT / "configs" / "demo.yaml"), "--out", str(run), "--no-compress",
                "--set", f"data.synthetic.clips_per_class={args.clips_per_class}", "--set", f"train.threads={threads}",
                "--set", "trainer.enable_progress_bar=false", env=env,
            )  # fmt: skip
            checkpoints[name] = run / "model.ckpt"
        print(f"bench_threads: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
              f"{available_cpus()} available to this process, median of {args.repeats}")
        print("| torch threads | QAT idle (s) | QAT, one busy core (s) | busy / idle | command wall idle / busy (s) |")
        print("|---|---|---|---|---|")
        for name, ckpt in checkpoints.items():
            rows = {"idle": [], "busy": []}
            for i in range(args.repeats):  # interleaved, so drift in the machine's load hits both alike
                for state in ("idle", "busy"):
                    rows[state].append(qat_seconds(ckpt, Path(tmp) / f"{state}{i}.laq", env, busy=state == "busy"))
            idle = statistics.median(q for q, _ in rows["idle"])
            busy = statistics.median(q for q, _ in rows["busy"])
            walls = [statistics.median(w for _, w in rows[s]) for s in ("idle", "busy")]
            print(f"| {name} | {idle:.2f} | {busy:.2f} | **{busy / idle:.2f}x** | {walls[0]:.1f} / {walls[1]:.1f} |")


if __name__ == "__main__":
    main()
