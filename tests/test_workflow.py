"""The workflow end to end on experiments/tiny.yaml, twice, in scratch folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def run_tiny(
    workdir: Path, *targets: str, overlays: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    """Snakemake on experiments/tiny.yaml plus ``overlays`` (later files win) in ``workdir``."""
    return subprocess.run(
        [
            SNAKEMAKE,
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(ROOT / "experiments" / "tiny.yaml"),
            *map(str, overlays),
            "--cores",
            "2",
            *targets,
        ],
        capture_output=True,
        text=True,
        # rules call the `mdseg` command installed beside this interpreter
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    dirs = []
    for name in ("run_a", "run_b"):
        workdir = tmp_path_factory.mktemp(name)
        proc = run_tiny(workdir)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        dirs.append(workdir)
    return dirs[0], dirs[1]


@pytest.mark.workflow
def test_tiny_workflow_writes_the_results_contract(two_runs):
    results = two_runs[0] / "results"
    manifest = json.loads((results / "datasets" / "cityscapes" / "manifest.json").read_text())
    assert manifest["source"] == "synthetic" and manifest["splits"]["train"]["count"] == 8
    assert (results / "datasets" / "cityscapes" / "truth.json").exists()
    assert (results / "labels" / "minilm" / "features.pt").exists()
    model_dir = results / "models" / "multi_ce-hrnet_w18_small_v2-C+M"
    log = pd.read_csv(model_dir / "train_log.csv")
    assert log.step.tolist() == [1, 2, 3, 4]
    assert not (model_dir / "checkpoint.pt").exists()
    evaluation = json.loads((results / "eval" / model_dir.name / "kitti.json").read_text())
    assert evaluation["images"] == 4 and evaluation["backbone_init"] == "random"
    assert set(evaluation["iou"]) == set(evaluation["classes"])
    assert sorted((results / "eval").iterdir()) == sorted(
        results / "eval" / e
        for e in ("multi_ce-hrnet_w18_small_v2-C+M", "single-hrnet_w18_small_v2-C")
    )
    table = pd.read_csv(results / "tables" / "uniseg_table1.csv")
    assert table.paper.notna().sum() == 60
    # tiny runs one single-dataset model (C) evaluated on KITTI: the only single-best cell
    single_c = json.loads(
        (results / "eval" / "single-hrnet_w18_small_v2-C" / "kitti.json").read_text()
    )
    filled = table[table.ours.notna()]
    assert filled[["method", "dataset"]].values.tolist() == [["single_best", "kitti"]]
    assert filled.ours.iloc[0] == round(single_c["miou"], 2)
    assert (results / "tables" / "uniseg_table1.png").stat().st_size > 10_000
    for rule in ("datasets/cityscapes", "models/single-hrnet_w18_small_v2-C/train", "tables"):
        assert (two_runs[0] / "benchmarks" / "out" / f"{rule}.tsv").exists()


@pytest.mark.workflow
def test_tiny_workflow_is_deterministic(two_runs):
    a, b = (d / "results" / "eval" for d in two_runs)
    files = sorted(p.relative_to(a) for p in a.rglob("*.json"))
    assert len(files) == 2 + 3  # single-C on C and kitti; multi_ce-C+M on C, M and kitti
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
