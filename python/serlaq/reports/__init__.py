"""The paper's tables and figures from a trained run (or several seeds of it).

`serlaq report RUN_DIR` loads the run's `model.ckpt`, rebuilds its data, and writes into
`RUN_DIR/report/` (or `--out`):

- `report.md` and `report.json`:
  - Table 4: fp32, fixed 8..1 bits (the paper's quantizer, every layer at b) and the paper's
    LAQ, each with average bits, size (KB = 1000 bytes: packed weights + fp32 biases +
    scales; the real `.laq` file size beside it), validation and test accuracy; plus the
    rows beyond the paper: fixed b + QAT, LAQ + QAT, the default compress mode, and fp32
    fine-tuned for the same extra epochs (the control for "QAT helps because it trains longer");
  - Table 3: the paper's nine importance-weight rows (w_P, w_E, w_V) → LAQ bits and accuracy;
- `accuracy_vs_bits.png` (Fig. 1/3: fixed-bit curve, LAQ star), `layer_bits.png` (bits per
  layer), `confusion_laq.png` (Fig. 4: the LAQ model on the test split);
- with `--hl-sweep`: the Table-2 variants (2HL..9HL) trained with the same config, and
  `hl_sweep.png` (Fig. 3);
- with `--seeds N`: N seeds of the same config (the run's seed first; the others are trained
  into `report/seeds/`), every number as mean ± sd over seeds, and the paired difference
  to fp32 on the same split (test splits of ~54 clips move ~2 points per clip).

With `--protocol loso`: leave-one-speaker-out cross-validation of the run's config instead
(`serlaq.reports.loso`): one fold per speaker, trained into `report-loso/folds/`, fp32 and
compressed scores (accuracy, UAR, macro-F1) on the held-out speaker, one row per fold and
mean ± sd over folds, in `RUN_DIR/report-loso/` (or `--out`).

Every report's header names the feature preset and training recipe it ran.

All selection (bits, QAT stopping) uses validation or training data; test accuracy is only
reported. `evaluate_model` is the per-model core, shared with `benchmarks/bench_laq.py`.

Modules: `rows` (one model's Table-4/Table-3 rows), `over_seeds` (mean ± sd, paired
differences), `loso` (the LOSO folds), `meta` (preset/recipe/architecture of the header),
`markdown` (report.md), `figures` (the PNGs), `command` (`report()`).
"""

from serlaq.reports.command import report
from serlaq.reports.loso import LOSO_ROWS, loso_report
from serlaq.reports.markdown import render_loso_markdown, render_markdown
from serlaq.reports.over_seeds import aggregate, mean_sd
from serlaq.reports.rows import FIXED_BITS, PAPER, QAT_ROWS, ROWS, evaluate_model, quantized_row

__all__ = ["FIXED_BITS", "LOSO_ROWS", "PAPER", "QAT_ROWS", "ROWS", "aggregate", "evaluate_model", "mean_sd", "loso_report", "quantized_row", "render_loso_markdown", "render_markdown", "report"]
