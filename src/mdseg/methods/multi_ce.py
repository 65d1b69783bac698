"""``multi_ce``: one softmax classifier over the union label space (UniSeg eq. 1).

Each dataset's labels are re-indexed into the union by class name; classes of other datasets
are implicitly negatives for every pixel, which is the source of the gradient conflict (eq. 3).
"""

from __future__ import annotations

import torch
from torch import nn

from mdseg.label_space import union_by_name
from mdseg.losses import pixel_cross_entropy
from mdseg.methods.base import METHODS, Method
from mdseg.models.heads import LinearClassifier
from mdseg.models.segmentor import Segmentor


@METHODS.register("multi_ce")
class MultiCE(Method):
    def __init__(self, dataset_classes: dict[str, list[str]], **options: object) -> None:
        super().__init__(dataset_classes, **options)
        self.classes = union_by_name(list(dataset_classes.values()))

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        return {"main": LinearClassifier(in_channels, len(self.classes))}

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        target = self.to_unified(labels, dataset_idx)
        return pixel_cross_entropy(model(images, head="main"), target)
