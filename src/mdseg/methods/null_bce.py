"""``null_bce``: one sigmoid classifier over the union label space trained with UniSeg's Null
BCE (eq. 4, :mod:`mdseg.losses.null_bce`); ``cosine_bce``: the same on a cosine classifier."""

from __future__ import annotations

import torch
from torch import nn

from mdseg.label_space import union_by_name
from mdseg.losses import label_targets, masked_bce
from mdseg.methods.base import METHODS, Method
from mdseg.models.heads import CosineClassifier, LinearClassifier
from mdseg.models.segmentor import Segmentor

COSINE_SCALE = (
    20.0  # t of UniSeg App. G (authors: configs/model/hrnet_w18_cosine.yaml scale_factor)
)


@METHODS.register("null_bce")
class NullBCE(Method):
    def __init__(self, dataset_classes: dict[str, list[str]], **options: object) -> None:
        super().__init__(dataset_classes, **options)
        self.classes = union_by_name(list(dataset_classes.values()))
        self.targets = label_targets(list(dataset_classes.values()), self.classes)

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        return {"main": LinearClassifier(in_channels, len(self.classes))}

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        return masked_bce(model(images, head="main"), labels, dataset_idx, self.targets)


@METHODS.register("cosine_bce")
class CosineNullBCE(NullBCE):
    """Null BCE (eq. 4) on UniSeg's cosine classifier (App. G: logits ``t * cos``, t = 20).

    The model C-R BCE's relations are computed with (eq. 7) and that C-R BCE fine-tunes: the
    authors train it for the full budget (configs/method/bcenull.yaml, 150 epochs, with
    configs/model/hrnet_w18_cosine.yaml), collect their statistics with it
    (stats_collector_trainer.py) and load it in their second stage (second_stage.py).
    """

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        return {"main": CosineClassifier(in_channels, len(self.classes), COSINE_SCALE)}
