"""Reading prepared datasets (the results contract) into tensors, with the papers' augmentations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mdseg.datasets.real.png import read_label
from mdseg.io import IGNORE_ID, read_manifest, read_split_list

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class SplitDataset(torch.utils.data.Dataset):
    """One split of one prepared dataset: uint8 image and int64 label map per item."""

    def __init__(self, dataset_dir: str | Path, split: str) -> None:
        self.dir = Path(dataset_dir)
        self.manifest = read_manifest(self.dir / "manifest.json")
        if split not in self.manifest["splits"]:
            raise KeyError(
                f"{self.dir}: no split {split!r}; it has {sorted(self.manifest['splits'])}"
            )
        self.pairs = read_split_list(self.dir / self.manifest["splits"][split]["list"])
        self.classes: list[str] = self.manifest["classes"]

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``[H, W, 3]`` uint8 RGB and label ``[H, W]`` ids, checked against the manifest.

        Images decode with OpenCV (several times faster than Pillow on 2 MP PNG/JPEG); labels
        with :func:`read_label` (OpenCV for greyscale, Pillow keeps palette indices).
        """
        image_path, label_path = self.pairs[index]
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{image_path}: not a readable image")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        label = read_label(Path(label_path))
        if label.ndim != 2:
            raise ValueError(f"{label_path}: expected a 2-D id map, got shape {label.shape}")
        if label.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: label size {label.shape} != image {image.shape[:2]}")
        bad = (label >= len(self.classes)) & (label != IGNORE_ID)
        if bad.any():
            raise ValueError(
                f"{label_path}: ids {sorted(set(label[bad].tolist()))} are not classes "
                f"0..{len(self.classes) - 1} of {self.dir.name} nor the ignore id {IGNORE_ID}"
            )
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[3, H, W]`` uint8 and label ``[H, W]`` int64 (normalise on the device)."""
        image, label = self.read(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(
            label.astype(np.int64)
        )


def normalise_images(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 RGB ``[..., 3, H, W]`` to ImageNet-normalised ``dtype``, on the images' device.

    Done after the host-to-device copy, so the copy moves a quarter of the bytes of float32.
    """
    mean = MEAN.to(images.device, torch.float32)
    std = STD.to(images.device, torch.float32)
    return ((images.float() / 255.0 - mean) / std).to(dtype)


def same_size_batches(
    data: SplitDataset,
    batch_size: int = 8,
    indices: Iterable[int] | None = None,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Items of ``data`` (all, or ``indices``) in order, stacked while their size agrees (real
    datasets mix image sizes): uint8 images and int64 labels, for evaluation and statistics
    passes. ``workers`` > 0 decodes in that many DataLoader processes, in the same order."""
    picked = list(range(len(data)) if indices is None else indices)
    items: Iterable[tuple[torch.Tensor, torch.Tensor]] = (data[i] for i in picked)
    if workers > 0:
        items = torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, picked),
            batch_size=None,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=4,
        )
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for image, label in items:
        if images and (len(images) == batch_size or label.shape != labels[0].shape):
            yield torch.stack(images), torch.stack(labels)
            images, labels = [], []
        images.append(image)
        labels.append(label)
    if images:
        yield torch.stack(images), torch.stack(labels)


@dataclass(frozen=True)
class Augment:
    """Random rescale, random crop (padded with ignore) and horizontal flip, as the papers do.

    ``short_side`` first brings every image's shorter side to that many pixels (UniSeg: 1080,
    so datasets of different resolutions give crops of one scale); the random scale applies on
    top of it, in the same single resampling.
    """

    crop: int
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    short_side: int | None = None

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s = rng.uniform(*self.scale)
        h, w = label.shape
        if self.short_side:
            s *= self.short_side / min(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
        pad_h, pad_w = max(0, self.crop - size[0]), max(0, self.crop - size[1])
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            label = F.pad(label, (0, pad_w, 0, pad_h), value=IGNORE_ID)
        top = int(rng.integers(0, label.shape[0] - self.crop + 1))
        left = int(rng.integers(0, label.shape[1] - self.crop + 1))
        image = image[:, top : top + self.crop, left : left + self.crop]
        label = label[top : top + self.crop, left : left + self.crop]
        if self.flip and rng.random() < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        return image, label


class MultiDatasetBatches:
    """Endless, seeded batches drawn from several datasets.

    ``balanced`` puts ``batch_size // len(datasets)`` images of every dataset in each batch
    (AutoUniSeg: 3 images per dataset per GPU); ``concat`` samples uniformly from the
    concatenation of all datasets (UniSeg). The stream is a pure function of (seed, step), so a
    resumed run sees exactly the batches an uninterrupted run would.
    """

    def __init__(
        self,
        datasets: list[SplitDataset],
        batch_size: int,
        augment: Augment,
        sampling: str = "balanced",
        seed: int = 0,
    ) -> None:
        if sampling not in ("balanced", "concat"):
            raise ValueError(f"sampling must be 'balanced' or 'concat', got {sampling!r}")
        if sampling == "balanced" and batch_size % len(datasets):
            raise ValueError(
                f"balanced sampling needs batch_size ({batch_size}) divisible by the number of "
                f"datasets ({len(datasets)})"
            )
        self.datasets, self.batch_size, self.augment = datasets, batch_size, augment
        self.sampling, self.seed = sampling, seed
        self.sizes = np.array([len(d) for d in datasets])

    def indices(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        if self.sampling == "balanced":
            per = self.batch_size // len(self.datasets)
            return [(d, int(rng.integers(n))) for d, n in enumerate(self.sizes) for _ in range(per)]
        flat = rng.integers(self.sizes.sum(), size=self.batch_size)
        bounds = np.cumsum(self.sizes)
        ds = np.searchsorted(bounds, flat, side="right")
        starts = bounds - self.sizes
        return [(int(d), int(i - starts[d])) for d, i in zip(ds, flat, strict=True)]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        images, labels, owners = [], [], []
        for d, i in self.indices(rng):
            image, label = self.datasets[d][i]
            image, label = self.augment(normalise_images(image), label, rng)
            images.append(image)
            labels.append(label)
            owners.append(d)
        return torch.stack(images), torch.stack(labels), torch.tensor(owners)
