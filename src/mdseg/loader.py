"""The training input pipeline: which images form each step's batch, and who decodes them.

The stream is a pure function of (seed, step). A generator seeded by (seed, step) picks the
global batch (cheap: every rank draws it); the image at position p of that batch is augmented
with a generator seeded by (seed, step, p). A rank therefore decodes and augments only its own
positions (:func:`mdseg.distributed.shard`), the union of the ranks' shards is exactly the
one-process batch, and a run resumed at step k gets the batches an uninterrupted run gets, with
DataLoader workers or without. Batches leave the workers as uint8 (images ``[B, H, W, 3]``,
labels ``[B, H, W]``): a quarter of float32's bytes over the host-to-device copy; the training
loop normalises them on the device.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from mdseg.data import Augment, SplitDataset
from mdseg.io import IGNORE_ID

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class RankBatches(torch.utils.data.Dataset):
    """This rank's share of every step's global batch: item ``step`` is ``(images, labels,
    owners)`` for the global-batch ``positions`` this rank trains on.

    ``balanced`` puts ``batch_size // len(datasets)`` images of every dataset in each batch, in
    one block per dataset (AutoUniSeg: 3 images per dataset per GPU); ``concat`` samples
    uniformly from the concatenation of all datasets (UniSeg).
    """

    def __init__(
        self,
        datasets: list[SplitDataset],
        batch_size: int,
        augment: Augment,
        sampling: str = "balanced",
        seed: int = 0,
        positions: list[int] | None = None,
    ) -> None:
        if sampling not in ("balanced", "concat"):
            raise ValueError(f"sampling must be 'balanced' or 'concat', got {sampling!r}")
        if sampling == "balanced" and batch_size % len(datasets):
            raise ValueError(
                f"balanced sampling needs batch_size ({batch_size}) divisible by the number of "
                f"datasets ({len(datasets)})"
            )
        for data in datasets:  # ids of these, and the ignore id, fit the uint8 label batches
            if len(data.classes) > IGNORE_ID:
                raise ValueError(f"{data.dir}: {len(data.classes)} classes; at most {IGNORE_ID}")
        self.datasets, self.batch_size, self.augment = datasets, batch_size, augment
        self.sampling, self.seed = sampling, seed
        self.positions = list(range(batch_size)) if positions is None else positions
        self.sizes = np.array([len(d) for d in datasets])

    def picks(self, step: int) -> list[tuple[int, int]]:
        """``(dataset, index)`` of every image of step ``step``'s global batch."""
        rng = np.random.default_rng([self.seed, step])
        if self.sampling == "balanced":
            per = self.batch_size // len(self.datasets)
            return [(d, int(rng.integers(n))) for d, n in enumerate(self.sizes) for _ in range(per)]
        flat = rng.integers(self.sizes.sum(), size=self.batch_size)
        bounds = np.cumsum(self.sizes)
        ds = np.searchsorted(bounds, flat, side="right")
        starts = bounds - self.sizes
        return [(int(d), int(i - starts[d])) for d, i in zip(ds, flat, strict=True)]

    def item(self, step: int, position: int, pick: tuple[int, int]) -> tuple[np.ndarray, ...]:
        """The augmented image and label at ``position`` of step ``step`` (``pick`` from
        :meth:`picks`); its random draws depend on (seed, step, position) alone."""
        image, label = self.datasets[pick[0]].read(pick[1])
        return self.augment(image, label, np.random.default_rng([self.seed, step, position]))

    def __getitem__(self, step: int) -> Batch:
        picks = self.picks(step)
        crops = [self.item(step, p, picks[p]) for p in self.positions]
        images = torch.from_numpy(np.stack([image for image, _ in crops]))
        labels = torch.from_numpy(
            np.stack([label for _, label in crops]).astype(np.uint8, copy=False)
        )
        owners = torch.tensor([picks[p][0] for p in self.positions])
        return images, labels, owners


def _worker_init(_: int) -> None:
    """One OpenCV thread per worker (the workers are the parallelism), and stop signals left to
    the training process: a worker killed by SLURM's SIGTERM would abort the checkpoint."""
    cv2.setNumThreads(1)
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)


def training_batches(data: RankBatches, start: int, stop: int, workers: int) -> Iterator[Batch]:
    """Batches of steps ``start``..``stop - 1`` in order, built by ``workers`` DataLoader
    processes (0: in this process), each building whole batches, ``2 * workers`` batches ahead,
    into pinned memory when CUDA is there. One iterator covers the run, so the workers live as
    long as it. Its own generator keeps the DataLoader off the global torch RNG, which the
    checkpoint restores.

    The workers fork while this process runs OpenCV on one thread: a child forked from a
    process whose OpenCV thread pool is running hangs in ``cv2.setNumThreads``.
    """
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=2 if workers else None,
        worker_init_fn=_worker_init if workers else None,
        generator=torch.Generator().manual_seed(data.seed),
    )
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return iter(loader)
    finally:
        cv2.setNumThreads(threads)
