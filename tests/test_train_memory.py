"""Memory options change memory, not the update: gradient accumulation, activation
checkpointing and channels_last, all in float64 so rounding cannot hide a real difference."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist
from conftest import tiny_experiment
from torch.nn.parallel import DistributedDataParallel

from mdseg.build import build_model
from mdseg.io import IGNORE_ID
from mdseg.methods.multi_ce import MultiCE
from mdseg.models.checkpointing import checkpoint_hrnet
from mdseg.train import accumulated_backward, train

CLASSES = {"cityscapes": ["road", "rider", "car"], "mapillary": ["road", "car"]}
CLASSES_TINY = {  # the classes of conftest's tiny_datasets
    "cityscapes": ["road", "rider", "car"],
    "mapillary": ["road", "bicyclist", "motorcyclist", "car"],
}


@pytest.fixture(autouse=True)
def one_thread():
    """One thread, as ``mdseg train`` runs these tests' settings: on a busy 2-core machine
    OpenMP threads waiting for each other make float64 convolutions 10-100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(ignored: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """4 random 32 px images with labels valid in their datasets; ``ignored`` pixels of the
    first image set to ignore."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (4, 32, 32), generator=g)
    labels.view(4, -1)[0, :ignored] = IGNORE_ID
    return images, labels, torch.tensor([0, 1, 0, 1])


def gradients(net, method, data, micro: int) -> tuple[float, list[torch.Tensor]]:
    net.zero_grad(set_to_none=True)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = accumulated_backward(net, method, data, micro, scaler)
    params = (
        net.module.parameters() if isinstance(net, DistributedDataParallel) else net.parameters()
    )
    return loss.item(), [p.grad.clone() for p in params if p.grad is not None]


def calibrated_model() -> tuple[MultiCE, torch.nn.Module]:
    """A float64 network whose BatchNorm running statistics are those of :func:`batch`: with
    the initial (0, 1) statistics activations vanish into slow subnormal numbers."""
    torch.manual_seed(0)
    method = MultiCE(CLASSES)
    model = build_model(method, "hrnet_w18_small_v2").double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        model(batch()[0], head="main")
    return method, model


def frozen_model() -> tuple[MultiCE, torch.nn.Module]:
    """BatchNorm in eval mode: no statistic depends on how the batch is split."""
    method, model = calibrated_model()
    return method, model.eval()


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], rtol: float) -> None:
    assert len(a) == len(b) > 100
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=rtol * x.abs().max().item())


def test_accumulated_micro_batches_give_the_full_batch_gradient():
    """With equal valid-pixel counts each micro-batch mean has the full batch's normaliser, so
    the 1/k-scaled sum of k micro-batch gradients is the full-batch gradient (exactly, up to
    float64 rounding)."""
    method, model = frozen_model()
    loss, full = gradients(model, method, batch(), 1)
    for micro in (2, 4):
        loss_k, grads = gradients(model, method, batch(), micro)
        assert loss_k == pytest.approx(loss, rel=1e-12)
        assert_same(grads, full, 1e-10)
    # unequal valid-pixel counts break the condition: the mean of means is no global mean
    _, full = gradients(model, method, batch(ignored=900), 1)
    _, split = gradients(model, method, batch(ignored=900), 2)
    assert max((a - b).abs().max() / a.abs().max() for a, b in zip(split, full, strict=True)) > 1e-4
    with pytest.raises(ValueError, match=r"training\.accumulate 3 must divide"):
        gradients(model, method, batch(), 3)


def test_accumulation_under_ddp_reduces_once(tmp_path):
    """A one-process gloo group: DDP with ``no_sync`` on all but the last micro-batch gives
    the plain network's gradient."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        method, model = frozen_model()
        _, full = gradients(model, method, batch(), 1)
        _, grads = gradients(DistributedDataParallel(model), method, batch(), 2)
        assert_same(grads, full, 1e-10)
    finally:
        dist.destroy_process_group()


def test_activation_checkpointing_keeps_loss_gradients_and_statistics():
    method, plain = calibrated_model()
    recomputed = copy.deepcopy(plain)
    # hrnet_w18_small_v2: 2 Bottlenecks in layer1, 1 + 3 + 2 HighResolutionModules
    assert checkpoint_hrnet(recomputed.backbone.body) == 2 + 1 + 3 + 2
    assert recomputed.state_dict().keys() == plain.state_dict().keys()
    loss, want = gradients(plain, method, batch(), 1)
    loss_r, grads = gradients(recomputed, method, batch(), 1)
    assert loss_r == pytest.approx(loss, rel=1e-12)
    assert_same(grads, want, 1e-10)
    # the recomputation ran BatchNorm again; the running statistics advanced once
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(recomputed.state_dict()[key], value, rtol=1e-12, atol=0)
    with pytest.raises(TypeError, match="lacks"):
        checkpoint_hrnet(torch.nn.Linear(2, 2))


def test_channels_last_keeps_loss_and_gradients():
    method, model = frozen_model()
    loss, want = gradients(model, method, batch(), 1)
    model = model.to(memory_format=torch.channels_last)
    images, labels, owners = batch()
    data = (images.contiguous(memory_format=torch.channels_last), labels, owners)
    loss_c, grads = gradients(model, method, data, 1)
    assert loss_c == pytest.approx(loss, rel=1e-12)
    assert_same(grads, want, 1e-10)


def test_training_with_every_memory_option_matches_plain_training(tiny_datasets, tmp_path):
    """End to end: accumulate 2 with activation checkpointing and channels_last trains the
    weights that accumulate 2 alone trains (float64, SGD; relative to the update, as
    tests/test_distributed.py compares). Checkpointing alone is bit-identical; channels_last
    runs other convolution kernels, 4e-10 apart after one step. One step: on these flat-colour
    images BatchNorm is so ill-conditioned that a second step amplifies that rounding 1e4-fold
    """
    common = {"batch_size": 4, "precision": "fp64", "optimizer": "sgd", "lr": 0.01}
    runs = {}
    for name, extra in {
        "plain": {},
        "options": {"activation_checkpointing": True, "channels_last": True},
    }.items():
        spec = tiny_experiment("multi_ce", list(tiny_datasets), iterations=1, accumulate=2)
        spec["training"].update(common | extra)
        model = train(spec, tiny_datasets, tmp_path / name)
        runs[name] = torch.load(model, weights_only=False)["state_dict"]
    torch.manual_seed(0)
    init = build_model(MultiCE(CLASSES_TINY), "hrnet_w18_small_v2").double().state_dict()
    floats = [k for k, v in init.items() if v.is_floating_point() and "running" not in k]
    plain, options = ([(run[k] - init[k]).flatten() for k in floats] for run in runs.values())
    update, other = torch.cat(plain), torch.cat(options)
    assert update.norm() > 0.01
    assert ((other - update).norm() / update.norm()).item() < 1e-8
