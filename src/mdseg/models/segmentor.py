"""Backbone + neck + one or more classifier heads, upsampled to the input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdseg.models.backbones import HRNetBranches
from mdseg.models.heads import HRNetV2Neck

STRIDE = 32  # HRNet's coarsest branch; inputs are padded to a multiple of it


class Segmentor(nn.Module):
    """Shared HRNet backbone and HRNetV2 neck feeding named heads (one per label space)."""

    def __init__(self, backbone: HRNetBranches, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = HRNetV2Neck(backbone.channels)
        self.heads = nn.ModuleDict(heads)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(images))

    def forward(self, images: torch.Tensor, head: str) -> torch.Tensor:
        """Logits of ``head`` at the input resolution (any size: padded to the HRNet stride)."""
        h, w = images.shape[-2:]
        padded = F.pad(images, (0, -w % STRIDE, 0, -h % STRIDE))
        logits = self.heads[head](self.features(padded))
        logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :h, :w]
