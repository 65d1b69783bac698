"""What a training method is: its output label space, its heads, its loss and its class scores."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from mdseg.label_space import lookup_table
from mdseg.models.segmentor import Segmentor
from mdseg.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


class Method:
    """A method trains one ``Segmentor`` on one or more datasets given in their own label spaces.

    ``dataset_classes`` maps each training dataset key to its class names (index = id).
    Subclasses set ``self.classes`` (the label space the model predicts in) and implement
    ``build_heads`` and ``loss``; ``scores`` gives per-pixel scores over ``self.classes``,
    which evaluation slices to the classes a test dataset shares with the model.
    """

    name: ClassVar[str]
    max_datasets: ClassVar[int | None] = None

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        if not dataset_classes:
            raise ValueError(f"method {self.name!r} needs at least one training dataset")
        if self.max_datasets and len(dataset_classes) > self.max_datasets:
            raise ValueError(
                f"method {self.name!r} trains on at most {self.max_datasets} dataset(s), "
                f"got {sorted(dataset_classes)}"
            )
        if options:
            raise ValueError(f"method {self.name!r} takes no options, got {sorted(options)}")
        self.datasets = list(dataset_classes)
        self.dataset_classes = dataset_classes
        self.classes: list[str] = []

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        raise NotImplementedError

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores ``[B, len(self.classes), H, W]`` (higher = more likely)."""
        return model(images, head="main")

    def to_unified(self, labels: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
        """Map labels from each sample's own dataset ids to ids of ``self.classes``."""
        luts = torch.stack(
            [lookup_table(self.dataset_classes[d], self.classes) for d in self.datasets]
        ).to(labels.device)
        return luts[dataset_idx[:, None, None], labels]
