"""`mdseg plan`: the throughput table, step-time fallbacks and hand-computed plan rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from mdseg import plan
from mdseg.cli import main
from mdseg.cluster import settings
from mdseg.experiments import expand_experiments
from mdseg.models.backbones import BACKBONES

ROOT = Path(__file__).resolve().parents[1]
HEADER = ",".join(plan.COLUMNS)


def table_file(tmp_path, *rows: str):
    path = tmp_path / "throughput.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def one_row_table_path(tmp_path, seconds: float = 1.0) -> Path:
    return table_file(tmp_path, f"hrnet_w48,768,21,bf16,a100,{seconds},measured")


def one_row_table(tmp_path, seconds: float = 1.0) -> list[plan.Throughput]:
    return plan.read_table(one_row_table_path(tmp_path, seconds))


def experiment(iterations=300000, batch=84, train=7, sampling="balanced", crop=768):
    return {
        "id": "autouniseg-hrnet_w48-C+M+S+B+I+A+O",
        "backbone": "hrnet_w48",
        "train": [f"d{i}" for i in range(train)],
        "training": {
            "iterations": iterations,
            "batch_size": batch,
            "crop_size": crop,
            "sampling": sampling,
            "precision": "bf16",
        },
    }


CLUSTER = settings({"cluster": {"gpus": 4, "gpu_model": "a100"}})


def test_shipped_table_covers_the_paper_settings():
    table = plan.read_table()
    keys = {(r.backbone, r.crop, r.per_gpu_batch, r.precision, r.gpu) for r in table}
    # AutoUniSeg 84 / 4 GPUs, its single-dataset runs 12 / 4, UniSeg W48 32 / 4 and W18 16 / 4
    for backbone, crop, per_gpu in [
        ("hrnet_w48", 768, 21),
        ("hrnet_w48", 768, 3),
        ("hrnet_w48", 713, 8),
        ("hrnet_w18_small_v2", 713, 4),
    ]:
        assert (backbone, crop, per_gpu, "bf16", "a100") in keys
        assert (backbone, crop, per_gpu, "fp32", "a100") in keys
    assert {r.backbone for r in table} <= set(BACKBONES)
    assert all(r.source.startswith(("estimate:", "measured")) for r in table)


def test_exact_row_and_hand_computed_plan(tmp_path):
    table = one_row_table(tmp_path, seconds=1.0)
    row = plan.plan_experiment(experiment(), CLUSTER, table)
    # 300k steps x 1 s; a job trains 1440 min - 300 s - 600 s = 85500 s -> 4 jobs
    assert row.slurm_jobs == 4
    assert row.gpus == 4 and row.images_seen == 300000 * 84
    assert row.wall_hours == pytest.approx((300000 + 4 * 600) / 3600)  # 84.0 h
    assert row.gpu_hours == pytest.approx(4 * 84.0)
    assert row.note == "" and row.source == "measured"
    short = plan.plan_experiment(experiment(iterations=85500), CLUSTER, table)
    assert short.slurm_jobs == 1
    assert plan.plan_experiment(experiment(iterations=85501), CLUSTER, table).slurm_jobs == 2


def test_fallbacks_say_what_was_assumed(tmp_path):
    table = one_row_table(tmp_path, seconds=2.0)
    st = plan.step_time(table, "hrnet_w32", 768, 21, "bf16", "h100")
    assert st.seconds == 2.0
    assert "no figures for hrnet_w32: planned as hrnet_w48" in st.note
    assert "no figures for gpu h100: planned as a100" in st.note
    assert (
        "gpu_model unset: planned as a100"
        in plan.step_time(table, "hrnet_w48", 768, 21, "bf16", None).note
    )
    # half the crop side, a quarter of the pixels per GPU
    scaled = plan.step_time(table, "hrnet_w48", 384, 21, "bf16", "a100")
    assert scaled.seconds == pytest.approx(0.5)
    assert "scaled from hrnet_w48 768px x21 bf16 a100" in scaled.note
    # seven images per GPU instead of 21: a third
    assert plan.step_time(table, "hrnet_w48", 768, 7, "bf16", "a100").seconds == pytest.approx(
        2.0 / 3
    )


def test_precision_without_rows_is_planned_as_fp32(tmp_path):
    table = plan.read_table(
        table_file(tmp_path, "hrnet_w48,768,21,fp32,a100,3.0,x", "hrnet_w48,768,21,bf16,a100,1.0,y")
    )
    st = plan.step_time(table, "hrnet_w48", 768, 21, "fp16", "a100")
    assert st.seconds == 3.0 and "no figures for fp16: planned as fp32" in st.note
    assert plan.step_time(table, "hrnet_w48", 768, 21, "bf16", "a100").seconds == 1.0


def test_nearest_row_is_scaled(tmp_path):
    table = plan.read_table(
        table_file(tmp_path, "hrnet_w48,768,21,bf16,a100,1.0,a", "hrnet_w48,713,8,bf16,a100,0.5,b")
    )
    st = plan.step_time(table, "hrnet_w48", 713, 4, "bf16", "a100")
    assert st.seconds == pytest.approx(0.25) and st.source == "b"


def test_table_errors_name_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("backbone,crop\nhrnet_w48,768\n")
    with pytest.raises(ValueError, match=r"bad.csv: throughput table lacks column\(s\) per_gpu"):
        plan.read_table(bad)
    path = table_file(
        tmp_path, "hrnet_w48,768,21,bf16,a100,1.0,a", "hrnet_w48,big,21,bf16,a100,1,b"
    )
    with pytest.raises(ValueError, match=r"throughput.csv:3: crop and per_gpu_batch must be int"):
        plan.read_table(path)
    path = table_file(tmp_path, "hrnet_w48,768,21,bf16,a100,0,a")
    with pytest.raises(ValueError, match=r"throughput.csv:2: .* must be > 0"):
        plan.read_table(path)
    table = plan.read_table(table_file(tmp_path, "hrnet_w18,713,4,bf16,a100,1.0,a"))
    with pytest.raises(ValueError, match="no fp32 row on a100 for hrnet_w48 or hrnet_w48"):
        plan.step_time(table, "hrnet_w48", 713, 4, "fp32", "a100")


def test_batch_that_does_not_split_is_noted_and_runtime_checked(tmp_path):
    table = one_row_table(tmp_path)
    row = plan.plan_experiment(experiment(batch=70), CLUSTER, table)
    assert "batch_size 70 must split into 7 dataset block(s)" in row.note
    assert row.seconds_per_iteration == pytest.approx(70 / 84)  # 17.5 images per GPU
    with pytest.raises(ValueError, match="train_runtime 10 min leaves no training time"):
        plan.job_seconds(settings({"cluster": {"train_runtime": 10}}))


def test_cli_prints_and_writes_the_plan(tmp_path, capsys):
    config = {
        "cluster": {"gpus": 4, "throughput": str(one_row_table_path(tmp_path))},
        "backbones": {"hrnet_w48": {"weights": None}},
        "datasets": {"evaluate": []},
        "training": experiment()["training"] | {"iterations": 100000},
        "experiments": [
            {"methods": ["multi_head"], "backbones": ["hrnet_w48"], "train": ["C+M+S+B+I+A+O"]}
        ],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    out, text = tmp_path / "plan.csv", tmp_path / "plan.txt"
    assert (
        main(
            [
                "plan",
                "--config",
                str(tmp_path / "config.json"),
                "--out",
                str(out),
                "--text",
                str(text),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "multi_head-hrnet_w48-C+M+S+B+I+A+O" in printed
    assert "note: gpu_model unset: planned as a100" in printed
    assert text.read_text() == printed
    (row,) = list(csv.DictReader(out.open()))
    assert list(row) == list(plan.PLAN_COLUMNS)
    # 100k x 1 s = 2 jobs of 85500 s; 4 GPUs x (100000 + 2 x 600) s
    assert row["slurm_jobs"] == "2" and row["images_seen"] == str(100000 * 84)
    assert float(row["gpu_hours"]) == pytest.approx(4 * 101200 / 3600, abs=0.05)


def test_paper_configs_split_their_batches_over_their_gpus():
    for name in ("autouniseg", "uniseg"):
        config = yaml.safe_load((ROOT / "config.yaml").read_text())  # the overlay's base
        update_config(config, yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text()))
        cluster = settings(config)
        assert cluster["gpus"] == 4
        rows = plan.plan_rows(expand_experiments(config), cluster, plan.read_table())
        assert all(r.gpus == 4 for r in rows)
