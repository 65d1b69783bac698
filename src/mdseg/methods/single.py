"""``single``: cross-entropy on one dataset in its own label space (both papers' baseline)."""

from __future__ import annotations

import torch
from torch import nn

from mdseg.losses import pixel_cross_entropy
from mdseg.methods.base import METHODS, Method
from mdseg.models.heads import LinearClassifier
from mdseg.models.segmentor import Segmentor


@METHODS.register("single")
class Single(Method):
    max_datasets = 1

    def __init__(self, dataset_classes: dict[str, list[str]], **options: object) -> None:
        super().__init__(dataset_classes, **options)
        self.classes = list(next(iter(dataset_classes.values())))

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        return {"main": LinearClassifier(in_channels, len(self.classes))}

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        return pixel_cross_entropy(model(images, head="main"), labels)
