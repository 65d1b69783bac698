"""The workflow end to end on experiments/tiny.yaml, twice, in scratch folders."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
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


@pytest.mark.workflow
def test_a_gpu_count_change_alone_retrains_nothing(two_runs):
    """The GPU count reaches the job as its allocation (mdseg launch), not as a rule parameter."""
    for change in ("set=cluster.gpus=4", "cluster={gpus: 8, nodes: 2}"):
        proc = run_tiny(two_runs[0], "-n", "--config", change)
        assert proc.returncode == 0, proc.stderr[-3000:]
        jobs = set(re.findall(r"^(?:local)?rule (\w+):$", proc.stdout, flags=re.M))
        # the resolved config records the new count, and the tables read it; no model changes
        assert jobs <= {"resolved_config", "tables", "report_summary", "all"}, proc.stdout[-3000:]


@pytest.fixture(scope="module")
def report_html(two_runs) -> Path:
    """Snakemake's own report of the first tiny run, built after it."""
    proc = run_tiny(two_runs[0], "--report", "results/report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return two_runs[0] / "results" / "report.html"


def report_check(html: Path, results: Path, screenshot: Path) -> subprocess.CompletedProcess:
    """CI's browser check of the report (.ci/report_check.py)."""
    return subprocess.run(
        [
            *(sys.executable, str(ROOT / ".ci" / "report_check.py"), str(html)),
            *("--results", str(results), "--screenshot", str(screenshot)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium; CI installs it)",
)


@pytest.mark.workflow
def test_the_report_states_benchmark_config_versions_and_claims(two_runs, report_html):
    results = two_runs[0] / "results"
    versions = json.loads((results / "versions.json").read_text())
    assert sorted(versions) == ["mdseg", "python", "snakemake", "torch"]
    html = report_html.read_text()
    for fact in (
        "synthetic benchmark",
        f"torch {versions['torch']}",
        "Null BCE beats multi-dataset CE on the unseen datasets on average",
        '"results/config.json"',  # the resolved config, a report item
    ):
        assert fact in html, fact


@pytest.mark.workflow
def test_snakemake_report_prints_the_report_command_of_the_run(two_runs):
    proc = run_tiny(two_runs[0], "report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    options = ["-s", ROOT / "Snakefile", "-d", two_runs[0]]
    options += ["--configfile", ROOT / "experiments" / "tiny.yaml", "--cores", "2"]
    command = shlex.join(["snakemake", *map(str, options), "--report", "results/report.html"])
    assert f"The report: {command}" in proc.stderr


@pytest.mark.workflow
@needs_chromium
def test_the_report_opens_in_chromium_with_every_table_and_plot(two_runs, report_html, tmp_path):
    proc = report_check(report_html, two_runs[0] / "results", tmp_path / "report.png")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.workflow
@needs_chromium
def test_the_browser_check_fails_on_page_errors_and_missing_tables(two_runs, report_html, tmp_path):
    broken = tmp_path / "report.html"
    broken.write_text(
        report_html.read_text().replace(
            '<div id="app">', '<script>console.error("boom")</script><div id="app">', 1
        )
    )
    results = tmp_path / "results"
    shutil.copytree(two_runs[0] / "results" / "tables", results / "tables")
    shutil.copy(two_runs[0] / "results" / "config.json", results)
    (results / "tables" / "extra.csv").write_text("a\n1\n")
    proc = report_check(broken, results, tmp_path / "report.png")
    assert proc.returncode == 1
    assert "console.error: boom" in proc.stderr
    assert "extra.csv: not in the report" in proc.stderr
