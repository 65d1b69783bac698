import re
import subprocess
import sys

import pytest

from mdseg.experiments import (
    expand_experiments,
    experiment_id,
    parse_experiment_id,
    parse_train_set,
)

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
    with pytest.raises(ValueError, match=r"experiments\[0\]: unknown method 'nope'"):
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


def test_seeds_expand_to_one_suffixed_run_each_of_the_same_seed_sources():
    seeds = {"seeds": [0, 2]}
    entries = cr_bce_entries(init="cosine_bce", relations="C+I+B+M")
    exps = expand_experiments(
        {**BASE, "experiments": [{**entries[0], **seeds}, {**entries[1], **seeds}]}
    )
    assert sorted(exps) == sorted(
        f"{m}-hrnet_w18_small_v2-{t}-s{s}"
        for m in ("cosine_bce", "cr_bce")
        for t in ("C+I+B+M", "C+I+B")
        for s in (0, 2)
    )
    run = exps["cr_bce-hrnet_w18_small_v2-C+I+B-s2"]
    assert run["training"] == {"iterations": 10, "lr": 0.1, "seed": 2}
    assert run["init"] == "cosine_bce-hrnet_w18_small_v2-C+I+B-s2"
    assert run["relations"] == "cosine_bce-hrnet_w18_small_v2-C+I+B+M-s2"


def test_seedless_entry_keeps_its_id_and_config_seed():
    entry = {"methods": ["single"], "backbones": ["hrnet_w18_small_v2"], "train": ["C"]}
    config = {**BASE, "training": {**BASE["training"], "seed": 7}}
    seeded = {**entry, "seeds": [1]}
    exps = expand_experiments({**config, "experiments": [entry, seeded]})
    assert exps["single-hrnet_w18_small_v2-C"]["training"]["seed"] == 7
    assert exps["single-hrnet_w18_small_v2-C-s1"]["training"]["seed"] == 1


def test_seeded_runs_need_sources_of_their_seed():
    cosine, cr = cr_bce_entries(init="cosine_bce", relations="C+I+B+M")
    message = (
        r"its init run cosine_bce-hrnet_w18_small_v2-C\+I\+B\+M-s1 is not an experiment "
        r"\(a seeded run's sources are runs of its seed\)"
    )
    with pytest.raises(ValueError, match=message):
        expand_experiments(
            {**BASE, "experiments": [{**cosine, "seeds": [0]}, {**cr, "seeds": [1]}]}
        )


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([], r"experiments\[1\]\.seeds: expected a non-empty list"),
        ([0, 1, 0], r"experiments\[1\]\.seeds: \[0, 1, 0\] repeats a seed"),
        ([0, "1"], r"experiments\[1\]\.seeds: expected integers >= 0, got '1'"),
        ([True], r"experiments\[1\]\.seeds: expected integers >= 0, got True"),
        ([-1], r"experiments\[1\]\.seeds: expected integers >= 0, got -1"),
    ],
)
def test_bad_seeds_name_the_entry(seeds, message):
    entry = {"methods": ["single"], "backbones": ["hrnet_w18_small_v2"], "train": ["C"]}
    with pytest.raises(ValueError, match=message):
        expand_experiments({**BASE, "experiments": [entry, {**entry, "seeds": seeds}]})


def test_seeds_and_training_seed_together_is_an_error():
    entry = {
        "methods": ["single"],
        "backbones": ["hrnet_w18_small_v2"],
        "train": ["C"],
        "seeds": [0, 1],
        "training": {"seed": 3},
    }
    with pytest.raises(ValueError, match=r"experiments\[0\]: set seeds or training.seed"):
        expand_experiments({**BASE, "experiments": [entry]})


def test_seeded_ids_stay_unique_across_entries():
    entry = {"methods": ["single"], "backbones": ["hrnet_w18_small_v2"], "train": ["C", "M"]}
    with pytest.raises(
        ValueError, match=r"experiments\[1\]: single-hrnet_w18_small_v2-C-s1 is already defined"
    ):
        expand_experiments(
            {**BASE, "experiments": [{**entry, "seeds": [0, 1]}, {**entry, "seeds": [1, 2]}]}
        )


@pytest.mark.parametrize(
    ("exp_id", "parsed"),
    [
        (
            "multi_ce-hrnet_w18_small_v2-C+I+B+M",
            ("multi_ce", "hrnet_w18_small_v2", "C+I+B+M", None),
        ),
        ("null_bce-hrnet_w48-C+I+B-s0", ("null_bce", "hrnet_w48", "C+I+B", 0)),
        ("single-hrnet_w18_small_v2-M-s12", ("single", "hrnet_w18_small_v2", "M", 12)),
    ],
)
def test_parse_experiment_id_inverts_experiment_id(exp_id, parsed):
    method, backbone, codes, seed = parsed
    train = parse_train_set(codes)
    assert parse_experiment_id(exp_id) == (method, backbone, train, seed)
    assert experiment_id(method, backbone, train, seed) == exp_id


@pytest.mark.parametrize(
    "exp_id", ["single-hrnet_w18_small_v2", "single-hrnet_w48-C-s01", "a-b-C-x1", "a-b-C-s1-s2"]
)
def test_malformed_ids_are_reported(exp_id):
    with pytest.raises(ValueError, match="expected <method>-<backbone>-<codes>\\[-s<seed>\\]"):
        parse_experiment_id(exp_id)


def test_the_parse_time_catalogue_matches_the_registries():
    """The workflow reads method and table facts without torch (mdseg.catalog, the schema)."""
    from mdseg.catalog import PLOTTED_TABLES, TEXT_FEATURE_METHODS
    from mdseg.experiments import _experiment_schema
    from mdseg.methods import METHODS
    from mdseg.models.backbones import BACKBONES
    from mdseg.tables.build import TABLES
    from mdseg.tables.reference import REFERENCE_TABLES

    schema = _experiment_schema()["properties"]
    assert set(schema["method"]["enum"]) == set(METHODS)
    assert {b for b in BACKBONES if re.fullmatch(schema["backbone"]["pattern"], b)} == set(
        BACKBONES
    )
    assert {m for m in METHODS if METHODS[m].needs_text_features} == TEXT_FEATURE_METHODS
    assert tuple(t for t in REFERENCE_TABLES if TABLES[t].row) == PLOTTED_TABLES


def test_the_workflow_parses_without_torch():
    code = (
        "import sys, mdseg.experiments, mdseg.cluster, mdseg.catalog, mdseg.tables.reference, "
        "mdseg.weights, mdseg.overrides, mdseg.datasets.real.download; "
        "print(sorted(m for m in ('torch', 'pandas', 'timm', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
