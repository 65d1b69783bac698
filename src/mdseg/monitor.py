"""Live metrics of a training run: a periodic plain log line and TensorBoard scalars.

Job logs are files, so progress is one self-contained line every ``training.log_every`` steps
(no ``\\r`` bars), e.g.::

    step 120/600  loss 1.234  lr 4.1e-03  data 0.01s  step 0.21s  eta 1m41s  mem 1.2G

``loss`` is the mean over the steps since the previous line, ``data`` and ``step`` the mean
seconds per step spent waiting for the batch and on the whole step (the wait included),
``eta`` extrapolates this process's mean step time to the remaining steps, ``mem`` is the
peak memory so far (CUDA's peak allocation on a GPU, the process's peak resident set on the
CPU); the method's own log fields follow. Validation (``training.val_every``) adds a line
``step 200/600  val mIoU 41.20  cityscapes 43.10 ...``.

TensorBoard event files go to ``<out_dir>/tb``: every step's loss, learning rate and numeric
method fields, the timings and memory at each log line, validation mIoU. A resumed run
appends from its checkpoint's step (``purge_step`` hides what the interrupted run wrote after
it); a run from step 0 starts the folder afresh. Other ranks than 0 get a silent monitor
(``every`` 0, no TensorBoard).
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mdseg.progress import GIB, duration, size


def peak_memory(device: torch.device) -> int:
    """Peak bytes so far: CUDA's peak allocation on ``device``, else the peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def field_text(name: str, value: Any) -> str:
    """A method log field for the line: numbers to 4 significant digits, text as it is."""
    return f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"


class Monitor:
    """Rank 0's log lines and TensorBoard writer for one training run, from step ``start``."""

    def __init__(
        self,
        out_dir: Path,
        total: int,
        start: int,
        device: torch.device,
        every: int = 20,
        tensorboard: bool = True,
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.total, self.every, self.device = total, every, device
        self.emit = emit or (lambda line: print(line, file=sys.stderr, flush=True))
        self.began, self.done = time.perf_counter(), 0
        self._window: list[tuple[float, float, float]] = []  # (loss, data s, step s) per step
        self.writer = None
        if tensorboard:
            # imported here: torch.utils.tensorboard costs ~0.2 s to import, only runs pay it
            from torch.utils.tensorboard import SummaryWriter

            folder = Path(out_dir) / "tb"
            if start == 0:  # a fresh run: no events of an earlier run of this experiment
                shutil.rmtree(folder, ignore_errors=True)
            # the first step this run logs is start + 1: TensorBoard drops any earlier events
            # from there on (written after the checkpoint by the run that was interrupted).
            # A queue of 100 events: at the default 10, every few scalars wait for the writer
            # thread to take the GIL, ~75 us a scalar instead of ~35
            self.writer = SummaryWriter(str(folder), purge_step=start + 1, max_queue=100)

    def step(
        self, row: dict[str, Any], fields: dict[str, Any], data_s: float, step_s: float
    ) -> None:
        """Record a finished step: its ``train_log.csv`` row (``step``, ``loss``, ``lr``), the
        method's log ``fields`` and its timings; write the line when the step is a multiple of
        ``every``."""
        step = row["step"]
        self.done += 1
        if self.every:
            self._window.append((row["loss"], data_s, step_s))
        fields = {k: v for k, v in fields.items() if v is not None}
        if self.writer is not None:
            self.writer.add_scalar("train/loss", row["loss"], step)
            self.writer.add_scalar("train/lr", row["lr"], step)
            for name, value in fields.items():
                if isinstance(value, int | float):
                    self.writer.add_scalar(f"train/{name}", value, step)
        if self.every and step % self.every == 0:
            self._line(step, row["lr"], fields)

    def _line(self, step: int, lr: float, fields: dict[str, Any]) -> None:
        n = len(self._window)
        loss, data_s, step_s = (sum(col) / n for col in zip(*self._window, strict=True))
        self._window = []
        eta = (time.perf_counter() - self.began) / self.done * (self.total - step)
        memory = peak_memory(self.device)
        parts = [
            f"step {step}/{self.total}",
            f"loss {loss:.4g}",
            f"lr {lr:.1e}",
            f"data {data_s:.2f}s",
            f"step {step_s:.2f}s",
            f"eta {duration(eta)}",
            f"mem {size(memory)}",
            *(field_text(k, v) for k, v in fields.items()),
        ]
        self.emit("  ".join(parts))
        if self.writer is not None:
            self.writer.add_scalar("time/data_s", data_s, step)
            self.writer.add_scalar("time/step_s", step_s, step)
            self.writer.add_scalar("memory/peak_gib", memory / GIB, step)

    def validation(
        self, step: int, miou: float | None, per_dataset: dict[str, float | None], note: str
    ) -> None:
        """Write a validation result: the mean ``miou`` over the datasets (None: nothing
        scored) and each dataset's; ``note`` says what was scored (or why nothing was)."""
        shown = "n/a" if miou is None else f"{miou:.2f}"
        scores = [f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in per_dataset.items()]
        self.emit("  ".join([f"step {step}/{self.total}", f"val mIoU {shown}", *scores, note]))
        if self.writer is None:
            return
        if miou is not None:
            self.writer.add_scalar("val/miou", miou, step)
        for key, value in per_dataset.items():
            if value is not None:
                self.writer.add_scalar(f"val/{key}", value, step)

    def flush(self) -> None:
        """Push buffered events to disk (at checkpoints: a resumed run continues from there)."""
        if self.writer is not None:
            self.writer.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *_: object) -> None:
        if self.writer is not None:
            self.writer.close()
