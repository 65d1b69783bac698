"""What a config's training costs on a GPU cluster: GPUs, images, GPU-hours, SLURM jobs.

Step times come from a throughput table (CSV: backbone, crop, per_gpu_batch, precision, gpu,
seconds_per_iteration, source), by default ``mdseg/data/throughput.csv``. Its shipped rows are
estimates derived from public figures (each row's ``source`` says how) until
``scripts/gpu_check.py`` measures them; rows it prints can be appended to a copy of the table
named by ``cluster.throughput``. A combination without its own row is looked up step by step,
and the row's note says what was assumed:

- a backbone without rows is planned as ``hrnet_w48``, the largest registered HRNet, so the
  job count errs on the long side;
- a precision without rows is planned as ``fp32``;
- an unset ``cluster.gpu_model`` (or one without rows) is planned as an ``a100``, AutoUniSeg's
  GPU;
- other crop sizes and per-GPU batches scale the nearest row linearly in pixels per GPU per step.

A training job trains for its time limit less ``signal_seconds`` (the checkpoint warning) and
``startup_seconds`` (start, data index, resume); a run needs as many jobs as that takes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mdseg.batching import Context, shard

COLUMNS = (
    "backbone",
    "crop",
    "per_gpu_batch",
    "precision",
    "gpu",
    "seconds_per_iteration",
    "source",
)
DEFAULT_GPU = "a100"
FALLBACK_BACKBONE = "hrnet_w48"
FALLBACK_PRECISION = "fp32"
PLAN_COLUMNS = (
    "experiment",
    "gpus",
    "iterations",
    "images_seen",
    "seconds_per_iteration",
    "gpu_hours",
    "wall_hours",
    "slurm_jobs",
    "note",
)


@dataclass(frozen=True)
class Throughput:
    """One row of the throughput table: seconds per training step for one setting."""

    backbone: str
    crop: int
    per_gpu_batch: int
    precision: str
    gpu: str
    seconds: float
    source: str

    @property
    def pixels(self) -> int:
        """Pixels one GPU processes per step (the load step time scales with)."""
        return self.per_gpu_batch * self.crop * self.crop


@dataclass(frozen=True)
class StepTime:
    """Estimated seconds per step, what was assumed to get them ('' for an exact row), and the
    source of the table row they come from."""

    seconds: float
    note: str
    source: str


@dataclass(frozen=True)
class PlanRow:
    """One experiment's cost: the columns of ``mdseg plan``."""

    experiment: str
    gpus: int
    iterations: int
    images_seen: int
    seconds_per_iteration: float
    gpu_hours: float
    wall_hours: float
    slurm_jobs: int
    note: str
    source: str


def default_table() -> Path:
    return Path(str(resources.files("mdseg").joinpath("data", "throughput.csv")))


def read_table(path: str | Path | None = None) -> list[Throughput]:
    """The rows of a throughput table; errors name the file, line and column."""
    path = Path(path) if path else default_table()
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: throughput table lacks column(s) {', '.join(missing)}")
        rows = []
        for line, rec in enumerate(reader, start=2):
            try:
                row = Throughput(
                    backbone=rec["backbone"],
                    crop=int(rec["crop"]),
                    per_gpu_batch=int(rec["per_gpu_batch"]),
                    precision=rec["precision"],
                    gpu=rec["gpu"],
                    seconds=float(rec["seconds_per_iteration"]),
                    source=rec["source"],
                )
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{path}:{line}: crop and per_gpu_batch must be integers and "
                    f"seconds_per_iteration a number ({err})"
                ) from err
            if row.crop <= 0 or row.per_gpu_batch <= 0 or row.seconds <= 0:
                raise ValueError(
                    f"{path}:{line}: crop, per_gpu_batch and seconds_per_iteration must be > 0"
                )
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: throughput table has no rows")
    return rows


def step_time(
    table: list[Throughput],
    backbone: str,
    crop: int,
    per_gpu_batch: float,
    precision: str,
    gpu: str | None,
) -> StepTime:
    """Seconds per step for the setting: its own row, else the fallbacks of the module doc."""
    notes = []
    rows = [r for r in table if r.backbone == backbone]
    if not rows:
        notes.append(f"no figures for {backbone}: planned as {FALLBACK_BACKBONE}")
        rows = [r for r in table if r.backbone == FALLBACK_BACKBONE]
    if not any(r.precision == precision for r in rows):
        notes.append(f"no figures for {precision}: planned as {FALLBACK_PRECISION}")
        precision = FALLBACK_PRECISION
    rows = [r for r in rows if r.precision == precision]
    if gpu is None:
        notes.append(f"gpu_model unset: planned as {DEFAULT_GPU}")
        gpu = DEFAULT_GPU
    elif not any(r.gpu == gpu for r in rows):
        notes.append(f"no figures for gpu {gpu}: planned as {DEFAULT_GPU}")
        gpu = DEFAULT_GPU
    rows = [r for r in rows if r.gpu == gpu]
    if not rows:
        raise ValueError(
            f"throughput table has no {precision} row on {gpu} for {backbone} or "
            f"{FALLBACK_BACKBONE}: add one (columns {', '.join(COLUMNS)})"
        )
    pixels = per_gpu_batch * crop * crop
    nearest = min(rows, key=lambda r: (abs(math.log(r.pixels / pixels)), -r.pixels))
    seconds = nearest.seconds * pixels / nearest.pixels
    if nearest.pixels != pixels:
        notes.append(
            f"scaled from {nearest.backbone} {nearest.crop}px x{nearest.per_gpu_batch} "
            f"{nearest.precision} {nearest.gpu} by pixels per GPU"
        )
    return StepTime(seconds, "; ".join(notes), nearest.source)


def world_size(cluster: dict[str, Any]) -> int:
    """Processes (GPUs) of a training job."""
    return cluster["gpus"] * cluster["nodes"]


def job_seconds(cluster: dict[str, Any]) -> int:
    """Seconds of training one job gets: its limit less the checkpoint warning and start-up."""
    seconds = cluster["train_runtime"] * 60 - cluster["signal_seconds"] - cluster["startup_seconds"]
    if seconds <= 0:
        raise ValueError(
            f"cluster.train_runtime {cluster['train_runtime']} min leaves no training time after "
            f"signal_seconds {cluster['signal_seconds']} and startup_seconds "
            f"{cluster['startup_seconds']}"
        )
    return seconds


def plan_experiment(
    experiment: dict[str, Any], cluster: dict[str, Any], table: list[Throughput]
) -> PlanRow:
    """GPUs, images, GPU-hours, wall time and SLURM jobs of one experiment."""
    t = experiment["training"]
    world = world_size(cluster)
    blocks = len(experiment["train"]) if t["sampling"] == "balanced" else 1
    notes = []
    try:
        shard(t["batch_size"], blocks, Context(0, world))
    except ValueError as err:  # training refuses it; the plan says so and still estimates
        notes.append(str(err))
    step = step_time(
        table,
        experiment["backbone"],
        t["crop_size"],
        t["batch_size"] / world,
        t.get("precision", "fp32"),
        cluster["gpu_model"],
    )
    notes += [step.note] if step.note else []
    train_seconds = t["iterations"] * step.seconds
    jobs = max(1, math.ceil(train_seconds / job_seconds(cluster)))
    wall_seconds = train_seconds + jobs * cluster["startup_seconds"]
    return PlanRow(
        experiment=experiment["id"],
        gpus=world,
        iterations=t["iterations"],
        images_seen=t["iterations"] * t["batch_size"],
        seconds_per_iteration=step.seconds,
        gpu_hours=wall_seconds * world / 3600,
        wall_hours=wall_seconds / 3600,
        slurm_jobs=jobs,
        note="; ".join(notes),
        source=step.source,
    )


def plan_rows(
    experiments: dict[str, dict[str, Any]], cluster: dict[str, Any], table: list[Throughput]
) -> list[PlanRow]:
    return [plan_experiment(e, cluster, table) for e in experiments.values()]


def write_csv(rows: list[PlanRow], path: str | Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PLAN_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.experiment,
                    r.gpus,
                    r.iterations,
                    r.images_seen,
                    f"{r.seconds_per_iteration:.4g}",
                    f"{r.gpu_hours:.1f}",
                    f"{r.wall_hours:.1f}",
                    r.slurm_jobs,
                    r.note,
                ]
            )


def format_table(rows: list[PlanRow]) -> str:
    """The plan as an aligned text table with a total line; notes and sources below it."""
    head = ["experiment", "GPUs", "iterations", "images", "s/it", "GPU-h", "wall h", "jobs"]
    body = [
        [
            r.experiment,
            str(r.gpus),
            str(r.iterations),
            str(r.images_seen),
            f"{r.seconds_per_iteration:.3g}",
            f"{r.gpu_hours:.1f}",
            f"{r.wall_hours:.1f}",
            str(r.slurm_jobs),
        ]
        for r in rows
    ]
    body.append(
        [
            "total",
            "",
            str(sum(r.iterations for r in rows)),
            str(sum(r.images_seen for r in rows)),
            "",
            f"{sum(r.gpu_hours for r in rows):.1f}",
            "",
            str(sum(r.slurm_jobs for r in rows)),
        ]
    )
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [head, *body]
    ]
    notes = []
    for note in sorted({r.note for r in rows if r.note}):
        which = [r.experiment for r in rows if r.note == note]
        notes.append(note if len(which) == len(rows) else f"{', '.join(which)}: {note}")
    sources = sorted({r.source for r in rows})
    return "\n".join(
        [
            *lines,
            "wall time: training plus each job's start-up, without queueing (runs may overlap)",
            *(f"note: {n}" for n in notes),
            *(f"step time source: {s}" for s in sources),
        ]
    )
