"""Pretrained weights read offline from the Hugging Face hub cache: ImageNet HRNets, encoders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
import yaml
from conftest import tiny_experiment
from safetensors.torch import save_file

from mdseg.build import load_model
from mdseg.cli import main
from mdseg.cluster import encode_resources
from mdseg.labels.encoders import build_encoder
from mdseg.models.backbones import HRNetBranches
from mdseg.train import train
from mdseg.weights import (
    WeightsNotCached,
    cached_imagenet_file,
    fetch_imagenet,
    fetch_snapshot,
    hub_cache,
    is_hub_id,
)

ROOT = Path(__file__).resolve().parents[1]
BACKBONE = "hrnet_w18_small_v2"
REPO = f"timm/{BACKBONE}.ms_in1k"
REVISION = "0123456789abcdef0123456789abcdef01234567"
ENCODER_REPO = "acme/tiny-bert"


def cache_entry(cache: Path, repo: str) -> Path:
    """An empty snapshot folder of ``repo`` laid out as huggingface_hub lays out its cache."""
    entry = cache / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(REVISION)
    snapshot = entry / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    return snapshot


def imagenet_checkpoint(cache: Path, filename: str = "model.safetensors") -> dict:
    """Save a randomly initialised full timm classifier as the cached ImageNet file."""
    torch.manual_seed(7)
    state = {k: v.contiguous() for k, v in timm.create_model(BACKBONE).state_dict().items()}
    path = cache_entry(cache, REPO) / filename
    if filename.endswith(".safetensors"):
        save_file(state, path)
    else:
        torch.save(state, path)
    return state


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty hub cache, offline: any HTTP request by huggingface_hub raises."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


# ----------------------------------------------------------------------------- the cache


@pytest.mark.parametrize(
    "env",
    [
        {"HF_HUB_CACHE": "{tmp}/a"},
        {"HF_HOME": "{tmp}/b", "HF_HUB_CACHE": ""},
        {"XDG_CACHE_HOME": "{tmp}/c", "HF_HOME": "", "HF_HUB_CACHE": ""},
        {"HOME": "{tmp}/d", "XDG_CACHE_HOME": "", "HF_HOME": "", "HF_HUB_CACHE": ""},
    ],
)
def test_hub_cache_is_huggingface_hubs(env, monkeypatch, tmp_path):
    env = {k: v.format(tmp=tmp_path) for k, v in env.items()}
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    library = subprocess.run(
        [
            sys.executable,
            "-c",
            "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(hub_cache()) == library
    assert library.startswith(str(tmp_path))


def test_hub_ids_and_local_folders(monkeypatch, tmp_path):
    assert is_hub_id("meta-llama/Llama-2-7b-hf") and is_hub_id(ENCODER_REPO)
    for path in ("/models/llama", "./llama/x", "~/llama", "a/b/c", "llama", ""):
        assert not is_hub_id(path), path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "tiny-bert").mkdir(parents=True)
    assert not is_hub_id(ENCODER_REPO)  # an existing local folder wins


# ----------------------------------------------------------------------------- backbones


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin"])
def test_imagenet_backbone_loads_offline_from_the_cache(offline, filename):
    saved = imagenet_checkpoint(offline, filename)
    backbone = HRNetBranches(BACKBONE, "imagenet")
    assert backbone.init == f"imagenet ({REPO})"
    own = backbone.body.state_dict()
    assert set(own) <= set(saved)
    assert all(torch.equal(own[k], saved[k]) for k in own)
    assert not torch.equal(
        HRNetBranches(BACKBONE).body.state_dict()["conv1.weight"], own["conv1.weight"]
    )
    assert backbone.channels == [18, 36, 72, 144]


def test_training_records_the_imagenet_init_and_reloads_without_the_cache(offline, tiny_datasets):
    imagenet_checkpoint(offline)
    spec = tiny_experiment("single", ["cityscapes"], iterations=1)
    spec["weights"] = "imagenet"
    out = offline.parent / "model"
    train(spec, {"cityscapes": tiny_datasets["cityscapes"]}, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backbone_init"] == f"imagenet ({REPO})"
    shutil.rmtree(offline)  # a trained model never needs the hub again
    _, model, state = load_model(out / "model.pt")
    assert state["backbone_init"] == f"imagenet ({REPO})"
    saved = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_missing_imagenet_weights_name_the_cache_and_the_command(offline):
    with pytest.raises(WeightsNotCached) as err:
        HRNetBranches(BACKBONE, "imagenet")
    message = str(err.value)
    assert str(offline) in message and REPO in message
    assert "snakemake weights" in message and f"mdseg weights backbone {BACKBONE}" in message


def test_fetch_records_a_cached_file_without_the_network(offline):
    imagenet_checkpoint(offline)
    record = fetch_imagenet(BACKBONE)
    path = Path(record["file"])
    assert path == cached_imagenet_file(BACKBONE) and path.name == "model.safetensors"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["source"] == REPO and record["revision"] == REVISION
    assert record["cache"] == str(offline)


def test_fetch_without_network_or_cache_fails_clearly(offline):
    with pytest.raises(WeightsNotCached, match="could not download") as err:
        fetch_imagenet(BACKBONE)
    assert "HF_HUB_OFFLINE" in str(err.value) and str(offline) in str(err.value)
    assert not list(offline.glob("models--*/snapshots/*/*"))


def test_cli_weights_writes_the_record(offline, tmp_path, capsys):
    out = tmp_path / "results" / "weights" / f"{BACKBONE}.json"
    assert main(["weights", "backbone", BACKBONE, "--out", str(out)]) == 1
    assert "could not download" in capsys.readouterr().err and not out.exists()
    imagenet_checkpoint(offline)
    assert main(["weights", "backbone", BACKBONE, "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == fetch_imagenet(BACKBONE)


def test_a_local_checkpoint_file_still_works(tmp_path):
    torch.manual_seed(3)
    state = timm.create_model(BACKBONE).state_dict()
    path = tmp_path / "w18.pth"
    torch.save(state, path)
    backbone = HRNetBranches(BACKBONE, str(path))
    own = backbone.body.state_dict()
    assert backbone.init == f"{path} ({len(own)}/{len(own)} tensors)"
    assert all(torch.equal(own[k], state[k]) for k in own)


# ----------------------------------------------------------------------------- text encoders


def test_text_encoder_hub_id_loads_offline_from_the_cache(offline, tiny_hf):
    snapshot = cache_entry(offline, ENCODER_REPO)
    shutil.copytree(tiny_hf, snapshot, dirs_exist_ok=True)
    encoder = build_encoder("hf", path=ENCODER_REPO)
    assert encoder.source == str(snapshot) and encoder.dim == 32
    texts = ["road", "a person riding a bicycle"]
    torch.testing.assert_close(
        encoder.encode(texts), build_encoder("hf", path=tiny_hf).encode(texts), atol=0, rtol=0
    )
    record = fetch_snapshot(ENCODER_REPO)
    assert record["revision"] == REVISION and record["folder"] == str(snapshot)
    assert record["files"]["config.json"] == (tiny_hf / "config.json").stat().st_size


def test_missing_text_encoder_names_the_cache_the_command_and_the_login(offline):
    with pytest.raises(WeightsNotCached) as err:
        build_encoder("hf", path="meta-llama/Llama-2-7b-hf")
    message = str(err.value)
    assert str(offline) in message and "snakemake weights" in message
    assert "mdseg weights encoder meta-llama/Llama-2-7b-hf" in message
    assert "hf auth login" in message and "license" in message


# ----------------------------------------------------------------------------- the workflow


def test_encode_resources_follow_the_device(monkeypatch):
    monkeypatch.delenv("MDSEG_GPU_MODEL", raising=False)
    cpu = encode_resources({"encoder": {"name": "minilm", "device": "cpu"}})
    assert "gpu" not in cpu and "slurm_partition" not in cpu
    assert cpu["mem_mb"] == 4000 and cpu["runtime"] == 30
    config = {
        "cluster": {"partition": "a100", "eval_partition": "short", "gpu_model": "a100"},
        "encoder": {"name": "hf", "device": "cuda", "mem_mb": 32000, "runtime": 60},
    }
    gpu = encode_resources(config)
    assert gpu["gpu"] == 1 and gpu["gpu_model"] == "a100" and gpu["slurm_partition"] == "short"
    assert gpu["mem_mb"] == 32000 and gpu["runtime"] == 60 and gpu["cpus_per_gpu"] == 8


def test_profile_dry_run_fetches_weights_before_jobs(tmp_path):
    config = yaml.safe_load((ROOT / "experiments" / "tiny.yaml").read_text())
    config["backbones"] = {BACKBONE: {"weights": "imagenet"}}
    config["encoder"] = {"name": "hf", "path": ENCODER_REPO, "device": "cuda", "mem_mb": 20000}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).parent / "snakemake")
    args = ["--profile", "slurm", "-n", "--configfile", str(configfile), "-d", str(tmp_path)]
    proc = subprocess.run([snakemake, *args], cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = out.split("\nrule ")
    train = [j for j in jobs if j.startswith("train:")]
    encode = [j for j in jobs if j.startswith("encode_labels:")]
    assert len(train) == 2 and all(f"results/weights/{BACKBONE}.json" in j for j in train)
    assert len(encode) == 1 and "results/weights/text_encoder.json" in encode[0]
    assert "gpu=1" in encode[0] and "mem_mb=20000" in encode[0]
    assert sum(j.startswith(("backbone_weights:", "text_encoder_weights:")) for j in jobs) == 2
