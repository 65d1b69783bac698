import pytest

from mdseg.experiments import expand_experiments, parse_train_set

BASE = {
    "backbones": {"hrnet_w18_small_v2": {"weights": None}},
    "datasets": {"evaluate": ["kitti"]},
    "training": {"iterations": 10, "lr": 0.1},
}


def test_grid_expands_to_ids():
    cfg = {
        **BASE,
        "experiments": [
            {"methods": ["single"], "backbones": ["hrnet_w18_small_v2"], "train": ["C", "M"]},
            {
                "methods": ["multi_ce"],
                "backbones": ["hrnet_w18_small_v2"],
                "train": ["C+I+B+M"],
                "training": {"lr": 0.5},
            },
        ],
    }
    exps = expand_experiments(cfg)
    assert sorted(exps) == [
        "multi_ce-hrnet_w18_small_v2-C+I+B+M",
        "single-hrnet_w18_small_v2-C",
        "single-hrnet_w18_small_v2-M",
    ]
    multi = exps["multi_ce-hrnet_w18_small_v2-C+I+B+M"]
    assert multi["train"] == ["cityscapes", "idd", "bdd", "mapillary"]
    assert multi["training"] == {"iterations": 10, "lr": 0.5}
    assert multi["evaluate"] == ["cityscapes", "idd", "bdd", "mapillary", "kitti"]


def test_unknown_names_are_reported():
    with pytest.raises(KeyError, match="unknown dataset code 'Z'"):
        parse_train_set("C+Z")
    cfg = {**BASE, "experiments": [{"methods": ["nope"], "backbones": ["x"], "train": ["C"]}]}
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        expand_experiments(cfg)


def test_duplicate_experiment_is_an_error():
    entry = {"methods": ["single"], "backbones": ["hrnet_w18_small_v2"], "train": ["C"]}
    with pytest.raises(ValueError, match="already defined"):
        expand_experiments({**BASE, "experiments": [entry, entry]})
