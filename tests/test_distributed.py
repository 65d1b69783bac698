"""Two gloo processes under torchrun train the same network as one process on the same batch.

Every rank decodes only its shard of the global batch (counted: global batch / 2 images per
rank per step), DDP averages the gradients and BatchNorm statistics are reduced over the global
batch, so DDP steps equal single-process steps up to float rounding. The comparison runs in
double precision (``training.precision: fp64``): a randomly initialised HRNet at 32 px
amplifies float32 BatchNorm rounding so much that merely swapping ``nn.BatchNorm2d`` for the
mathematically identical ``GlobalBatchNorm`` in one process moves the first float32 update by
~1e-3, which would hide real sharding errors. In float64 the two runs agree to ~1e-12 after one
step and ~3e-11 after two (relative to the update); the bounds are 1e-8 and 1e-7. Two steps
cover SGD momentum; a third step of this run amplifies rounding a million-fold (the same
one-process run on 2 threads instead of 1 differs by 9e-7 after three steps), which would test
the network's conditioning, not the sharding. The tiny datasets have the same number of
ignored pixels in every image, so each rank's mean cross-entropy has the same normaliser and
the average of rank means is the global mean. Both runs decode in one DataLoader worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_dataset, tiny_experiment
from PIL import Image
from torch import nn

from mdseg.build import build_model
from mdseg.distributed import Context, GlobalBatchNorm, shard
from mdseg.methods.multi_ce import MultiCE

BIN = Path(sys.executable).parent
TORCHRUN = ("--standalone", "--nproc-per-node", "2")
STEPS = 2
# ``mdseg`` whose SplitDataset.read appends "dataset index" to $READS.<rank> (workers inherit it)
COUNTING_MDSEG = """
import os, sys
from mdseg import data
from mdseg.cli import main

plain = data.SplitDataset.read


def counted(self, index):
    with open(f"{os.environ['READS']}.{os.environ.get('RANK', '0')}", "a") as fh:
        fh.write(f"{self.dir.name} {index}\\n")
    return plain(self, index)


data.SplitDataset.read = counted
sys.exit(main(sys.argv[1:]))
"""
CLASSES = {
    "cityscapes": ["road", "rider", "car"],
    "mapillary": ["road", "bicyclist", "motorcyclist", "car"],
}


def spec(path: Path) -> Path:
    experiment = tiny_experiment(
        "multi_ce",
        list(CLASSES),
        iterations=STEPS,
        batch_size=4,
        flip=True,
        workers=1,
        optimizer="sgd",
        lr=0.01,
        weight_decay=0.0001,
        precision="fp64",
    )
    path.write_text(json.dumps(experiment))
    return path


def test_shards_cover_the_global_batch_with_every_dataset_on_every_rank():
    parts = [shard(12, 2, Context(rank, 2)) for rank in range(2)]
    assert parts == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]
    assert shard(12, 2, Context()) == list(range(12))
    with pytest.raises(ValueError, match=r"training.batch_size 6"):
        shard(6, 2, Context(0, 2))


def noisy_datasets(root: Path) -> Path:
    """Two tiny datasets with uniform-noise images: varied features keep BatchNorm conditioned."""
    rng = np.random.default_rng(0)
    for seed, (key, classes) in enumerate(CLASSES.items()):
        folder = make_dataset(root, key, classes, seed=seed)
        for path in sorted((folder / "images").glob("*.png")):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return root


def read_counts(prefix: Path) -> dict[str, list[str]]:
    return {p.suffix: p.read_text().splitlines() for p in prefix.parent.glob(prefix.name + ".*")}


def test_two_processes_match_one(tmp_path):
    experiment = spec(tmp_path / "experiment.json")
    datasets = noisy_datasets(tmp_path / "datasets")
    script = tmp_path / "counting_mdseg.py"
    script.write_text(COUNTING_MDSEG)
    args = ["train", "--experiment", str(experiment), "--datasets-dir", str(datasets), "--out"]
    env = {"PATH": str(BIN), "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, str(script), *args, str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env={**env, "READS": str(tmp_path / "one_reads")},
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run(
        [str(BIN / "torchrun"), *TORCHRUN, str(script), *args, str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env={**env, "READS": str(tmp_path / "two_reads")},
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one_reads = read_counts(tmp_path / "one_reads")
    two_reads = read_counts(tmp_path / "two_reads")
    assert len(one_reads[".0"]) == 4 * STEPS  # the global batch, each step
    assert sorted(two_reads) == [".0", ".1"]
    assert [len(r) for r in two_reads.values()] == [2 * STEPS, 2 * STEPS]  # global batch / 2
    assert sorted(two_reads[".0"] + two_reads[".1"]) == sorted(one_reads[".0"])
    one = torch.load(tmp_path / "one" / "model.pt", weights_only=False)["state_dict"]
    two = torch.load(tmp_path / "two" / "model.pt", weights_only=False)["state_dict"]
    torch.manual_seed(0)
    init = build_model(MultiCE(CLASSES), "hrnet_w18_small_v2").state_dict()
    assert one.keys() == two.keys() == init.keys()
    floats = [k for k, v in one.items() if v.is_floating_point() and "running" not in k]
    update_one = torch.cat([(one[k] - init[k]).flatten() for k in floats])
    update_two = torch.cat([(two[k] - init[k]).flatten() for k in floats])
    assert ((update_two - update_one).norm() / update_one.norm()).item() < 1e-8
    worst = max(
        ((two[k] - one[k]).norm() / (one[k] - init[k]).norm()).item()
        for k in floats
        if not torch.equal(one[k], init[k])
    )
    assert worst < 1e-7, worst
    log_one = (tmp_path / "one" / "train_log.csv").read_text().splitlines()
    log_two = (tmp_path / "two" / "train_log.csv").read_text().splitlines()
    assert len(log_one) == len(log_two) == STEPS + 1


def test_global_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(3)
    ours = GlobalBatchNorm(3)
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(ours(x), plain(x))
    torch.testing.assert_close(ours.running_var, plain.running_var)
