"""``multi_head``: AutoUniSeg's Multi-SegHead baseline, a shared network with one head per dataset.

Every dataset keeps its own label space: its images train only its own 1x1 classifier (plain
cross-entropy), all heads read the same features. ``classes`` are the heads' channels, named
``<dataset>:<class>``. A training dataset is evaluated through its own head; an unseen dataset
through every head at once by class name and alias. Each head is also offered as a variant
``head_<dataset>`` (AutoUniSeg Table 3 reads a dataset's label space through its head).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdseg.io import IGNORE_ID
from mdseg.label_space import match_classes
from mdseg.methods.base import METHODS, Matches, Method
from mdseg.models.heads import DatasetHeads
from mdseg.models.segmentor import Segmentor

if TYPE_CHECKING:
    from mdseg.data import SplitDataset
    from mdseg.inference import Inference

HEAD = "multi"


def own_head_loss(
    logits: torch.Tensor, labels: torch.Tensor, dataset_idx: torch.Tensor, offsets: list[int]
) -> torch.Tensor:
    """Cross-entropy of each sample over its own dataset's block of ``logits`` channels.

    The mean runs over every labelled pixel of the batch, as a single CE over the batch would.
    """
    total = logits.new_zeros(())
    for d in dataset_idx.unique().tolist():
        rows = dataset_idx == d
        block = logits[rows, offsets[d] : offsets[d + 1]]
        total = total + F.cross_entropy(
            block, labels[rows], ignore_index=IGNORE_ID, reduction="sum"
        )
    return total / (labels != IGNORE_ID).sum().clamp(min=1)


@METHODS.register("multi_head")
class MultiHead(Method):
    name = "multi_head"

    def __init__(self, dataset_classes: dict[str, list[str]], **options: object) -> None:
        super().__init__(dataset_classes, **options)
        sizes = [len(dataset_classes[d]) for d in self.datasets]
        self.offsets = [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]
        self.classes = [f"{d}:{c}" for d in self.datasets for c in dataset_classes[d]]

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        return {HEAD: DatasetHeads(in_channels, sizes)}

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        return model(images, head=HEAD)

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        return own_head_loss(model(images, head=HEAD), labels, dataset_idx, self.offsets)

    def head_matches(
        self, dataset: str, target: list[str], aliases: dict[str, list[str]]
    ) -> Matches:
        """Target classes matched by name/alias to one dataset's head, as channel ids."""
        start = self.offsets[self.datasets.index(dataset)]
        found = match_classes(target, self.dataset_classes[dataset], aliases)
        return {t: [start + j for j in js] for t, js in found.items()}

    def target_matches(
        self,
        model: Segmentor,
        dataset_key: str,
        data: SplitDataset,
        aliases: dict[str, list[str]],
        device: torch.device,
        inference: Inference | None = None,
    ) -> dict[str, Matches]:
        heads = {f"head_{d}": self.head_matches(d, data.classes, aliases) for d in self.datasets}
        if dataset_key in self.datasets:
            start = self.offsets[self.datasets.index(dataset_key)]
            primary = {c: [start + c] for c in range(len(data.classes))}
            return {"own_head": primary, **heads}
        bare = [c for d in self.datasets for c in self.dataset_classes[d]]
        return {"all_heads_by_name": match_classes(data.classes, bare, aliases), **heads}
