"""Install the newest runtime wheel of a folder into a fresh venv with no Rust toolchain on
PATH, then load a model and predict a generated WAV with it: the wheel works on its own.

    python scripts/check_wheel.py dist [--model runs/demo/model.laq]

Exit code 0 and one summary line on success; the failing step's output otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tone_wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(n)))


def model_file(given: Path | None, tmp: Path) -> Path:
    if given is not None:
        return given
    demo = ROOT / "runs" / "demo" / "model.laq"
    if demo.is_file():
        return demo
    sys.path[:0] = [str(ROOT / "tests" / "runtime"), str(ROOT / "python")]
    from rt_builders import random_model  # torch-free: numpy + the native writer

    return random_model(tmp / "random.laq").path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where `maturin build` put the wheel")
    parser.add_argument("--model", type=Path, default=None, help="a .laq file (default: runs/demo/model.laq or a generated one)")
    args = parser.parse_args()
    wheels = sorted(args.folder.glob("serlaq-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        sys.exit(f"{args.folder}: no serlaq wheel found")
    wheel = wheels[-1]
    with tempfile.TemporaryDirectory(prefix="check-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        model = model_file(args.model, tmp)
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # PATH with no cargo or rustc: the wheel must not need to compile anything
        path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                               if d and not (Path(d) / "cargo").exists() and not (Path(d) / "rustc").exists())
        env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{path}"}
        env.pop("PYTHONPATH", None)
        env.pop("CARGO_HOME", None)
        if shutil.which("cargo", path=env["PATH"]) or shutil.which("rustc", path=env["PATH"]):
            sys.exit("could not take the Rust toolchain off PATH")

        def run(*cmd: str) -> str:
            done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            return done.stdout

        run(str(venv / "bin" / "pip"), "install", "-q", "--only-binary", ":all:", str(wheel))
        probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) for m in ('torch', 'lightning')))"
        run(str(venv / "bin" / "python"), "-c", probe)
        clip = tmp / "tone.wav"
        tone_wav(clip)
        run(str(venv / "bin" / "serlaq"), "info", str(model))
        out = run(str(venv / "bin" / "serlaq"), "predict", str(model), str(clip), "--format", "jsonl")
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 1e6
    print(f"check_wheel: {wheel.name} installed without a Rust toolchain ({size:.0f} MB venv) and predicted: {out.strip()}")


if __name__ == "__main__":
    main()
