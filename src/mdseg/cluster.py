"""SLURM resources and the training launcher, from the config's ``cluster:`` section.

Partition, account and GPU model come from the config or, where it leaves them null, from
``MDSEG_SLURM_PARTITION``, ``MDSEG_SLURM_ACCOUNT`` and ``MDSEG_GPU_MODEL``; unset, SLURM's
defaults apply. Jobs get SIGTERM ``signal_seconds`` before their time limit: under the executor
every process of the job step receives it, training saves a checkpoint and the Snakemake step
inside the job exits gracefully (SIGUSR1 would kill that Snakemake process outright).
"""

from __future__ import annotations

import os
from typing import Any

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
    "rdzv_port": 29500,
}
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


def train_resources(config: dict[str, Any]) -> dict[str, Any]:
    """One node: ``gpu`` (+ ``gpu_model``), ``cpus_per_gpu``; several: ``mpi`` + --gpus-per-node.

    ``tasks`` is never set on a GPU request: the executor turns it into --ntasks-per-gpu.
    """
    c = settings(config)
    res = _common(c, c["partition"])
    res["runtime"] = c["train_runtime"]
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


def launcher(config: dict[str, Any]) -> str:
    """The command that starts ``mdseg`` for training: one process, torchrun, or srun+torchrun."""
    c = settings(config)
    if c["nodes"] == 1 and c["gpus"] == 1:
        return "mdseg"
    torchrun = f"torchrun --nproc-per-node {c['gpus']}"
    if c["nodes"] == 1:
        return f"{torchrun} --standalone --no-python mdseg"
    head = "$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)"
    return (
        f"srun --ntasks-per-node=1 {torchrun} --nnodes {c['nodes']} --rdzv-backend c10d"
        f" --rdzv-endpoint {head}:{c['rdzv_port']} --rdzv-id $SLURM_JOB_ID --no-python mdseg"
    )
