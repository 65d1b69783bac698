"""The SLURM profile: resources per rule from ``cluster:``, and a dry run through the profile."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.utils import update_config

from mdseg import plan
from mdseg.cluster import eval_resources, launcher, train_resources, train_retries, train_runtime
from mdseg.experiments import expand_experiments
from mdseg.launch import launch_command

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN = ("--profile", "slurm", "-n", "--configfile", "experiments/tiny.yaml", "-d")
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def test_one_node_asks_for_gpus_without_tasks():
    config = {"cluster": {"partition": "gpu", "gpus": 4, "gpu_model": "a100"}}
    res = train_resources(config, {})
    assert res["gpu"] == 4 and res["gpu_model"] == "a100" and res["slurm_partition"] == "gpu"
    assert "tasks" not in res and "--signal=TERM@300" in res["slurm_extra"]
    assert eval_resources(config)["gpu"] == 1


def test_several_nodes_use_mpi_and_gpus_per_node():
    res = train_resources({"cluster": {"gpus": 4, "nodes": 2}}, {})
    assert res["mpi"] == "srun" and res["nodes"] == res["tasks"] == 2 and "gpu" not in res
    assert "--gpus-per-node=4 --ntasks-per-node=1" in res["slurm_extra"]


def test_the_launch_command_does_not_depend_on_the_gpu_count():
    """Changing cluster.gpus must not change the train rule's command (Snakemake would retrain)."""
    commands = {launcher({"cluster": {"gpus": g, "nodes": n}}) for g in (1, 4, 8) for n in (1, 2)}
    assert commands == {"mdseg launch --rdzv-port 29500 --"}


TORCHRUN = ["torchrun", "--standalone", "--nproc-per-node"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CUDA_VISIBLE_DEVICES": ""}, None),
        ({"SLURM_GPUS_ON_NODE": "1", "CUDA_VISIBLE_DEVICES": "3"}, None),
        ({"SLURM_GPUS_ON_NODE": "8"}, [*TORCHRUN, "8"]),
        ({"CUDA_VISIBLE_DEVICES": "0,1"}, [*TORCHRUN, "2"]),
    ],
)
def test_launch_follows_the_gpus_the_job_holds(env, expected):
    """None: one process, here; else torchrun with one process per GPU of the allocation."""
    command = launch_command(["train", "--out", "a b"], env)
    tail = ["--no-python", "mdseg", "train", "--out", "a b"]
    assert command == (None if expected is None else [*expected, *tail])


def test_launch_on_several_nodes_starts_one_torchrun_per_node():
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_GPUS_ON_NODE": "4"}
    command = launch_command(["train", "--out", "a b"], env, rdzv_port=1234)
    assert command is not None and command[:4] == ["srun", "--ntasks-per-node=1", "bash", "-c"]
    assert command[4].startswith("torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d")
    assert ":1234 --rdzv-id $SLURM_JOB_ID --no-python mdseg train --out 'a b'" in command[4]


def test_environment_fills_partition(monkeypatch):
    monkeypatch.setenv("MDSEG_SLURM_PARTITION", "a100q")
    assert train_resources({}, {})["slurm_partition"] == "a100q"


def test_profile_dry_run_shows_gpu_training_jobs(tmp_path):
    proc = subprocess.run(
        [SNAKEMAKE, *DRY_RUN, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule train:" in out and "gpu=1" in out and "cpus_per_gpu=8" in out


def _experiment(exp_id: str, iterations: int) -> dict:
    training = {"iterations": iterations, "batch_size": 84, "crop_size": 768}
    training |= {"sampling": "balanced", "precision": "bf16"}
    return {"id": exp_id, "backbone": "hrnet_w48", "train": list("CMSBIAO"), "training": training}


def test_retries_follow_from_the_settings(tmp_path):
    table = tmp_path / "throughput.csv"
    table.write_text(",".join(plan.COLUMNS) + "\nhrnet_w48,768,21,bf16,a100,1.0,measured\n")
    cluster = {"gpus": 4, "gpu_model": "a100", "throughput": str(table)}
    experiments = {"long": _experiment("long", 300000), "short": _experiment("short", 1000)}
    # a job trains 24 h - 300 s - 600 s = 85500 s: 300k one-second steps take 4 jobs,
    # 3 retries, plus the default margin of 2
    assert train_retries({"cluster": cluster}, experiments) == 5
    assert train_retries({"cluster": cluster | {"retry_margin": 0}}, experiments) == 3
    # 12 h jobs train 42300 s: 8 jobs
    assert train_retries({"cluster": cluster | {"train_runtime": 720}}, experiments) == 9
    # 8 GPUs: 10.5 images each, half the step time: 150000 s, 2 jobs
    assert train_retries({"cluster": cluster | {"gpus": 8}}, experiments) == 3
    runtime = train_runtime({"cluster": cluster}, experiments)
    assert runtime(SimpleNamespace(experiment="long")) == 1440
    # twice the 1000 s estimate plus start-up and warning: 2900 s = 49 min
    assert runtime(SimpleNamespace(experiment="short")) == 49


@pytest.mark.workflow
def test_rule_retries_win_over_the_command_line(tmp_path):
    """The profile's `retries: 1` is the command line's --retries; the train rule's own wins."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("training:\n  batch_size: 3\ncluster:\n  retry_margin: 1\n")
    target = "results/models/multi_ce-hrnet_w18_small_v2-C+M/model.pt"
    proc = subprocess.run(
        [
            SNAKEMAKE,
            "-d",
            str(tmp_path),
            "-c1",
            "--retries",
            "0",
            target,
            "--configfile",
            "experiments/tiny.yaml",
            str(overlay),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # tiny trains in one job: 0 retries for time-outs + retry_margin 1
    assert out.count("Error in rule train:") == 2 and out.count("Trying to restart job") == 1


def _jobs(out: str) -> list[dict]:
    """The jobs of a dry run: rule name, wildcards and resources of each."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        head = re.match(r"(local)?rule (\w+):\n", block)
        if not head:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)
        resources = dict(kv.split("=", 1) for kv in fields.get("resources", "").split(", ") if kv)
        jobs.append(
            {
                "rule": head[2],
                "local": bool(head[1]),
                "wildcards": wildcards,
                "resources": resources,
            }
        )
    return jobs


@pytest.fixture(scope="module", params=["autouniseg", "uniseg"])
def paper_dry_run(request, tmp_path_factory):
    """`snakemake --profile slurm -n` of a paper config, its jobs and its expanded experiments."""
    name = request.param
    config = yaml.safe_load((ROOT / "config.yaml").read_text())  # the base of every overlay
    update_config(config, yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text()))
    proc = subprocess.run(
        [
            SNAKEMAKE,
            "--profile",
            "slurm",
            "-n",
            "--configfile",
            f"experiments/{name}.yaml",
            "-d",
            str(tmp_path_factory.mktemp(name)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, expand_experiments(config), _jobs(proc.stdout + proc.stderr)


def test_paper_training_jobs_train_bf16_from_imagenet_on_4_gpus(paper_dry_run):
    config, experiments, jobs = paper_dry_run
    train = [j for j in jobs if j["rule"] == "train"]
    assert sorted(j["wildcards"]["experiment"] for j in train) == sorted(experiments)
    for job in train:
        exp = experiments[job["wildcards"]["experiment"]]
        assert exp["training"].get("precision") == "bf16", exp["id"]
        assert exp["weights"] == "imagenet", exp["id"]
        assert job["resources"]["gpu"] == "4" and not job["local"]
        assert int(job["resources"]["runtime"]) <= config.get("cluster", {}).get(
            "train_runtime", 1440
        )


def test_paper_evaluation_is_one_job_per_model_and_dataset(paper_dry_run):
    _, experiments, jobs = paper_dry_run
    pairs = sorted(
        (j["wildcards"].get("experiment"), j["wildcards"].get("dataset"))
        for j in jobs
        if j["rule"] == "evaluate"
    )
    assert pairs == sorted((e, ds) for e, exp in experiments.items() for ds in exp["evaluate"])
    assert all(j["resources"]["gpu"] == "1" for j in jobs if j["rule"] == "evaluate")


def test_paper_label_encoding_gets_a_gpu_when_its_device_is_cuda(paper_dry_run):
    config, _, jobs = paper_dry_run
    (encode,) = [j for j in jobs if j["rule"] == "encode_labels"]
    assert ("gpu" in encode["resources"]) == (config["encoder"]["device"] == "cuda")


def test_paper_conversions_are_cpu_jobs(paper_dry_run):
    config, _, jobs = paper_dry_run
    convert = [j for j in jobs if j["rule"] == "real_dataset"]
    assert convert and not any("gpu" in j["resources"] for j in convert)
    jobs_per_dataset = config.get("real", {}).get("jobs", 2)
    assert all(int(j["resources"]["mem_mb"]) == 3000 * jobs_per_dataset for j in convert)


def test_downloads_are_local_rules(tmp_path):
    """Compute nodes often have no internet: fetch_dataset runs where snakemake was started."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[ROOT / "experiments" / "uniseg.yaml"]),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=tmp_path,
        )
        local = workflow._workflow._localrules  # the parsed `localrules:` directives
    assert {"fetch_dataset", "plan", "plan_table"} <= local
    assert not {"real_dataset", "train"} & local


def test_the_workflow_profile_leaves_the_slurm_profile_alone():
    """profiles/default applies beside --profile slurm: it may not change what that sets, and
    neither may set cores, at which Snakemake caps every job's threads (SLURM jobs included)."""
    default = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    slurm = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert {k: v for k, v in default.items() if k in slurm} == {
        k: slurm[k] for k in default if k in slurm
    }
    assert "cores" not in default and "cores" not in slurm
