"""PASCAL Context ``.mat`` labels: 459-class ``LabelMap`` -> the 59 common classes + background.

The 59 classes are those of the standard benchmark; in the 459-class id order they come out in
context.txt order (after ``background`` = 0). Every other class, and unlabeled 0, is background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from mdseg.datasets.real.convert import Item, apply_lut, build_lut, locate

# 459-class ids of the 59 benchmark classes, ascending (= context.txt order after background)
CONTEXT59_IDS = (
    2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113,
    115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326,
    347, 349, 354, 355, 360, 366, 368, 397, 415, 416, 420, 424, 427, 440, 445, 454, 458,
)  # fmt: skip
CONTEXT_LUT = build_lut(
    {k: 0 for k in range(460)} | {k: i + 1 for i, k in enumerate(CONTEXT59_IDS)}, known=(), size=460
)


def context_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """Ids from VOC2010 ``ImageSets/Main/<split>.txt``; labels ``trainval/<id>.mat``."""
    voc = locate(root, "ImageSets/Main").parents[1]
    mats = locate(root, "trainval/*.mat").parent
    items = []
    for ours, official in splits.items():
        ids = (voc / "ImageSets" / "Main" / f"{official}.txt").read_text().split()
        items += [Item(ours, i, voc / "JPEGImages" / f"{i}.jpg", mats / f"{i}.mat") for i in ids]
    return items


@dataclass(frozen=True)
class MatConverter:
    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        return context_layout(root, splits)

    def convert(self, item: Item) -> np.ndarray:
        labels = loadmat(item.label)["LabelMap"]
        return apply_lut(labels.astype(np.int64), CONTEXT_LUT)
