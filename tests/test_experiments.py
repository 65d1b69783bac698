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


def cr_bce_entries(**cr: object) -> list[dict]:
    grid = {"backbones": ["hrnet_w18_small_v2"], "train": ["C+I+B+M", "C+I+B"]}
    return [
        {"methods": ["cosine_bce"], **grid},
        {"methods": ["cr_bce"], **grid, **cr},
    ]


def test_cr_bce_fine_tunes_its_cosine_model_with_the_c_i_b_m_relations():
    exps = expand_experiments(
        {**BASE, "experiments": cr_bce_entries(init="cosine_bce", relations="C+I+B+M")}
    )
    for train in ("C+I+B+M", "C+I+B"):
        run = exps[f"cr_bce-hrnet_w18_small_v2-{train}"]
        assert run["init"] == f"cosine_bce-hrnet_w18_small_v2-{train}"
        assert run["relations"] == "cosine_bce-hrnet_w18_small_v2-C+I+B+M"
    assert "init" not in exps["cosine_bce-hrnet_w18_small_v2-C+I+B"]


def test_cr_bce_sources_are_checked():
    with pytest.raises(ValueError, match=r"needs \['init', 'relations'\]"):
        expand_experiments({**BASE, "experiments": cr_bce_entries()})
    in_run = expand_experiments(
        {**BASE, "experiments": cr_bce_entries(method_options={"schedule": "in_run"})}
    )
    assert "relations" not in in_run["cr_bce-hrnet_w18_small_v2-C+I+B"]
    with pytest.raises(ValueError, match="do not cover the datasets of C\\+I\\+B\\+M"):
        expand_experiments(
            {**BASE, "experiments": cr_bce_entries(init="cosine_bce", relations="C+I+B")}
        )
    with pytest.raises(ValueError, match="not an experiment"):
        expand_experiments(
            {**BASE, "experiments": cr_bce_entries(init="null_bce", relations="C+I+B+M")}
        )
    with pytest.raises(ValueError, match="set init"):
        expand_experiments({**BASE, "experiments": cr_bce_entries(relations="C+I+B+M")})
