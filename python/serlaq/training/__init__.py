"""`fit(config)`: one run from a config to an evaluated model in a run folder.

The run folder (`out_dir/name`, or `--out DIR`) holds:

    model.ckpt             the trained model (weights + hparams): what metrics.json scores,
                           what `laq:` compresses and what `SERClassifier.load_from_checkpoint` reads
    best.ckpt              the epoch with the best `train.monitor` value
    last.ckpt              the latest finished epoch, with optimizer state: what `--resume` continues
    config.yaml            the resolved config (every default filled in, paths absolute)
    metrics.json           val/test accuracy, macro-F1, UAR, per-class accuracy, confusion
                           matrices, parameter count, seed, split sizes, labels, timings
    confusion_matrix.png   the test confusion matrix
    logs/metrics.csv       the per-epoch training log (logs/resume-N/ after each resume)
    model.laq, laq.json    with a `laq:` section: the compressed model (serlaq.laq.callback),
                           written after metrics.json, so a failed compression loses no scores

Training follows the paper (Adam 1e-3, batch 32, dropout 0.1, early stopping with patience
5). Two details the paper leaves open were chosen on validation data only, never on a test
split (`benchmarks/bench_fit.py --select`: each seed's test split is set aside and the rest
is split again into inner train / val / holdout; 40 seeds on EMODB-2s, inner holdout
accuracy in %):

    monitor    final model                 inner val   inner holdout
    val_loss   best epoch (restored)       66.0        64.3
    val_acc    best epoch (restored)       70.4        65.3
    val_loss   where training stopped      66.6        66.8
    val_acc    where training stopped      67.3        67.7   <- default

So early stopping watches validation accuracy (the loss starts rising from overconfidence
while accuracy still improves), and the final model is the one where training stopped
(`train.restore_best: false`): picking the single best epoch on 54 validation clips
mostly picks validation noise (70.4 on the clips that chose it, 65.3 on fresh ones).

The final scores are computed once per sample on model.ckpt in the main process, so they
are exact whatever strategy trained the model (DDP pads uneven shards).

Modules: `run` (the orchestration), `callbacks` (the run's own Lightning callbacks),
`run_folder` (file names, resume checks, writing), `scoring` (metrics.json),
`summary` (the terminal lines).
"""

from serlaq.lightning_utils import quiet_lightning
from serlaq.training.run import CompressionError, FitInterrupted, build_model, build_trainer, fit
from serlaq.training.run_folder import RunResult, check_resumable, clear_run_outputs, resolve_paths
from serlaq.training.summary import format_summary

__all__ = [
    "CompressionError",
    "FitInterrupted",
    "RunResult",
    "build_model",
    "build_trainer",
    "check_resumable",
    "clear_run_outputs",
    "fit",
    "format_summary",
    "quiet_lightning",
    "resolve_paths",
]
