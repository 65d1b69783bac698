"""Optimisers by name and the poly learning-rate schedule with linear warm-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from mdseg.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("adamw")
def adamw(params: Iterable, lr: float, weight_decay: float, **_: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(
    params: Iterable, lr: float, weight_decay: float, momentum: float = 0.9, **_: float
) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)


def poly_factor(step: int, total: int, warmup: int = 0, power: float = 0.9) -> float:
    """LR multiplier: linear ramp over ``warmup`` steps, then ``(1 - t/total) ** power``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1.0 - step / total) ** power
