"""The training loop shared by every method: batches, optimiser, schedule, logs, checkpoints.

:func:`setup` builds a run's :class:`Trainer` (method, network, optimiser, batch stream) and
resumes it from its checkpoint, :func:`train_step` makes one optimiser step,
:func:`save_checkpoint` writes the state a rerun resumes from, and :func:`train` runs them with
the live metrics of :mod:`mdseg.monitor` and the validation of :mod:`mdseg.validation`.

Checkpoints hold model, optimiser, step, log and RNG state, are written atomically every
``checkpoint_every`` steps and when SIGTERM/SIGUSR1 arrives (SLURM's warning before a time
limit), and a rerun resumes from them; the batch stream depends only on (seed, step), so a
resumed run ends where an uninterrupted one would. A checkpoint records the experiment's
fingerprint (:mod:`mdseg.fingerprint`) and a changed experiment refuses to resume it. Launched by
torchrun, training is data-parallel (see :mod:`mdseg.distributed`); each rank decodes only its
shard of the batch (:mod:`mdseg.loader`). ``training.precision`` picks fp32, bf16 or fp16
autocast (fp16 with a gradient scaler); ``accumulate`` splits each rank's share into
micro-batches, ``activation_checkpointing`` and ``channels_last`` trade compute and layout for
memory and speed.
"""

from __future__ import annotations

import csv
import logging
import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mdseg import distributed
from mdseg.build import (
    REMEDY,
    build_method,
    build_model,
    init_from,
    method_text_features,
    resolve_device,
)
from mdseg.convergence import convergence
from mdseg.data import Augment, SplitDataset, normalise_images
from mdseg.distributed import Context
from mdseg.fingerprint import check_resumable, fingerprint, run_spec
from mdseg.inference import Inference
from mdseg.io import atomic_path, load_torch, save_torch, stale_parts, write_json
from mdseg.loader import Batch, RankBatches, training_batches
from mdseg.methods import Method
from mdseg.methods.base import TrainRun
from mdseg.models.checkpointing import checkpoint_hrnet
from mdseg.models.segmentor import Segmentor
from mdseg.monitor import Monitor
from mdseg.optim import OPTIMIZERS, poly_factor
from mdseg.validation import subset_miou, val_subsets

LOG_FIELDS = ("step", "loss", "lr", "seconds")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fp64 is no speed option: it trains in double precision for numerical checks (DDP equivalence)
DTYPE = {"fp64": torch.float64}
logger = logging.getLogger(__name__)


class _StopRequest:
    """Turns SIGTERM/SIGUSR1 into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> _StopRequest:
        self._old = {s: signal.signal(s, self._set) for s in (signal.SIGTERM, signal.SIGUSR1)}
        return self

    def _set(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *_: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def check_inputs(experiment: dict[str, Any], init: Path | None, relations: Path | None) -> None:
    """The experiment's ``init`` and ``relations`` (ids of other runs) come with their files."""
    for key, path in (("init", init), ("relations", relations)):
        if bool(experiment.get(key)) != (path is not None):
            raise ValueError(
                f"{experiment['id']}: experiment {key} {experiment.get(key)!r} and the file "
                f"given ({path}) disagree: give --{key} exactly when the experiment names one"
            )


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def accumulated_backward(
    net: torch.nn.Module,
    method: Method,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    micro: int,
    scaler: torch.amp.GradScaler,
    mixed: torch.dtype | None = None,
) -> torch.Tensor:
    """Backpropagate the loss of ``batch`` as ``micro`` micro-batches; return the batch loss.

    Micro-batch j holds rows j, j + micro, ... (with balanced sampling each dataset's rows
    spread evenly over them) and its loss is scaled by 1 / micro, so the summed gradient is the
    whole batch's when the method's loss is a mean with the same normaliser in every
    micro-batch (equal numbers of valid pixels) and nothing depends on batch statistics
    (BatchNorm in training mode normalises each micro-batch by its own statistics, as a smaller
    per-GPU batch would). Under DDP the gradients are all-reduced once, after the last
    micro-batch. ``mixed`` is the autocast dtype (None: no autocast).
    """
    images, labels, owners = batch
    if len(images) % micro:
        raise ValueError(
            f"training.accumulate {micro} must divide this process's {len(images)} images per step"
        )
    total = torch.zeros((), device=images.device)
    kind = images.device.type
    for j in range(micro):
        rows = slice(j, None, micro)
        defer = isinstance(net, DistributedDataParallel) and j < micro - 1
        sync: AbstractContextManager[Any] = net.no_sync() if defer else nullcontext()
        with sync:
            with torch.autocast(kind, mixed or torch.bfloat16, enabled=mixed is not None):
                loss = method.loss(net, images[rows], labels[rows], owners[rows]) / micro
            scaler.scale(loss).backward()
        total = total + loss.detach()
    return total


def parameter_groups(model: Segmentor, backbone_multiplier: float) -> list[dict[str, Any]]:
    """The backbone's parameters at ``backbone_multiplier`` times the learning rate, the rest
    (neck, heads, label graph) at the full rate: ``lr_scale`` of each group.

    AutoUniSeg's authors scale the backbone by 0.1 (Mrhonor/AutoUniSeg
    configs/7_datasets/Base_SemanticSegmentation_hrnet.yaml ``SOLVER.BACKBONE_MULTIPLIER``,
    applied by ``build_optimizer`` in train_net_stage*.py to modules named ``backbone``).
    """
    backbone = list(model.backbone.parameters())
    ids = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": backbone, "lr_scale": backbone_multiplier},
        {"params": rest, "lr_scale": 1.0},
    ]


def stage_bounds(starts: list[int], step: int, total: int) -> tuple[int, int]:
    """``(begin, end)`` of the schedule stage holding ``step``; ``starts`` ascending from 0."""
    begin = max(s for s in starts if s <= step)
    later = [s for s in starts if s > step]
    return begin, (later[0] if later else total)


@dataclass
class Trainer:
    """One training process's run: what it trains, with what, and how far it got."""

    experiment: dict[str, Any]
    ctx: Context  # this process's rank in a DDP job
    device: torch.device
    out_dir: Path
    method: Method
    model: Segmentor  # the bare network (checkpoints, method hooks)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    stream: RankBatches  # this rank's shard of every step's batch
    run: TrainRun  # what the method's hooks may use
    text_features: dict[str, torch.Tensor] | None
    dtype: torch.dtype  # of parameters and images (fp64 for numerical checks, else fp32)
    layout: torch.memory_format
    net: torch.nn.Module = field(init=False)  # what the loss calls: DDP's wrapper or the model
    step: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    starts: list[int] = field(default_factory=lambda: [0])  # first steps of schedule stages
    began: float = field(default_factory=time.perf_counter)  # perf_counter at log seconds 0

    def __post_init__(self) -> None:
        self.net = self.model

    @property
    def cfg(self) -> dict[str, Any]:
        return self.experiment["training"]

    @property
    def total(self) -> int:
        return self.cfg["iterations"]

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / "checkpoint.pt"


def setup(
    experiment: dict[str, Any],
    dataset_dirs: dict[str, Path],
    out_dir: Path,
    text_features: Path | None = None,
    init: Path | None = None,
    relations: Path | None = None,
) -> Trainer:
    """Build the run (seeded), resume it from its checkpoint if there is one, and wrap the
    network for DDP under torchrun. Arguments as :func:`train`'s."""
    check_inputs(experiment, init, relations)
    cfg = experiment["training"]
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    ctx = distributed.init(resolve_device(cfg["device"]))
    device = distributed.local_device(cfg["device"], ctx)
    layout = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    out_dir.mkdir(parents=True, exist_ok=True)

    splits = {k: SplitDataset(dataset_dirs[k], "train") for k in experiment["train"]}
    features = method_text_features(experiment, text_features)
    payload = load_torch(relations, "class relations", REMEDY["relations"]) if relations else None
    method = build_method(experiment, {k: s.classes for k, s in splits.items()}, features, payload)
    dtype = DTYPE.get(cfg.get("precision", "fp32"), torch.float32)
    model = build_model(method, experiment["backbone"], experiment.get("weights"))
    if init is not None:
        init_from(model, method, init)
    model = model.to(device, dtype, memory_format=layout)
    if cfg.get("activation_checkpointing"):
        checkpoint_hrnet(model.backbone.body)
    if ctx.distributed:  # before the optimiser: the conversion makes new BatchNorm parameters
        model = distributed.convert_batchnorm(model, device)
    optimizer = OPTIMIZERS[cfg["optimizer"]](
        parameter_groups(model, cfg.get("backbone_lr_multiplier", 1.0)),
        lr=cfg["lr"],
        weight_decay=cfg["weight_decay"],
        momentum=cfg["momentum"],
    )
    trainer = Trainer(
        experiment=experiment,
        ctx=ctx,
        device=device,
        out_dir=out_dir,
        method=method,
        model=model,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.get("precision") == "fp16"),
        stream=batch_stream(experiment, list(splits.values()), ctx),
        run=TrainRun(
            splits,
            dataset_dirs,
            optimizer,
            device,
            cfg["iterations"],
            out_dir,
            ctx,
            cfg.get("workers", 0),
            cfg["crop_size"],
            cfg.get("resize_short_side"),
        ),
        text_features=features,
        dtype=dtype,
        layout=layout,
    )
    resume(trainer)
    trainer.starts = method.schedule_starts(trainer.total)
    if ctx.distributed:
        # multi-head methods and frozen phases leave some parameters without a gradient
        trainer.net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    return trainer


def batch_stream(
    experiment: dict[str, Any], splits: list[SplitDataset], ctx: Context
) -> RankBatches:
    """This rank's shard of every step's augmented batch (a function of seed and step)."""
    cfg = experiment["training"]
    blocks = len(splits) if cfg["sampling"] == "balanced" else 1
    mine = distributed.shard(cfg["batch_size"], blocks, ctx)
    micro = cfg.get("accumulate", 1)
    if len(mine) % micro:
        raise ValueError(
            f"{experiment['id']}: training.accumulate {micro} must divide the {len(mine)} images "
            f"per step of each of the {ctx.world} process(es)"
        )
    augment = Augment(
        cfg["crop_size"],
        tuple(cfg["scale_range"]),
        cfg["flip"],
        cfg.get("resize_short_side"),
        cfg.get("rotate_degrees", 0.0),
        cfg.get("blur_probability", 0.0),
        tuple(cfg.get("blur_sigmas", Augment.blur_sigmas)),
        cfg.get("crop_fit", "pad"),
    )
    return RankBatches(splits, cfg["batch_size"], augment, cfg["sampling"], cfg["seed"], mine)


def resume(t: Trainer) -> None:
    """Continue from ``checkpoint.pt`` where there is one (the same experiment's, else refused):
    weights, optimiser, scaler, RNG, method state, step and log. Leftovers of a checkpoint
    write that never finished (kill -9, node failure) are removed first."""
    for part in stale_parts(t.checkpoint):
        logger.warning("removing %s, a checkpoint write that never finished", part)
        part.unlink()
    if not t.checkpoint.exists():
        return
    state = load_torch(t.checkpoint, "a training checkpoint", REMEDY["checkpoint"], t.device)
    check_resumable(state, t.experiment, str(t.checkpoint))
    t.model.load_state_dict(state["model"])
    t.optimizer.load_state_dict(state["optimizer"])
    t.scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"], t.device)
    t.method.load_state_dict(state["method"])
    t.step, t.log = state["step"], state["log"]
    t.began -= t.log[-1]["seconds"] if t.log else 0.0


def save_checkpoint(t: Trainer) -> None:
    """Rank 0 writes ``checkpoint.pt`` (atomically) and ``train_log.csv``; all ranks wait."""
    if t.ctx.is_main:
        spec = run_spec(t.experiment)
        save_torch(
            {
                "model": t.model.state_dict(),
                "optimizer": t.optimizer.state_dict(),
                "scaler": t.scaler.state_dict(),
                "rng": _rng_state(t.device),
                "method": t.method.state_dict(),
                "step": t.step,
                "log": t.log,
                "fingerprint": fingerprint(spec),
                "run_spec": spec,
            },
            t.checkpoint,
        )
        write_log(t.out_dir / "train_log.csv", t.log)
    distributed.barrier(t.ctx)


def train_step(t: Trainer, batches: Iterator[Batch]) -> float:
    """One optimiser step at ``t.step``: the stage's learning rate, the method's hook, the
    batch, the (accumulated) backward pass and the update; append the step's log row. Returns
    the seconds spent waiting for the batch."""
    cfg = t.cfg
    begin, end = stage_bounds(t.starts, t.step, t.total)
    if t.step == begin and t.step > 0:
        t.optimizer.state.clear()  # a new stage is a new run: fresh AdamW moments
    factor = poly_factor(t.step - begin, end - begin, cfg["warmup_iterations"], cfg["poly_power"])
    for group in t.optimizer.param_groups:
        group["lr"] = cfg["lr"] * group["lr_scale"] * factor
    t.method.before_step(t.step, t.model, t.run)
    waiting = time.perf_counter()
    batch = next(batches)
    waited = time.perf_counter() - waiting
    images, labels, owners = (x.to(t.device, non_blocking=True) for x in batch)
    # uint8 [B, H, W, 3] -> normalised [B, 3, H, W]; the permuted view is channels_last
    images = normalise_images(images.permute(0, 3, 1, 2), t.dtype)
    images = images.contiguous(memory_format=t.layout)
    t.optimizer.zero_grad(set_to_none=True)
    micro, mixed = cfg.get("accumulate", 1), AUTOCAST.get(cfg.get("precision", "fp32"))
    loss = accumulated_backward(
        t.net, t.method, (images, labels.long(), owners), micro, t.scaler, mixed
    )
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{t.experiment['id']}: loss is {loss.item()} at step {t.step}")
    clip_norm = cfg.get("clip_grad_norm")
    if clip_norm is not None:
        t.scaler.unscale_(t.optimizer)
        torch.nn.utils.clip_grad_norm_(t.model.parameters(), clip_norm)
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.step += 1
    t.log.append(
        {
            "step": t.step,
            "loss": round(distributed.mean(loss.float(), t.ctx), 6),
            "lr": cfg["lr"] * factor,
            "seconds": round(time.perf_counter() - t.began, 3),
            **t.method.log_fields(),
        }
    )
    return waited


def validate(t: Trainer, subsets: dict[str, SplitDataset], monitor: Monitor) -> None:
    """mIoU on the validation subsets at this step, into the step's log row (``val_miou``)
    and the monitor. Rank 0 scores while the others wait; the run is left as it was (RNG
    state and every module's train/eval mode), so it trains on bit-identically."""
    if t.ctx.is_main:
        rng = _rng_state(t.device)
        modes = {module: module.training for module in t.model.modules()}
        t.model.eval()
        # windows of the training crop at the training scale: no more memory than a step
        inference = Inference(t.cfg["crop_size"], resize_short_side=t.cfg.get("resize_short_side"))
        try:
            miou, per_dataset, note = subset_miou(t.method, t.model, subsets, t.device, inference)
        finally:
            for module, mode in modes.items():
                module.training = mode
            _set_rng_state(rng, t.device)
        if miou is not None:
            t.log[-1]["val_miou"] = round(miou, 4)
        monitor.validation(t.step, miou, per_dataset, note)
    distributed.barrier(t.ctx)


def train(
    experiment: dict[str, Any],
    dataset_dirs: dict[str, Path],
    out_dir: Path,
    text_features: Path | None = None,
    init: Path | None = None,
    relations: Path | None = None,
) -> Path:
    """Train ``experiment`` on the prepared datasets; write ``model.pt`` and ``train_log.csv``.

    ``init`` is the ``model.pt`` of the run it starts from (the experiment's ``init``),
    ``relations`` a ``relations.pt`` of :mod:`mdseg.relations` (its ``relations``). Under
    torchrun every rank trains on its shard of the same global batch (DDP); rank 0 alone
    writes files, log lines (every ``training.log_every`` steps) and TensorBoard events.
    ``training.val_every`` steps, the first ``val_images`` of each training dataset's ``val``
    split are scored (:mod:`mdseg.validation`).
    """
    t = setup(experiment, dataset_dirs, out_dir, text_features, init, relations)
    cfg, main = t.cfg, t.ctx.is_main
    val_every = cfg.get("val_every")
    subsets = {}
    if val_every and main:
        own = {k: dataset_dirs[k] for k in experiment["train"]}
        subsets = val_subsets(own, cfg.get("val_images", 50))
    tty = main and sys.stderr.isatty()  # a bar on a terminal, never in a log file
    if main:
        start = f"resumed from {t.checkpoint} at step {t.step}" if t.step else "from step 0"
        print(f"{experiment['id']}: training {t.total} steps, {start}", file=sys.stderr)
    t.model.train()
    batches = training_batches(t.stream, t.step, t.total, cfg.get("workers", 0))
    with (
        _StopRequest() as stop,
        Monitor(
            out_dir,
            t.total,
            t.step,
            t.device,
            cfg.get("log_every", 20) if main else 0,
            main and cfg.get("tensorboard", True),
            partial(tqdm.write, file=sys.stderr) if tty else None,
        ) as monitor,
        tqdm(
            total=t.total,
            initial=t.step,
            desc=experiment["id"],
            unit="it",
            mininterval=2.0,
            disable=not tty,
        ) as bar,
    ):
        while t.step < t.total:
            began = time.perf_counter()
            waited = train_step(t, batches)
            row = t.log[-1]
            fields = {k: v for k, v in row.items() if k not in LOG_FIELDS}
            monitor.step(row, fields, waited, time.perf_counter() - began)
            if val_every and t.step % val_every == 0:
                validate(t, subsets, monitor)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            stopping = distributed.any_rank(stop.signal is not None, t.ctx)
            if t.step % cfg["checkpoint_every"] == 0 or stopping:
                save_checkpoint(t)
                monitor.flush()
            if stopping and t.step < t.total:
                distributed.shutdown(t.ctx)
                raise SystemExit(f"stopped by a signal at step {t.step}; checkpoint saved")
        if main:
            _write_model(t)
            # A signal after the last step still fails the SLURM job (Snakemake in the job
            # counts any SIGTERM) and its outputs are deleted: the checkpoint stays, so the
            # retry resumes past the loop and writes the same model again.
            if stop.signal is None:
                t.checkpoint.unlink(missing_ok=True)
    distributed.barrier(t.ctx)
    distributed.shutdown(t.ctx)
    return out_dir / "model.pt"


def _write_model(t: Trainer) -> Path:
    """Write the run's outputs, ``model.pt`` last: a run that fails midway leaves no model."""
    write_log(t.out_dir / "train_log.csv", t.log)
    artefacts = t.method.write_artefacts(t.model, t.out_dir)
    write_json(
        t.out_dir / "summary.json",
        {
            "experiment": t.experiment["id"],
            "backbone_init": t.model.backbone.init,
            "classes": t.method.classes,
            "steps": t.step,
            "final_loss": t.log[-1]["loss"] if t.log else None,
            "convergence": convergence([row["loss"] for row in t.log]),
            "artefacts": [p.name for p in artefacts],
        },
    )
    model_path = t.out_dir / "model.pt"
    save_torch(
        {
            "experiment": t.experiment,
            "method": t.method.name,
            "classes": t.method.classes,
            "dataset_classes": t.method.dataset_classes,
            "method_state": t.method.state_dict(),
            "text_features": t.text_features,
            "backbone_init": t.model.backbone.init,
            "state_dict": t.model.state_dict(),
        },
        model_path,
    )
    return model_path


def write_log(path: Path, log: list[dict[str, float]]) -> None:
    """``train_log.csv``: the trainer's columns, then any a method adds (``log_fields``)."""
    extra = list(dict.fromkeys(k for row in log for k in row if k not in LOG_FIELDS))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*LOG_FIELDS, *extra])
        writer.writeheader()
        writer.writerows(log)
