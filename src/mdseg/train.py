"""The training loop shared by every method: batches, optimiser, schedule, logs, checkpoints.

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
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mdseg import distributed
from mdseg.convergence import convergence
from mdseg.data import Augment, SplitDataset, normalise_images
from mdseg.errors import DamagedFile
from mdseg.fingerprint import check_resumable, fingerprint, run_spec
from mdseg.io import atomic_path, load_torch, save_torch, stale_parts, write_json
from mdseg.loader import RankBatches, training_batches
from mdseg.methods import METHODS, Method
from mdseg.methods.base import TrainRun
from mdseg.models.backbones import HRNetBranches
from mdseg.models.checkpointing import checkpoint_hrnet
from mdseg.models.segmentor import Segmentor
from mdseg.optim import OPTIMIZERS, poly_factor

LOG_FIELDS = ("step", "loss", "lr", "seconds")
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fp64 is no speed option: it trains in double precision for numerical checks (DDP equivalence)
DTYPE = {"fp64": torch.float64}
# what to do about a damaged input file, by kind: delete it so that its rule makes it again
REMEDY = {
    "checkpoint": "delete it to restart this run from step 0 (the run's other files can stay)",
    "model": "delete it and rerun its training (snakemake makes it again)",
    "relations": "delete it and rerun its relations rule (snakemake makes it again)",
    "features": "delete it and rerun the encode_labels rule (snakemake makes it again)",
}
logger = logging.getLogger(__name__)


def build_model(method: Method, backbone: str, weights: str | None = None) -> Segmentor:
    body = HRNetBranches(backbone, weights)
    model = Segmentor(body, {})
    model.heads.update(method.build_heads(model.neck.out_channels))
    return model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def load_text_features(path: Path, keys: list[str]) -> dict[str, torch.Tensor]:
    """Text features of the label descriptions of ``keys`` from ``mdseg encode``'s output."""
    payload = load_torch(path, "label text features", REMEDY["features"])
    if not isinstance(payload, dict) or "datasets" not in payload:
        raise DamagedFile(f"{path}: not a file of label text features; {REMEDY['features']}")
    stored = payload["datasets"]
    missing = [k for k in keys if k not in stored]
    if missing:
        raise KeyError(f"{path}: no text features for {missing}; encoded: {sorted(stored)}")
    return {k: stored[k]["features"] for k in keys}


def method_text_features(
    experiment: dict[str, Any], path: Path | None
) -> dict[str, torch.Tensor] | None:
    """The training datasets' text features if the experiment's method reads them, else None."""
    cls = METHODS[experiment["method"]]
    if not cls.needs_text_features:
        return None
    if path is None:
        raise ValueError(f"{experiment['id']}: method {cls.name!r} needs text features")
    return load_text_features(path, experiment["train"])


def build_method(
    experiment: dict[str, Any],
    dataset_classes: dict[str, list[str]],
    text_features: dict[str, torch.Tensor] | None = None,
    relations: dict[str, Any] | None = None,
) -> Method:
    """The experiment's method over ``dataset_classes``, text features given where it reads them
    and the class relations (:mod:`mdseg.relations`) where it was given a file of them."""
    options = dict(experiment.get("method_options", {}))
    if text_features is not None:
        options["text_features"] = text_features
    if relations is not None:
        options["relations"] = relations
    return METHODS[experiment["method"]](dataset_classes, **options)


def check_inputs(experiment: dict[str, Any], init: Path | None, relations: Path | None) -> None:
    """The experiment's ``init`` and ``relations`` (ids of other runs) come with their files."""
    for key, path in (("init", init), ("relations", relations)):
        if bool(experiment.get(key)) != (path is not None):
            raise ValueError(
                f"{experiment['id']}: experiment {key} {experiment.get(key)!r} and the file "
                f"given ({path}) disagree: give --{key} exactly when the experiment names one"
            )


def init_from(model: Segmentor, method: Method, path: Path) -> None:
    """Start from another run's trained network, loaded strictly (backbone, neck and heads).

    C-R BCE fine-tunes the cosine Null-BCE model: the authors' second_stage.py loads the first
    stage's ``recent149.pth`` with ``model.load_state_dict`` (strict) before training.
    """
    state = load_torch(path, "a trained model (model.pt)", REMEDY["model"])
    if state["classes"] != method.classes:
        raise ValueError(
            f"{path}: predicts {len(state['classes'])} classes, not the {len(method.classes)} "
            f"of this run's label space"
        )
    model.load_state_dict(state["state_dict"])


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
    writes files.
    """
    check_inputs(experiment, init, relations)
    cfg = experiment["training"]
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    ctx = distributed.init(resolve_device(cfg["device"]))
    device = distributed.local_device(cfg["device"], ctx)
    precision = cfg.get("precision", "fp32")
    micro = cfg.get("accumulate", 1)
    layout = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    out_dir.mkdir(parents=True, exist_ok=True)

    splits = {k: SplitDataset(dataset_dirs[k], "train") for k in experiment["train"]}
    features = method_text_features(experiment, text_features)
    payload = load_torch(relations, "class relations", REMEDY["relations"]) if relations else None
    method = build_method(experiment, {k: s.classes for k, s in splits.items()}, features, payload)
    dtype = DTYPE.get(precision, torch.float32)
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
    clip_norm = cfg.get("clip_grad_norm")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    blocks = len(splits) if cfg["sampling"] == "balanced" else 1
    mine = distributed.shard(cfg["batch_size"], blocks, ctx)
    if len(mine) % micro:
        raise ValueError(
            f"{experiment['id']}: training.accumulate {micro} must divide the {len(mine)} images "
            f"per step of each of the {ctx.world} process(es)"
        )
    stream = RankBatches(
        list(splits.values()),
        cfg["batch_size"],
        Augment(
            cfg["crop_size"],
            tuple(cfg["scale_range"]),
            cfg["flip"],
            cfg.get("resize_short_side"),
            cfg.get("rotate_degrees", 0.0),
            cfg.get("blur_probability", 0.0),
            tuple(cfg.get("blur_sigmas", Augment.blur_sigmas)),
            cfg.get("crop_fit", "pad"),
        ),
        cfg["sampling"],
        cfg["seed"],
        mine,
    )
    total = cfg["iterations"]
    ckpt_path = out_dir / "checkpoint.pt"
    spec = run_spec(experiment)
    step, log = 0, []
    for part in stale_parts(ckpt_path):  # a write killed midway (kill -9, node failure)
        logger.warning("removing %s, a checkpoint write that never finished", part)
        part.unlink()
    if ckpt_path.exists():
        state = load_torch(ckpt_path, "a training checkpoint", REMEDY["checkpoint"], device)
        check_resumable(state, experiment, str(ckpt_path))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"], device)
        method.load_state_dict(state["method"])
        step, log = state["step"], state["log"]
    run = TrainRun(
        splits,
        dataset_dirs,
        optimizer,
        device,
        total,
        out_dir,
        ctx,
        cfg.get("workers", 0),
        cfg["crop_size"],
        cfg.get("resize_short_side"),
    )
    net: torch.nn.Module = model
    if ctx.distributed:
        # multi-head methods and frozen phases leave some parameters without a gradient
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    def save_checkpoint() -> None:
        if ctx.is_main:
            save_torch(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": _rng_state(device),
                    "method": method.state_dict(),
                    "step": step,
                    "log": log,
                    "fingerprint": fingerprint(spec),
                    "run_spec": spec,
                },
                ckpt_path,
            )
            write_log(out_dir / "train_log.csv", log)
        distributed.barrier(ctx)

    model.train()
    batches = training_batches(stream, step, total, cfg.get("workers", 0))
    mixed = AUTOCAST.get(precision)
    start = time.perf_counter() - (log[-1]["seconds"] if log else 0.0)
    with (
        _StopRequest() as stop,
        tqdm(
            total=total,
            initial=step,
            desc=experiment["id"],
            unit="it",
            mininterval=2.0,
            disable=not ctx.is_main,
        ) as bar,
    ):
        starts = method.schedule_starts(total)
        while step < total:
            begin, end = stage_bounds(starts, step, total)
            if step == begin and step > 0:
                optimizer.state.clear()  # a new stage is a new run: fresh AdamW moments
            factor = poly_factor(
                step - begin, end - begin, cfg["warmup_iterations"], cfg["poly_power"]
            )
            for group in optimizer.param_groups:
                group["lr"] = cfg["lr"] * group["lr_scale"] * factor
            method.before_step(step, model, run)
            images, labels, owners = (t.to(device, non_blocking=True) for t in next(batches))
            # uint8 [B, H, W, 3] -> normalised [B, 3, H, W]; the permuted view is channels_last
            images = normalise_images(images.permute(0, 3, 1, 2), dtype)
            images = images.contiguous(memory_format=layout)
            optimizer.zero_grad(set_to_none=True)
            loss = accumulated_backward(
                net, method, (images, labels.long(), owners), micro, scaler, mixed
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{experiment['id']}: loss is {loss.item()} at step {step}"
                )
            if clip_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            loss_value = distributed.mean(loss.float(), ctx)
            log.append(
                {
                    "step": step,
                    "loss": round(loss_value, 6),
                    "lr": cfg["lr"] * factor,
                    "seconds": round(time.perf_counter() - start, 3),
                    **method.log_fields(),
                }
            )
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            stopping = distributed.any_rank(stop.signal is not None, ctx)
            if step % cfg["checkpoint_every"] == 0 or stopping:
                save_checkpoint()
            if stopping and step < total:
                distributed.shutdown(ctx)
                raise SystemExit(f"stopped by a signal at step {step}; checkpoint saved")

    if ctx.is_main:
        _write_model(experiment, method, model, log, step, out_dir, features)
        ckpt_path.unlink(missing_ok=True)
    distributed.barrier(ctx)
    distributed.shutdown(ctx)
    return out_dir / "model.pt"


def _write_model(
    experiment: dict[str, Any],
    method: Method,
    model: Segmentor,
    log: list[dict[str, float]],
    step: int,
    out_dir: Path,
    text_features: dict[str, torch.Tensor] | None,
) -> Path:
    """Write the run's outputs, ``model.pt`` last: a run that fails midway leaves no model."""
    write_log(out_dir / "train_log.csv", log)
    artefacts = method.write_artefacts(model, out_dir)
    write_json(
        out_dir / "summary.json",
        {
            "experiment": experiment["id"],
            "backbone_init": model.backbone.init,
            "classes": method.classes,
            "steps": step,
            "final_loss": log[-1]["loss"] if log else None,
            "convergence": convergence([row["loss"] for row in log]),
            "artefacts": [p.name for p in artefacts],
        },
    )
    model_path = out_dir / "model.pt"
    save_torch(
        {
            "experiment": experiment,
            "method": method.name,
            "classes": method.classes,
            "dataset_classes": method.dataset_classes,
            "method_state": method.state_dict(),
            "text_features": text_features,
            "backbone_init": model.backbone.init,
            "state_dict": model.state_dict(),
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


def load_model(path: Path, device: str = "cpu") -> tuple[Method, Segmentor, dict[str, Any]]:
    """Rebuild the method and network saved by :func:`train`, weights included."""
    state = load_torch(path, "a trained model (model.pt)", REMEDY["model"], device)
    exp = state["experiment"]
    method = build_method(exp, state["dataset_classes"], state.get("text_features"))
    method.load_state_dict(state["method_state"])
    model = build_model(method, exp["backbone"])
    model.load_state_dict(state["state_dict"])
    return method, model.to(device).eval(), state
