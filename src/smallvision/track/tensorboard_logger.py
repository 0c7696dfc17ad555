"""TensorBoard event files in ``<run dir>/tensorboard/``: every history column per epoch, a few
training images (raw and augmented), and at the end the final figures with the run's hparams.

Written with ``torch.utils.tensorboard`` (it needs the ``tensorboard`` package); open with
``tensorboard --logdir runs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from smallvision.rundir import MetricsRecord
from smallvision.track.base import Tracker, final_metrics
from smallvision.train.events import EpochRecord


class TensorBoardLogger(Tracker):
    """Scalars per epoch (step = epoch, as in ``history.csv``), images once, hparams at the end.

    Args:
        log_dir: the folder of the event files (appended to on resume).
        hparams: the run's settings, shown in the HParams tab against its final figures.
        samples: (n, C, H, W) training images, uint8 or float in [0, 1].
        augment: the training augmentation; an empty one shows the raw samples only.
        seed: seeds the augmentation's draw, so the same run shows the same images.
    """

    def __init__(self, log_dir: Path, hparams: dict[str, Any], samples: torch.Tensor, augment, seed: int):
        self.log_dir = Path(log_dir)
        self.hparams = hparams
        self.samples, self.augment, self.seed = samples, augment, seed
        self.writer = None

    def before_fit(self, trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # resumed after epoch E: drop events a killed session logged past its last checkpoint
        purge = trainer.epoch + 1 if trainer.epoch else None
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge)
        if not trainer.epoch and len(self.samples):
            self._images()

    def _images(self) -> None:
        x = self.samples.to("cpu")
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)  # (n, C, H, W) in [0, 1]
        if x.shape[1] not in (1, 3):  # TensorBoard draws grey or RGB: show the first channel
            x = x[:, :1]
        self.writer.add_images("samples/raw", x, 0)
        if len(self.augment):
            gen = torch.Generator().manual_seed(self.seed)
            self.writer.add_images("samples/augmented", self.augment(x.clone(), gen).clamp(0, 1), 0)

    def after_epoch(self, trainer, record: EpochRecord) -> None:
        for key, value in record.row().items():
            if key != "epoch":
                self.writer.add_scalar(key, value, record.epoch)

    def after_fit(self, trainer) -> None:
        if self.writer is not None:
            self.writer.flush()

    def finish(self, run_dir: Path, metrics: MetricsRecord) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = final_metrics(metrics)
        step = metrics.epochs_run or 0
        shown = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in self.hparams.items()}
        # in this run's own event file, so the HParams tab links the settings to its curves
        writer = self.writer._get_file_writer()
        for summary in hparams(shown, final):
            writer.add_summary(summary)
        for key, value in final.items():
            self.writer.add_scalar(key, value, step)
        self.writer.close()

    def abort(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
