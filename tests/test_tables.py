import json

import numpy as np
import pandas as pd
import pytest

from mdseg.tables.build import Context, build_tables, fill_ours
from mdseg.tables.reference import load_reference
from mdseg.tables.results import Results, load_results

CFG = {
    "benchmark": "synthetic",
    "tables": {"autouniseg_backbone": "hrnet_w18_small_v2"},
    "backbones": {},
    "datasets": {"evaluate": []},
    "training": {},
    "experiments": [],
}


def write_eval(root, experiment, dataset, miou, miou_all=None):
    path = root / experiment / f"{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "experiment": experiment,
                "dataset": dataset,
                "miou": miou,
                "miou_all_classes": miou_all,
                "backbone_init": "random",
                "source": "synthetic",
            }
        )
    )


@pytest.fixture
def results(tmp_path):
    w18 = "hrnet_w18_small_v2"
    for ds, v in {"kitti": 40.0, "wilddash2": 30.0, "camvid": 50.0}.items():
        write_eval(tmp_path, f"multi_ce-{w18}-C+I+B+M", ds, v)
    write_eval(tmp_path, f"single-{w18}-C", "kitti", 20.0)
    write_eval(tmp_path, f"single-{w18}-M", "kitti", 25.0)
    write_eval(tmp_path, f"single-{w18}-C", "camvid", 35.0)
    write_eval(tmp_path, f"single-{w18}-S", "kitti", 90.0)  # not a UniSeg training set
    return Results(load_results(tmp_path))


def test_uniseg_table1_ours_and_means(results, tmp_path):
    table = fill_ours(
        "uniseg_table1", load_reference("uniseg_table1"), Context(results, CFG, tmp_path)
    )
    row = table.set_index(["train_datasets", "method", "dataset"])
    assert row.loc[("C+I+B+M", "multi_ce", "kitti"), "ours"] == 40.0
    assert row.loc[("C+I+B+M", "multi_ce", "mean"), "ours"] == 40.0
    assert row.loc[("C+I+B+M", "multi_ce", "kitti"), "paper"] == 48.8
    # single-best: the best of the UniSeg single-dataset models per dataset (S is not one)
    assert row.loc[("single", "single_best", "kitti"), "ours"] == 25.0
    assert row.loc[("single", "single_best", "kitti"), "ours_experiments"].endswith("-M")
    assert row.loc[("single", "single_best", "camvid"), "ours"] == 35.0
    # a mean needs every part: wilddash2 single-best is missing
    assert np.isnan(row.loc[("single", "single_best", "mean"), "ours"])
    # runs we did not do stay empty
    assert np.isnan(row.loc[("C+I+B", "null_bce", "kitti"), "ours"])


def test_misprinted_means_are_flagged(results, tmp_path):
    table = fill_ours(
        "uniseg_table1", load_reference("uniseg_table1"), Context(results, CFG, tmp_path)
    )
    flagged = table[table.note != ""]
    assert sorted(zip(flagged.train_datasets, flagged.method, strict=True)) == [
        ("C+I+B", "multi_ce"),
        ("C+I+B", "null_bce"),
        ("I+B+M", "multi_ce"),
    ]
    assert "51.6" in flagged.iloc[0].note


def test_build_tables_writes_every_table(results, tmp_path):
    eval_dir = tmp_path  # holds the fixture's eval JSONs
    out = tmp_path / "tables"
    log_dir = tmp_path / "models" / "single-hrnet_w18_small_v2-C"
    log_dir.mkdir(parents=True)
    (log_dir / "train_log.csv").write_text("step,loss,lr,seconds\n1,2.0,0.1,0.5\n2,1.5,0.1,1.0\n")
    written = build_tables(CFG, eval_dir, tmp_path / "datasets", tmp_path / "models", out)
    names = {p.name for p in written}
    assert "uniseg_table1.csv" in names and "uniseg_table1.png" in names
    assert "uniseg_tableA1.csv" in names and "uniseg_tableA1.png" not in names
    assert "training_curves.png" in names
    for path in written:
        assert path.stat().st_size > 0
    t4 = pd.read_csv(out / "uniseg_table4.csv")
    assert set(t4[t4.metric != "class_miou"].note) == {"needs the WildDash 2 benchmark server"}
    for path in out.glob("*.csv"):
        frame = pd.read_csv(path)
        assert {"paper", "ours", "benchmark"} <= set(frame.columns), path.name


def test_autouniseg_table3_uses_the_all_classes_protocol(tmp_path):
    w18 = "hrnet_w18_small_v2"
    write_eval(tmp_path, f"single-{w18}-S", "sunrgbd", 60.0, 60.0)
    write_eval(tmp_path, f"single-{w18}-S", "cityscapes", 90.0, 5.0)  # 2 shared classes
    write_eval(tmp_path, f"single-{w18}-S", "kitti", None, 0.0)  # nothing shared
    ctx = Context(Results(load_results(tmp_path)), CFG, tmp_path)
    table = fill_ours("autouniseg_table3", load_reference("autouniseg_table3"), ctx)
    row = table.set_index(["trained", "model", "eval_set"])
    assert row.loc[("sunrgbd", "single", "train_mean"), "ours"] == 32.5
    assert row.loc[("sunrgbd", "single", "unseen_mean"), "ours"] == 0.0
