"""SLURM resources and the training launcher, from the config's ``cluster:`` section.

Partition, account and GPU model come from the config or, where it leaves them null, from
``MDSEG_SLURM_PARTITION``, ``MDSEG_SLURM_ACCOUNT`` and ``MDSEG_GPU_MODEL``; unset, SLURM's
defaults apply. Jobs get SIGTERM ``signal_seconds`` before their time limit: under the executor
every process of the job step receives it, training saves a checkpoint and the Snakemake step
inside the job exits gracefully (SIGUSR1 would kill that Snakemake process outright).

A run longer than one job's time limit continues in the next: the job fails after its
checkpoint, Snakemake retries it and training resumes. The train rule's ``retries`` cover the
jobs the longest experiment needs by :mod:`mdseg.plan`'s estimate, plus ``retry_margin`` for
genuine failures; a run that fits in one job asks for twice its estimate (at most
``train_runtime``), so short runs queue as short jobs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from mdseg import plan

DEFAULTS: dict[str, Any] = {
    "partition": None,
    "eval_partition": None,
    "account": None,
    "gpu_model": None,
    "gpus": 1,
    "nodes": 1,
    "cpus_per_gpu": 8,
    "mem_mb_per_gpu": 32000,
    "train_runtime": 1440,
    "eval_runtime": 120,
    "signal_seconds": 300,
    "startup_seconds": 600,
    "retry_margin": 2,
    "throughput": None,
    "prepare_runtime": 360,
    "prepare_mem_mb_per_job": 3000,
    "rdzv_port": 29500,
}
RUNTIME_SLACK = 2.0  # a one-job run asks for this multiple of its estimated time
ENVIRONMENT = {
    "partition": "MDSEG_SLURM_PARTITION",
    "account": "MDSEG_SLURM_ACCOUNT",
    "gpu_model": "MDSEG_GPU_MODEL",
}


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``cluster:`` section over the defaults, null entries filled from the environment."""
    merged = {**DEFAULTS, **config.get("cluster", {})}
    for key, var in ENVIRONMENT.items():
        if merged[key] is None and os.environ.get(var):
            merged[key] = os.environ[var]
    if merged["eval_partition"] is None:
        merged["eval_partition"] = merged["partition"]
    return merged


def _common(c: dict[str, Any], partition: str | None) -> dict[str, Any]:
    res: dict[str, Any] = {"slurm_extra": f"--signal=TERM@{c['signal_seconds']}"}
    if partition:
        res["slurm_partition"] = partition
    if c["account"]:
        res["slurm_account"] = c["account"]
    return res


def _plans(
    config: dict[str, Any], experiments: dict[str, dict[str, Any]]
) -> dict[str, plan.PlanRow]:
    c = settings(config)
    table = plan.read_table(c["throughput"])
    return {key: plan.plan_experiment(e, c, table) for key, e in experiments.items()}


def train_retries(config: dict[str, Any], experiments: dict[str, dict[str, Any]]) -> int:
    """Retries of the train rule: the most jobs any experiment needs, less one, plus the margin.

    Snakemake takes ``retries`` per rule (an integer, not a callable), hence the maximum.
    """
    jobs = max((p.slurm_jobs for p in _plans(config, experiments).values()), default=1)
    return jobs - 1 + settings(config)["retry_margin"]


def train_runtime(
    config: dict[str, Any], experiments: dict[str, dict[str, Any]]
) -> Callable[[Any], int]:
    """The ``runtime`` (minutes) of each experiment's training jobs, as a resource callable."""
    c = settings(config)
    plans = _plans(config, experiments)

    def runtime(wildcards: Any) -> int:
        p = plans[wildcards.experiment]
        if p.slurm_jobs > 1:
            return c["train_runtime"]
        train = p.iterations * p.seconds_per_iteration * RUNTIME_SLACK
        minutes = math.ceil((train + c["startup_seconds"] + c["signal_seconds"]) / 60)
        return min(c["train_runtime"], minutes)

    return runtime


def train_resources(
    config: dict[str, Any], experiments: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One node: ``gpu`` (+ ``gpu_model``), ``cpus_per_gpu``; several: ``mpi`` + --gpus-per-node.

    ``tasks`` is never set on a GPU request: the executor turns it into --ntasks-per-gpu.
    ``runtime`` follows each experiment's estimate (:func:`train_runtime`).
    """
    c = settings(config)
    res = _common(c, c["partition"])
    res["runtime"] = train_runtime(config, experiments)
    res["mem_mb"] = c["gpus"] * c["mem_mb_per_gpu"]
    if c["nodes"] == 1:
        res["gpu"] = c["gpus"]
        res["cpus_per_gpu"] = c["cpus_per_gpu"]
        if c["gpu_model"]:
            res["gpu_model"] = c["gpu_model"]
        return res
    # one torchrun per node, started by srun in the rule's command
    gpus = f"{c['gpu_model']}:{c['gpus']}" if c["gpu_model"] else str(c["gpus"])
    res.update(
        mpi="srun",
        nodes=c["nodes"],
        tasks=c["nodes"],
        cpus_per_task=c["gpus"] * c["cpus_per_gpu"],
    )
    res["slurm_extra"] += f" --gpus-per-node={gpus} --ntasks-per-node=1"
    return res


def eval_resources(config: dict[str, Any]) -> dict[str, Any]:
    """One GPU for evaluation."""
    c = settings(config)
    res = _common(c, c["eval_partition"])
    res.update(
        runtime=c["eval_runtime"],
        gpu=1,
        cpus_per_gpu=c["cpus_per_gpu"],
        mem_mb=c["mem_mb_per_gpu"],
    )
    if c["gpu_model"]:
        res["gpu_model"] = c["gpu_model"]
    return res


def prepare_resources(config: dict[str, Any]) -> dict[str, Any]:
    """A real dataset's conversion: CPUs only (``real.jobs`` processes), memory per process."""
    c = settings(config)
    jobs = config.get("real", {}).get("jobs", 2)
    return {"runtime": c["prepare_runtime"], "mem_mb": jobs * c["prepare_mem_mb_per_job"]}


def launcher(config: dict[str, Any]) -> str:
    """The command that starts ``mdseg`` for training and relations: ``mdseg launch``, which
    counts the job's GPUs at run time (:mod:`mdseg.launch`), so the GPU count is no parameter
    of the rule and changing it retrains nothing."""
    return f"mdseg launch --rdzv-port {settings(config)['rdzv_port']} --"


def encode_resources(config: dict[str, Any]) -> dict[str, Any]:
    """The label encoder's job: host memory and run time from ``encoder:``; 1 GPU for ``cuda``.

    On a CPU the job goes to SLURM's default partition; on a GPU to the evaluation partition.
    """
    c = settings(config)
    encoder = config["encoder"]
    on_gpu = str(encoder.get("device", "cpu")).startswith("cuda")
    res = _common(c, c["eval_partition"] if on_gpu else None)
    res.update(mem_mb=encoder.get("mem_mb", 4000), runtime=encoder.get("runtime", 30))
    if on_gpu:
        res.update(gpu=1, cpus_per_gpu=c["cpus_per_gpu"])
        if c["gpu_model"]:
            res["gpu_model"] = c["gpu_model"]
    return res
