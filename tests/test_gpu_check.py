"""The GPU check runs end to end at toy sizes on the CPU (``--smoke``), so the script a GPU
session relies on cannot rot between sessions that have a GPU."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_writes_its_report_and_throughput_rows(tmp_path):
    script = str(ROOT / "scripts" / "gpu_check.py")
    subprocess.run(
        [sys.executable, script, "--smoke", "--workers", "1", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert len(report["steps"]) == 8  # 2 crops x 2 batches x fp32/bf16
    assert all(row["s_per_it"] > 0 for row in report["steps"])
    assert [row["workers"] for row in report["input"]] == [0, 1]
    assert all(0 <= row["data_share"] <= 1 for row in report["input"])
    assert [row["shape"] for row in report["eval"]] == [[1, 300, 400]] * 2
    with open(tmp_path / "throughput.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and {r["precision"] for r in rows} == {"fp32", "bf16"}
    assert all(r["source"].startswith("measured: scripts/gpu_check.py") for r in rows)
