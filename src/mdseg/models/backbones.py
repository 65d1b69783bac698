"""Backbone registry: timm HRNets returning their four high-resolution branches."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from mdseg.errors import about
from mdseg.registry import Registry
from mdseg.weights import IMAGENET, cached_imagenet_file, imagenet_id, imagenet_source

BACKBONES: Registry[str] = Registry("backbone")
for _name in ("hrnet_w18_small_v2", "hrnet_w18", "hrnet_w32", "hrnet_w48"):
    BACKBONES.register(_name)(_name)


class HRNetBranches(nn.Module):
    """A timm HRNet that returns the raw outputs of its four branches (strides 4, 8, 16, 32).

    ``feature_location=""`` asks timm for the branch outputs themselves rather than the
    classification neck, which is what HRNetV2 segmentation heads consume. ``weights`` is
    ``"imagenet"`` (timm's ImageNet weights, read from the hub cache only, see
    :mod:`mdseg.weights`), the path of a local checkpoint, or ``None`` (random init).
    """

    def __init__(self, name: str, weights: str | None = None) -> None:
        super().__init__()
        BACKBONES[name]  # raises with the known names
        features = {"features_only": True, "feature_location": "", "out_indices": (1, 2, 3, 4)}
        if weights == IMAGENET:
            # timm's pretrained loader, fed the cached file: the job never reaches the network
            cached = cached_imagenet_file(name)
            self.body = timm.create_model(
                imagenet_id(name),
                pretrained=True,
                pretrained_cfg_overlay={"file": str(cached)},
                **features,
            )
            self.init = f"imagenet ({imagenet_source(name)})"
        else:
            self.body = timm.create_model(name, pretrained=False, **features)
            self.init = load_weights(self.body, Path(weights)) if weights else "random"
        self.channels: list[int] = self.body.feature_info.channels()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


def load_weights(module: nn.Module, path: Path) -> str:
    """Load a local timm/ImageNet checkpoint into ``module``; return a description of what was used.

    Classifier weights in the file are skipped; a file that matches none of the backbone's
    parameters is an error rather than a silent random init.
    """
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights {path}: no such file")
    with about(path, "backbone weights (a torch state dict)", "check backbones.<name>.weights"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state))
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"backbone weights {path}: no tensor matches the backbone's parameters")
    module.load_state_dict(usable, strict=False)
    return f"{path} ({len(usable)}/{len(own)} tensors)"
