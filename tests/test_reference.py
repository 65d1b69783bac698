"""The transcribed paper tables: shapes, spot values and the paper's own internal consistency."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _reference() -> ModuleType:
    try:
        return importlib.import_module("mdseg.tables.reference")
    except ModuleNotFoundError:  # package not installed: run from the source tree
        sys.path.insert(0, str(SRC))
        return importlib.import_module("mdseg.tables.reference")


ref = _reference()
load = ref.load_reference

UNSEEN = ["kitti", "wilddash", "camvid", "mean"]  # Tables 1-2: the original WildDash
SETTINGS = ["C+I+B", "I+B+M", "C+I+M", "C+B+M", "C+I+B+M"]
UNISEG_METHODS = ["multi_ce", "null_bce", "cr_bce"]
W18, W48 = "hrnet_w18_small_v2", "hrnet_w48"


def value(df: pd.DataFrame, **where: str) -> float:
    mask = pd.Series(True, index=df.index)
    for column, wanted in where.items():
        mask &= df[column] == wanted
    hit = df.loc[mask, "paper"]
    assert len(hit) == 1, (where, len(hit))
    return float(hit.iloc[0])


def mean_gaps(df: pd.DataFrame, keys: list[str], column: str) -> pd.Series:
    """Printed Mean minus the mean of the printed row values, per row (rows with values only)."""
    wide = df.dropna(subset=["paper"]).pivot_table(
        index=keys, columns=column, values="paper", sort=False
    )
    return wide["mean"] - wide.drop(columns="mean").mean(axis=1)


def test_all_tables_listed_and_loadable():
    assert len(ref.REFERENCE_TABLES) == 10
    assert len(set(ref.REFERENCE_TABLES)) == 10
    for name in ref.REFERENCE_TABLES:
        assert len(load(name)) > 0


def test_unknown_name_lists_available():
    with pytest.raises(KeyError) as info:
        load("uniseg_table99")
    message = str(info.value)
    assert "uniseg_table99" in message
    for name in ref.REFERENCE_TABLES:
        assert name in message


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("uniseg_table1", (1 + 5 * 3) * 4),
        ("uniseg_table2", (1 + 5 * 3) * 4),
        ("uniseg_table3", 2 * 3 * 5),
        ("uniseg_table4", 5 * 3),
        ("uniseg_tableA1", 23),
        ("uniseg_tableA2", 2 * 3 * 5),
        ("uniseg_tableA3", 70),
        ("autouniseg_table1", 13),
        ("autouniseg_table2", 7 * 8),
        ("autouniseg_table3", 7 * 2 * 2 + 2),
    ],
)
def test_row_counts(name, rows):
    assert len(load(name)) == rows


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        (
            "uniseg_table1",
            ["train_datasets", "method", "method_label", "backbone", "dataset", "paper"],
        ),
        (
            "uniseg_table2",
            ["train_datasets", "method", "method_label", "backbone", "dataset", "paper"],
        ),
        ("uniseg_table3", ["method", "method_label", "backbone", "held_out", "paper"]),
        ("uniseg_table4", ["method", "method_label", "backbone", "metric", "paper"]),
        ("uniseg_tableA1", ["primary", "secondary"]),
        ("uniseg_tableA2", ["method", "method_label", "backbone", "dataset", "paper"]),
        ("uniseg_tableA3", ["class", "cityscapes", "bdd", "idd", "mapillary"]),
        ("autouniseg_table1", ["dataset", "domain", "role"]),
        (
            "autouniseg_table2",
            [
                "method",
                "method_label",
                "backbone",
                "venue",
                "label_space",
                "dataset",
                "paper",
                "footnote",
            ],
        ),
        ("autouniseg_table3", ["trained", "model", "eval_set", "paper"]),
    ],
)
def test_columns(name, columns):
    assert list(load(name).columns) == columns


@pytest.mark.parametrize(("name", "backbone"), [("uniseg_table1", W18), ("uniseg_table2", W48)])
def test_unseen_tables_layout(name, backbone):
    df = load(name)
    assert set(df["backbone"]) == {backbone}
    assert set(df["dataset"]) == set(UNSEEN)
    single = df[df["train_datasets"] == "single"]
    assert set(single["method"]) == {"single_best"}
    assert set(single["method_label"]) == {"Single-best (CE)"}
    for setting in SETTINGS:
        block = df[df["train_datasets"] == setting]
        assert sorted(block["method"]) == sorted(UNISEG_METHODS * 4)
    # the C+I+B C-R BCE row is N/A in the paper: present, with empty values; nothing else empty
    missing = df[df["paper"].isna()]
    assert len(missing) == 4
    assert set(missing["train_datasets"]) == {"C+I+B"}
    assert set(missing["method"]) == {"cr_bce"}
    assert set(missing["method_label"]) == {"UniSeg (C-R BCE)"}


def test_uniseg_spot_values():
    t1, t2 = load("uniseg_table1"), load("uniseg_table2")
    assert value(t1, train_datasets="C+I+B+M", method="cr_bce", dataset="kitti") == 58.9
    assert value(t1, train_datasets="single", method="single_best", dataset="mean") == 48.0
    assert value(t2, train_datasets="single", method="single_best", dataset="camvid") == 73.6
    assert value(t2, train_datasets="C+B+M", method="cr_bce", dataset="kitti") == 68.0
    t3 = load("uniseg_table3")
    assert value(t3, method="cr_bce", backbone=W48, held_out="cityscapes") == 65.8
    assert value(t3, method="multi_ce", backbone=W18, held_out="mean") == 49.4
    ta2 = load("uniseg_tableA2")
    assert value(ta2, method="multi_ce", backbone=W48, dataset="mapillary") == 46.4


def test_uniseg_table4():
    t4 = load("uniseg_table4")
    assert value(t4, method="cr_bce", metric="meta_avg") == 39.4
    assert value(t4, method="mseg", metric="negative_miou") == 24.7
    assert value(t4, method="yin_et_al", backbone="Segformer-B5", metric="meta_avg") == 37.9
    assert set(t4["metric"]) == {"class_miou", "negative_miou", "meta_avg"}
    # Yin et al. print "-" for class and negative mIoU
    missing = t4[t4["paper"].isna()]
    assert set(missing["method"]) == {"yin_et_al"}
    assert set(missing["metric"]) == {"class_miou", "negative_miou"}
    assert len(missing) == 4


def test_uniseg_table1_misprinted_means():
    gaps = mean_gaps(load("uniseg_table1"), ["train_datasets", "method"], "dataset")
    off = {key for key, gap in gaps.items() if abs(gap) > 0.05 + 1e-9}
    assert off == {("C+I+B", "multi_ce"), ("C+I+B", "null_bce"), ("I+B+M", "multi_ce")}


@pytest.mark.parametrize(
    ("name", "keys", "column"),
    [
        ("uniseg_table2", ["train_datasets", "method"], "dataset"),
        ("uniseg_table3", ["method", "backbone"], "held_out"),
        ("uniseg_tableA2", ["method", "backbone"], "dataset"),
    ],
)
def test_other_uniseg_means_consistent(name, keys, column):
    gaps = mean_gaps(load(name), keys, column)
    assert (gaps.abs() <= 0.05 + 1e-9).all(), gaps[gaps.abs() > 0.05 + 1e-9]


def test_tableA1_pairs():
    a1 = load("uniseg_tableA1")
    pairs = list(zip(a1["primary"], a1["secondary"], strict=True))
    assert len(pairs) == 23
    assert len(set(pairs)) == 23
    assert ("bicyclist", "rider") in pairs
    assert ("motorcyclist", "rider") in pairs
    assert ("bike lane", "road") in pairs
    assert ("trailer", "truck") in pairs
    assert all(p == p.lower() and s == s.lower() for p, s in pairs)


def test_tableA3_union():
    a3 = load("uniseg_tableA3")
    assert a3["class"].is_unique
    assert len(a3) == 70
    columns = ["cityscapes", "bdd", "idd", "mapillary"]
    assert set(a3[columns].stack().unique()) <= {0, 1}
    assert a3[columns].sum().tolist() == [19, 19, 26, 65]
    assert (a3[columns].sum(axis=1) >= 1).all()
    # Cityscapes and BDD share the same 19 classes
    assert (a3["cityscapes"] == a3["bdd"]).all()
    row = a3.set_index("class")
    assert row.loc["rider", columns].tolist() == [1, 1, 1, 0]
    assert row.loc["train", columns].tolist() == [1, 1, 0, 0]
    assert row.loc["terrain", columns].tolist() == [1, 1, 0, 1]
    assert row.loc["autorickshaw", columns].tolist() == [0, 0, 1, 0]
    assert row.loc["traffic sign", columns].tolist() == [1, 1, 1, 1]
    assert row.loc["traffic sign (back)", columns].tolist() == [0, 0, 0, 1]


def test_tableA1_labels_are_in_the_unified_space():
    classes = set(load("uniseg_tableA3")["class"])
    a1 = load("uniseg_tableA1")
    assert set(a1["primary"]) <= classes
    assert set(a1["secondary"]) <= classes


def test_autouniseg_table1():
    t1 = load("autouniseg_table1").set_index("dataset")
    assert t1["role"].value_counts().to_dict() == {"train": 7, "unseen": 6}
    train = set(t1.index[t1["role"] == "train"])
    assert train == {"cityscapes", "mapillary", "bdd", "idd", "sunrgbd", "ade20k", "coco"}
    assert t1.loc["scannet"].tolist() == ["indoor", "unseen"]
    assert t1.loc["voc"].tolist() == ["everyday", "unseen"]
    assert t1.loc["context"].tolist() == ["everyday", "unseen"]
    for key in ("wilddash2", "kitti", "camvid"):
        assert t1.loc[key].tolist() == ["driving", "unseen"]


def test_autouniseg_table2_values_and_footnotes():
    t2 = load("autouniseg_table2")
    assert value(t2, method="autouniseg", dataset="mean") == 56.4
    assert value(t2, method="mseg", dataset="mapillary") == 51.9
    assert value(t2, method="mseg", dataset="ade20k") == 42.8
    assert value(t2, method="mseg", dataset="coco") == 48.6
    assert value(t2, method="nll_plus", dataset="idd") == 54.4
    assert value(t2, method="uni_nll_plus", dataset="idd") == 56.7
    assert value(t2, method="auto_univ", dataset="idd") == 55.2
    assert t2["paper"].notna().all()
    marked = t2[t2["footnote"].notna()]
    assert set(zip(marked["method"], marked["dataset"], strict=True)) == {
        ("mseg", "mapillary"),
        ("mseg", "ade20k"),
        ("mseg", "coco"),
        ("nll_plus", "idd"),
        ("uni_nll_plus", "idd"),
        ("auto_univ", "idd"),
    }
    assert all(note.startswith("2:") for note in marked.loc[marked["method"] == "mseg", "footnote"])
    assert all(note.startswith("3:") for note in marked.loc[marked["dataset"] == "idd", "footnote"])
    spaces = t2.groupby("method")["label_space"].first().to_dict()
    assert spaces == {
        "mseg": "MR",
        "nll_plus": "MC",
        "uni_nll_plus": "MC",
        "single": "DS",
        "multi_head": "DS",
        "auto_univ": "Auto",
        "autouniseg": "Auto",
    }


def test_autouniseg_table2_means_match_rows():
    gaps = mean_gaps(load("autouniseg_table2"), ["method"], "dataset")
    assert len(gaps) == 7
    assert (gaps.abs() <= 0.1).all(), gaps


def test_autouniseg_table3():
    t3 = load("autouniseg_table3")
    assert value(t3, trained="all", model="autouniseg", eval_set="train_mean") == 56.4
    assert value(t3, trained="all", model="autouniseg", eval_set="unseen_mean") == 56.9
    assert value(t3, trained="coco", model="multi_head", eval_set="unseen_mean") == 53.2
    assert value(t3, trained="sunrgbd", model="single", eval_set="train_mean") == 12.9
    # Ours' training-set mean is Table 2's Ours Mean
    t2 = load("autouniseg_table2")
    assert math.isclose(
        value(t3, trained="all", model="autouniseg", eval_set="train_mean"),
        value(t2, method="autouniseg", dataset="mean"),
    )
