"""HRNetV2 representation head and the classifiers that read it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class HRNetV2Neck(nn.Module):
    """HRNetV2: upsample every branch to stride 4, concatenate, mix with 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: list[int]) -> None:
        super().__init__()
        width = sum(in_channels)
        self.out_channels = width
        self.mix = nn.Sequential(
            nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        size = branches[0].shape[-2:]
        up = [branches[0]] + [
            F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]
        ]
        return self.mix(torch.cat(up, dim=1))


class LinearClassifier(nn.Module):
    """A 1x1 convolution to ``num_classes`` logits."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CosineClassifier(nn.Module):
    """Scaled cosine similarity between L2-normalised features and class weights (UniSeg App. G).

    Logits are ``t * cos(theta)``, so they lie in ``[-t, t]``.
    """

    def __init__(self, in_channels: int, num_classes: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, in_channels) * in_channels**-0.5)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.normalize(self.weight, dim=1)
        return self.scale * torch.einsum("bchw,kc->bkhw", F.normalize(x, dim=1), w)
