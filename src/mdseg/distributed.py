"""Data-parallel training: process group from torchrun's environment, batch shards, global BN.

torchrun (or ``srun`` + torchrun on several nodes) sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; without them training runs as one process. The global batch is a pure function
of seed and step; every rank decodes only its shard of it (:mod:`mdseg.loader`), so the global
batch and the averaged gradient do not depend on the world size. BatchNorm statistics are
reduced over the global batch: torch's SyncBatchNorm on GPU, :class:`GlobalBatchNorm` on CPU
(gloo), where SyncBatchNorm refuses to run.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mdseg.batching import Context as Context
from mdseg.batching import shard as shard


def init(device: torch.device) -> Context:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU), if there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context()
    ctx = Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx


def local_device(name: str, ctx: Context) -> torch.device:
    """``auto``/``cuda`` become this rank's GPU (``cuda:LOCAL_RANK``) when one is available."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device


def shutdown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, ctx: Context) -> bool:
    """True on every rank when ``flag`` is true on any rank (a stop signal reaches ranks apart)."""
    if not ctx.distributed:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean(value: torch.Tensor, ctx: Context) -> float:
    """The mean of a scalar over ranks (the global-batch loss for the log)."""
    if ctx.distributed:
        value = value.clone()
        dist.all_reduce(value)
        value /= ctx.world
    return value.item()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
        ctx.group = group
        x = x.clone()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all ranks (CPU-capable).

    Sums, sums of squares and counts are all-reduced with autograd, so the gradient is the
    gradient of the loss over the global batch, as in single-process training. The reductions
    use their own process group so they never interleave with DDP's gradient buckets.
    """

    group: dist.ProcessGroup | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.group is not None):
            return super().forward(x)
        dims, c = (0, 2, 3), x.shape[1]
        n = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        # two passes (mean, then squared deviations): E[x^2] - mean^2 cancels badly
        totals = _SumOverRanks.apply(torch.cat([x.sum(dims), n]), self.group)
        count = totals[c]
        mean = totals[:c] / count
        shape = (1, c, 1, 1)
        centred = x - mean.view(shape)
        var = _SumOverRanks.apply((centred * centred).sum(dims), self.group) / count
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:  # cumulative average
                    m = 1.0 / self.num_batches_tracked.item()
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / (count - 1), m)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Swap every BatchNorm2d for its global-batch version (weights and statistics kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model, device, dist.new_group(backend="gloo"))


def _convert_cpu(model: nn.Module, device: torch.device, group: dist.ProcessGroup) -> nn.Module:
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = GlobalBatchNorm(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            dtype = next(t.dtype for t in child.state_dict().values() if t.is_floating_point())
            bn.to(dtype=dtype).load_state_dict(child.state_dict())
            bn.group = group
            bn.train(child.training)
            setattr(model, name, bn.to(device))
        else:
            _convert_cpu(child, device, group)
    return model
