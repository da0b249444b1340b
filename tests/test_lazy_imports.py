"""Commands that only read a file must not import torch (seconds of start-up, hundreds of MB).

`serlaq info MODEL.laq` parses the `.laq` header and `serlaq fit --config` validates the
YAML before anything heavy loads, so a typo fails at once. Each check runs the real CLI in
a fresh interpreter and inspects `sys.modules` afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rt_builders import random_model

_PROBE = """
import json, sys
from serlaq.cli import main
sys.argv = ["serlaq", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in ("torch", "torchaudio", "lightning") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def run_probe(*args: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120)
    *lines, last = proc.stderr.strip().splitlines()
    return json.loads(last), proc.stdout + "\n".join(lines)


def test_info_reads_a_model_without_importing_torch(tmp_path: Path) -> None:
    model = random_model(tmp_path / "m.laq", bits=(4, 1, 8))
    result, out = run_probe("info", str(model.path))
    assert result["code"] in (0, None), out
    assert "bits" in out.lower()
    assert result["heavy"] == []


def test_bad_fit_config_fails_before_importing_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  n_mels: -3\n")
    result, out = run_probe("fit", "--config", str(bad))
    assert result["code"] == 1
    assert "n_mels" in out and "Traceback" not in out
    assert result["heavy"] == []
