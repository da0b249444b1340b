"""`LAQCallback`: after `serlaq fit` trains, compress the best checkpoint into a `.laq` file.

`serlaq fit` runs it once training is over and `metrics.json` is written (so a failed
compression loses no scores), on the final model in memory, the one `SaveModel` saved as
`model.ckpt` (the weights where training stopped, or the best validation epoch with
`train.restore_best`): the `.laq` file compresses exactly the model `metrics.json`
scores, and `serlaq compress --checkpoint model.ckpt` reproduces it. On a plain Trainer it
runs as an ordinary `on_fit_end` callback. The search uses the datamodule's splits
(validation, or train + val for the label-free criteria); test data only appear in the
reported accuracies. Only rank 0 runs it, and an interrupted fit writes nothing.

Writes into the run folder: the `.laq` file (`laq.out`, default `model.laq`), `laq.json`
(settings, importance, the search trace with every tried bit-width, sizes, accuracies)
and, when QAT runs, `qat/` (its log and checkpoints).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from serlaq.laq_config import LaqConfig

log = logging.getLogger(__name__)


class LAQCallback(Callback):
    def __init__(self, laq_config: LaqConfig | None = None, out_path: str | Path | None = None) -> None:
        self.config = laq_config or LaqConfig()
        self.settings = self.config.resolved()
        self.out_path = None if out_path is None else Path(out_path)
        self.outcome: Any = None  # the LaqOutcome of the last run, for callers and tests

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.interrupted:
            return
        from serlaq.laq.compress import write_outputs
        from serlaq.laq.pipeline import compress_model, splits_of

        model = copy.deepcopy(pl_module).cpu().eval()
        datamodule = trainer.datamodule
        if datamodule is None:
            raise RuntimeError("LAQCallback needs the Trainer to run with a datamodule (trainer.fit(model, datamodule=...))")
        run_dir = Path(trainer.default_root_dir)
        out = self.out_path or run_dir / self.settings.out
        run_config = dict(model.hparams.get("run_config") or {})
        outcome = compress_model(
            model,
            splits_of(datamodule),
            self.settings,
            datamodule=datamodule,
            trainer_settings={k: v for k, v in (run_config.get("trainer") or {}).items() if v is not None},
            lr=float(model.hparams.get("lr", 1e-3)),
            folder=out.parent,
            seed=int(run_config.get("seed", 0)),
        )
        write_outputs(outcome, out)
        self.outcome = outcome
        log.info("LAQ: wrote %s (%.3f avg bits)", out, outcome.avg_bits)
