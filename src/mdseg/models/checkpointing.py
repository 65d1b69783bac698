"""Activation checkpointing of timm's HRNet: recompute its blocks in the backward pass.

timm's HRNet refuses ``set_grad_checkpointing``, so the blocks of ``layer1`` and of
``stage2``..``stage4`` (Bottlenecks and HighResolutionModules) get a forward that runs under
``torch.utils.checkpoint``: the forward pass keeps only each block's inputs, the backward pass
recomputes the block. The forward is replaced on the instance, so parameter names (and
checkpoints, ``model.pt``) are those of the plain network. The recomputation runs BatchNorm in
training mode a second time; its running statistics are restored afterwards, so they advance
once per step as without checkpointing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

STAGES = ("layer1", "stage2", "stage3", "stage4")


@contextmanager
def _running_stats_kept(module: nn.Module) -> Iterator[None]:
    """Undo the running-statistics updates BatchNorm layers of ``module`` make inside."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in m.buffers()] for m in norms]
    try:
        yield
    finally:  # torch stops a recomputation early by raising once it has what backward needs
        with torch.no_grad():
            for m, buffers in zip(norms, saved, strict=True):
                for b, old in zip(m.buffers(), buffers, strict=True):
                    b.copy_(old)


class _Recomputed:
    """A block's forward, run under non-reentrant checkpointing while gradients are on."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block
        self.plain: Callable[..., Any] = block.forward

    def __call__(self, x: torch.Tensor | list[torch.Tensor]) -> Any:
        if not torch.is_grad_enabled():
            return self.plain(x)
        # HighResolutionModule writes into its input list: give each run a fresh one
        if isinstance(x, list):
            return checkpoint(
                lambda *t: self.plain(list(t)), *x, use_reentrant=False, context_fn=self._contexts
            )
        return checkpoint(self.plain, x, use_reentrant=False, context_fn=self._contexts)

    def _contexts(self) -> tuple[Any, Any]:
        return nullcontext(), _running_stats_kept(self.block)


def checkpoint_hrnet(body: nn.Module) -> int:
    """Make every block of a timm HRNet's stages recompute in backward; return how many."""
    missing = [s for s in STAGES if not isinstance(getattr(body, s, None), nn.Sequential)]
    if missing:
        raise TypeError(
            f"activation checkpointing expects a timm HRNet with sequential {STAGES}; "
            f"{type(body).__name__} lacks {missing}"
        )
    blocks = [block for stage in STAGES for block in getattr(body, stage)]
    for block in blocks:
        block.forward = _Recomputed(block)
    return len(blocks)
