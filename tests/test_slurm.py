"""The SLURM profile: resources per rule from ``cluster:``, and a dry run through the profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mdseg.cluster import eval_resources, launcher, train_resources

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN = ("--profile", "slurm", "-n", "--configfile", "experiments/tiny.yaml", "-d")


def test_one_node_asks_for_gpus_without_tasks():
    config = {"cluster": {"partition": "gpu", "gpus": 4, "gpu_model": "a100"}}
    res = train_resources(config)
    assert res["gpu"] == 4 and res["gpu_model"] == "a100" and res["slurm_partition"] == "gpu"
    assert "tasks" not in res and "--signal=TERM@300" in res["slurm_extra"]
    assert launcher(config).startswith("torchrun --nproc-per-node 4 --standalone")
    assert eval_resources(config)["gpu"] == 1
    assert launcher({}) == "mdseg"


def test_several_nodes_use_mpi_and_gpus_per_node():
    res = train_resources({"cluster": {"gpus": 4, "nodes": 2}})
    assert res["mpi"] == "srun" and res["nodes"] == res["tasks"] == 2 and "gpu" not in res
    assert "--gpus-per-node=4 --ntasks-per-node=1" in res["slurm_extra"]
    assert launcher({"cluster": {"gpus": 4, "nodes": 2}}).startswith("srun --ntasks-per-node=1")


def test_environment_fills_partition(monkeypatch):
    monkeypatch.setenv("MDSEG_SLURM_PARTITION", "a100q")
    assert train_resources({})["slurm_partition"] == "a100q"


def test_profile_dry_run_shows_gpu_training_jobs(tmp_path):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), *DRY_RUN, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule train:" in out and "gpu=1" in out and "cpus_per_gpu=8" in out
