"""Start ``mdseg`` on the GPUs the job actually holds: one process, torchrun, or srun + torchrun.

The workflow's training and relations commands are ``mdseg launch -- <command> ...`` whatever
the GPU count, so changing ``cluster.gpus`` (or ``--set-resources train:gpu=8``) changes the
allocation SLURM grants and nothing else: no rule parameter changes, no finished model is
retrained, and the process count follows the allocation at run time:

- one node, at most one GPU: the command runs in this process;
- one node, N > 1 GPUs: ``torchrun --standalone --nproc-per-node N``;
- several nodes (``SLURM_JOB_NUM_NODES`` > 1): ``srun`` starts one torchrun per node, which
  meet at the first node of the job (c10d rendezvous on ``rdzv_port``).

GPUs are counted from SLURM's ``SLURM_GPUS_ON_NODE``, else ``CUDA_VISIBLE_DEVICES``, else the
devices torch sees.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping


def gpus_on_node(env: Mapping[str, str]) -> int:
    """GPUs this node's share of the job holds (0 on a CPU machine)."""
    if env.get("SLURM_GPUS_ON_NODE", "").isdigit():
        return int(env["SLURM_GPUS_ON_NODE"])
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    import torch

    return torch.cuda.device_count()


def launch_command(
    command: list[str], env: Mapping[str, str], rdzv_port: int = 29500
) -> list[str] | None:
    """The argv that starts ``mdseg <command>`` on the job's GPUs; None: run it in this process."""
    nodes = int(env.get("SLURM_JOB_NUM_NODES", "1") or 1)
    gpus = gpus_on_node(env)
    if nodes == 1 and gpus <= 1:
        return None
    per_node = ["--nproc-per-node", str(max(gpus, 1))]
    if nodes == 1:
        return ["torchrun", "--standalone", *per_node, "--no-python", "mdseg", *command]
    head = "$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)"
    rendezvous = f"--rdzv-endpoint {head}:{rdzv_port} --rdzv-id $SLURM_JOB_ID"
    torchrun = " ".join(["torchrun", "--nnodes", str(nodes), *per_node, "--rdzv-backend c10d"])
    quoted = " ".join(shlex.quote(a) for a in command)
    script = f"{torchrun} {rendezvous} --no-python mdseg {quoted}"
    return ["srun", "--ntasks-per-node=1", "bash", "-c", script]


def launch(command: list[str], rdzv_port: int = 29500) -> int:
    """Run ``mdseg <command>`` here or replace this process by its launcher (signals reach it)."""
    argv = launch_command(command, os.environ, rdzv_port)
    if argv is None:
        from mdseg.cli import main

        return main(command)
    os.execvp(argv[0], argv)
