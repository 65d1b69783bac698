import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config

from mdseg.tables.build import Context, build_tables, fill_ours
from mdseg.tables.reference import load_reference
from mdseg.tables.results import Results, load_results, train_set

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

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
    # WildDash v1 (Tables 1-2) and WildDash 2 (Table 4) are different datasets
    for ds, v in {"kitti": 40.0, "wilddash": 30.0, "wilddash2": 33.0, "camvid": 50.0}.items():
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
    # the WildDash column reads the original WildDash, not WildDash 2
    assert row.loc[("C+I+B+M", "multi_ce", "wilddash"), "ours"] == 30.0
    assert "wilddash2" not in set(table.dataset)
    # single-best: the best of the UniSeg single-dataset models per dataset (S is not one)
    assert row.loc[("single", "single_best", "kitti"), "ours"] == 25.0
    assert row.loc[("single", "single_best", "kitti"), "ours_experiments"].endswith("-M")
    assert row.loc[("single", "single_best", "camvid"), "ours"] == 35.0
    # a mean needs every part: the WildDash single-best is missing
    assert np.isnan(row.loc[("single", "single_best", "mean"), "ours"])
    # runs we did not do stay empty
    assert np.isnan(row.loc[("C+I+B", "null_bce", "kitti"), "ours"])


def test_misprinted_means_are_flagged(results, tmp_path):
    table = fill_ours(
        "uniseg_table1", load_reference("uniseg_table1"), Context(results, CFG, tmp_path)
    )
    flagged = table[table.note.str.startswith("printed Mean")]
    assert sorted(zip(flagged.train_datasets, flagged.method, strict=True)) == [
        ("C+I+B", "multi_ce"),
        ("C+I+B", "null_bce"),
        ("I+B+M", "multi_ce"),
    ]
    assert "51.6" in flagged.iloc[0].note
    # the C+I+B C-R BCE row (N/A in the paper) is ours only, and says so
    ours_only = table[table.note.str.startswith("ours only")]
    assert set(zip(ours_only.train_datasets, ours_only.method, strict=True)) == {
        ("C+I+B", "cr_bce")
    }
    assert len(ours_only) == 4 and ours_only.paper.isna().all()


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
    assert out / "curves" / "single-hrnet_w18_small_v2-C.png" in written
    for path in written:
        assert path.stat().st_size > 0
    t4 = pd.read_csv(out / "uniseg_table4.csv")
    assert set(t4[t4.metric != "class_miou"].note) == {"needs the WildDash 2 benchmark server"}
    for path in out.glob("*_table*.csv"):
        frame = pd.read_csv(path)
        assert {"paper", "ours", "benchmark"} <= set(frame.columns), path.name
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims.columns) == [
        "paper",
        "claim",
        "verdict",
        "gap_mean",
        "gap_std",
        "gap_se",
        "seeds",
        "rule",
        "converged",
        "figures",
        "benchmark",
    ]
    assert len(claims) == 9 and set(claims.verdict) == {"not run"}
    assert "claims.png" in names
    recovery = pd.read_csv(out / "taxonomy_recovery.csv")
    assert {"method", "precision", "recall", "f1"} <= set(recovery.columns)


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


def _write_run(models_dir, experiment, train, files):
    run = models_dir / experiment
    run.mkdir(parents=True)
    (run / "experiment.json").write_text(json.dumps({"id": experiment, "train": train}))
    for name, text in files.items():
        (run / name).write_text(text)


def test_claims_verdicts_from_results(results, tmp_path):
    from mdseg.tables.claims import check_claims

    models = tmp_path / "models"
    w18 = "hrnet_w18_small_v2"
    for ds, v in {"kitti": 45.0, "wilddash": 28.0, "camvid": 50.0}.items():
        write_eval(tmp_path, f"null_bce-{w18}-C+I+B+M", ds, v)
    _write_run(
        models,
        f"cr_bce-{w18}-C+I+B+M",
        ["cityscapes", "mapillary"],
        {
            "relations.csv": "dataset,class,related_dataset,related_class,score,tau\n"
            "mapillary,bicyclist,cityscapes,rider,0.61,0.48\n"
        },
    )
    claims = check_claims(Results(load_results(tmp_path)), models).set_index("claim")
    null = claims.loc["Null BCE beats multi-dataset CE on the unseen datasets on average"]
    # null_bce mean (45 + 28 + 50) / 3 = 41.0 vs multi_ce (40 + 30 + 50) / 3 = 40.0
    assert null.verdict == "holds" and "null_bce 41.00 vs multi_ce 40.00" in null.figures
    assert null.gap_mean == 1.0 and null.seeds == 1 and np.isnan(null.gap_se)
    assert "noise not measured" in null.rule
    cr = claims.loc["C-R BCE beats Null BCE on the unseen datasets on average"]
    assert cr.verdict == "not run" and cr.seeds == 0
    assert claims.loc["C-R BCE generates bicyclist → rider"].verdict == "holds"
    assert claims.loc["C-R BCE generates motorcyclist → rider"].verdict == "reversed"
    # the fixture's single models do not cover wilddash: no single-best to compare with
    single_best = "Multi-dataset training on C+I+B+M beats the single-best model on the unseen"
    assert claims.loc[single_best + " datasets"].verdict == "not run"
    # every run is one (seedless) seed: each row says it is a one-seed smoke run
    assert claims.rule.str.contains("one-seed smoke run").all()


def test_taxonomy_recovery_rows(tmp_path):
    from mdseg.tables.taxonomy_recovery import recovery_table

    data, models = tmp_path / "datasets", tmp_path / "models"
    truths = {
        "cityscapes": {"road": ["road", "lane_marking"], "rider": ["bicyclist"]},
        "mapillary": {
            "road": ["road"],
            "lane marking": ["lane_marking"],
            "bicyclist": ["bicyclist"],
        },
    }
    for key, labels in truths.items():
        (data / key).mkdir(parents=True)
        (data / key / "truth.json").write_text(json.dumps({"labels": labels}))
    taxonomy = {
        "unified": [
            {"id": 0, "labels": {"cityscapes": "road", "mapillary": "road"}, "name": "road"},
            {"id": 1, "labels": {"cityscapes": "road", "mapillary": "lane marking"}, "name": "l"},
            {"id": 2, "labels": {"cityscapes": "rider", "mapillary": "road"}, "name": "r"},
        ]
    }
    _write_run(models, "autouniseg-x-C+M", list(truths), {"taxonomy.json": json.dumps(taxonomy)})
    table = recovery_table(models, data).set_index("method")
    assert table.loc["autouniseg", "precision"] == round(2 / 3, 4)
    assert table.loc["autouniseg", "recall"] == round(2 / 3, 4)
    # equal names alone find road-road only: precision 1, recall 1/3
    assert table.loc["equal_names", "precision"] == 1.0
    assert table.loc["equal_names", "recall"] == round(1 / 3, 4)


def test_tableA1_merges_our_pairs(tmp_path):
    from mdseg.tables.build import multi_label_pairs

    models = tmp_path / "models"
    _write_run(
        models,
        "cr_bce-hrnet_w18_small_v2-C+I+B+M",
        ["cityscapes", "mapillary"],
        {
            "relations.csv": "dataset,class,related_dataset,related_class,score,tau\n"
            "mapillary,bike lane,cityscapes,road,0.7,0.5\n"
            "mapillary,bicyclist,cityscapes,road,0.6,0.5\n"
        },
    )
    ctx = Context(Results(load_results(tmp_path)), CFG, tmp_path, models)
    table = multi_label_pairs(load_reference("uniseg_tableA1"), ctx)
    pairs = table.set_index(["primary", "secondary"])
    assert pairs.loc[("bike lane", "road")].tolist()[:3] == [1, 1, 0.7]
    assert pairs.loc[("bicyclist", "road"), "paper"] == 0  # ours only
    assert pairs.loc[("catch basin", "road"), "ours"] == 0


def test_variants_are_separate_rows_and_feed_table3(tmp_path):
    experiment = "multi_head-hrnet_w18_small_v2-C+M+S+B+I+A+O"
    path = tmp_path / experiment / "kitti.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "experiment": experiment,
                "dataset": "kitti",
                "miou": 50.0,
                "miou_all_classes": 40.0,
                "variants": {"head_cityscapes": {"miou": 30.0, "miou_all_classes": 20.0}},
                "backbone_init": "random",
                "source": "synthetic",
            }
        )
    )
    res = Results(load_results(tmp_path))
    train = frozenset(["cityscapes", "mapillary", "sunrgbd", "bdd", "idd", "ade20k", "coco"])
    assert res.miou("multi_head", "hrnet_w18_small_v2", train, "kitti")[0] == 50.0
    head = res.miou("multi_head", "hrnet_w18_small_v2", train, "kitti", variant="head_cityscapes")
    assert head[0] == 30.0
    table = fill_ours(
        "autouniseg_table3", load_reference("autouniseg_table3"), Context(res, CFG, tmp_path)
    )
    row = table.set_index(["trained", "model", "eval_set"])
    # the cityscapes head's all-class mIoU; kitti is the only unseen set evaluated here
    assert row.loc[("cityscapes", "multi_head", "unseen_mean"), "ours"] == 20.0
    assert np.isnan(row.loc[("mapillary", "multi_head", "unseen_mean"), "ours"])


def test_uniseg_table4_reads_the_configured_backbone(results, tmp_path):
    ref = load_reference("uniseg_table4")
    cfg = {**CFG, "tables": {**CFG["tables"], "uniseg_table4_backbone": "hrnet_w18_small_v2"}}
    table = fill_ours("uniseg_table4", ref, Context(results, cfg, tmp_path))
    row = table.set_index(["method", "metric"])
    assert row.loc[("multi_ce", "class_miou"), "ours"] == 33.0  # the W18 run on wilddash2
    assert np.isnan(row.loc[("multi_ce", "negative_miou"), "ours"])
    # without the setting, the paper's HRNet-W48 rows look for W48 runs (none here)
    plain = fill_ours("uniseg_table4", ref, Context(results, CFG, tmp_path))
    assert plain.ours.isna().all()


def test_uniseg_config_fills_table4_from_w48_runs(tmp_path):
    """A dry run of experiments/uniseg.yaml evaluates WildDash 2 with the C+I+B+M HRNet-W48
    models; the config as Snakemake resolves it (config.yaml, then uniseg.yaml merged over it by
    ``update_config``) fills Table 4 from them on stub results, though W18 runs exist too."""
    command = [SNAKEMAKE, "--configfile", "experiments/uniseg.yaml", "-d", str(tmp_path / "run")]
    dry = subprocess.run([*command, "-n", "tables"], cwd=REPO, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    planned = set(re.findall(r"experiment=([^,\s]+), dataset=wilddash2\b", dry.stdout))
    assert planned and all("-hrnet_w48-C+I+B+M" in e for e in planned)
    assert {e.split("-")[0] for e in planned} >= {"multi_ce", "cr_bce"}
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((REPO / "experiments" / "uniseg.yaml").read_text()))
    assert cfg["tables"]["uniseg_table4_backbone"] == "hrnet_w48"
    eval_dir = tmp_path / "eval"
    for method, w18, w48 in (("multi_ce", 20.0, 36.5), ("cr_bce", 22.0, 41.0)):
        write_eval(eval_dir, f"{method}-hrnet_w18_small_v2-C+I+B+M", "wilddash2", w18)
        write_eval(eval_dir, f"{method}-hrnet_w48-C+I+B+M", "wilddash2", w48)
    build_tables(cfg, eval_dir, tmp_path / "datasets", tmp_path / "models", tmp_path / "t")
    t4 = pd.read_csv(tmp_path / "t" / "uniseg_table4.csv").set_index(["method", "metric"])
    assert t4.loc[("multi_ce", "class_miou"), "ours"] == 36.5
    assert t4.loc[("cr_bce", "class_miou"), "ours"] == 41.0
    assert t4.loc[("cr_bce", "class_miou"), "ours_experiments"] == "cr_bce-hrnet_w48-C+I+B+M"


W18 = "hrnet_w18_small_v2"


def test_seed_column_and_per_seed_results(tmp_path):
    write_eval(tmp_path, f"multi_ce-{W18}-C+I+B+M-s1", "kitti", 40.0)
    write_eval(tmp_path, f"multi_ce-{W18}-C+I+B+M-s0", "kitti", 42.0)
    write_eval(tmp_path, f"multi_ce-{W18}-C+I+B+M", "kitti", 44.0)
    res = Results(load_results(tmp_path))
    assert res.seeds() == [None, 0, 1]
    assert set(res.frame.method) == {"multi_ce"}  # the suffix is not part of the method
    assert res.for_seed(0).miou("multi_ce", W18, train_set("C+I+B+M"), "kitti")[0] == 42.0
    assert res.for_seed(None).frame.experiment.tolist() == [f"multi_ce-{W18}-C+I+B+M"]


def test_tables_average_over_seeds(tmp_path):
    """Two seeds: ours is the mean of the per-seed values, ours_std their sample std; a mean
    row is the mean over seeds of each seed's group mean."""
    for seed, values in ((0, (40.0, 30.0, 50.0)), (1, (44.0, 36.0, 50.0))):
        for ds, v in zip(("kitti", "wilddash", "camvid"), values, strict=True):
            write_eval(tmp_path, f"multi_ce-{W18}-C+I+B+M-s{seed}", ds, v)
    write_eval(tmp_path, f"null_bce-{W18}-C+I+B+M-s1", "kitti", 47.0)  # seed 1 only
    res = Results(load_results(tmp_path))
    table = fill_ours("uniseg_table1", load_reference("uniseg_table1"), Context(res, CFG, tmp_path))
    row = table.set_index(["train_datasets", "method", "dataset"])
    kitti = row.loc[("C+I+B+M", "multi_ce", "kitti")]
    # (40 + 44) / 2 = 42; std ddof 1 of {40, 44} = sqrt(8) = 2.83
    assert (kitti.ours, kitti.ours_std, kitti.ours_seeds) == (42.0, 2.83, 2)
    assert kitti.ours_experiments == f"multi_ce-{W18}-C+I+B+M-s0;multi_ce-{W18}-C+I+B+M-s1"
    wilddash = row.loc[("C+I+B+M", "multi_ce", "wilddash")]
    assert (wilddash.ours, wilddash.ours_std) == (33.0, 4.24)  # {30, 36}: sqrt(18)
    camvid = row.loc[("C+I+B+M", "multi_ce", "camvid")]
    assert (camvid.ours, camvid.ours_std) == (50.0, 0.0)
    # per-seed means 40.0 and 43.333: mean 41.67, std sqrt(2 * 1.6667^2) = 2.36
    mean = row.loc[("C+I+B+M", "multi_ce", "mean")]
    assert (mean.ours, mean.ours_std, mean.ours_seeds) == (41.67, 2.36, 2)
    # one seed had a value: no spread
    null = row.loc[("C+I+B+M", "null_bce", "kitti")]
    assert null.ours == 47.0 and np.isnan(null.ours_std) and null.ours_seeds == 1
    missing = row.loc[("C+I+B", "null_bce", "kitti")]
    assert np.isnan(missing.ours) and missing.ours_seeds == 0 and missing.ours_experiments == ""


@pytest.mark.parametrize(
    ("gaps", "verdict", "mean", "se"),
    [
        ([2.0, 3.0, 4.0], "holds", 3.0, 0.577),  # std 1, SE 1/sqrt(3); 3 > 1.155
        ([-2.0, -3.0, -4.0], "reversed", -3.0, 0.577),
        ([3.0, -1.0, 1.0], "within noise", 1.0, 1.155),  # std 2, SE 2/sqrt(3); 1 < 2.309
        ([1.0, 1.0], "holds", 1.0, 0.0),  # identical gaps: no spread
        ([0.5], "holds", 0.5, np.nan),  # one seed: the sign, no SE
        ([-0.5], "reversed", -0.5, np.nan),
        ([], "not run", np.nan, np.nan),
    ],
)
def test_gap_verdicts(gaps, verdict, mean, se):
    from mdseg.tables.claims import gap_verdict

    judged = gap_verdict(gaps)
    assert judged.verdict == verdict and judged.seeds == len(gaps)
    np.testing.assert_allclose([judged.mean, judged.se], [mean, se], atol=1e-3)
    if len(gaps) == 1:
        assert "noise not measured" in judged.rule


def test_claims_judged_on_paired_per_seed_gaps(tmp_path):
    """Null BCE vs CE over three seeds; the single-best claim takes each seed's smallest gap."""
    from mdseg.tables.claims import check_claims

    unseen = ("kitti", "wilddash", "camvid")
    # per-seed gaps null_bce - multi_ce: +3, -1, +1 (a noisy claim)
    for seed, gap in ((0, 3.0), (1, -1.0), (2, 1.0)):
        for ds in unseen:
            write_eval(tmp_path, f"multi_ce-{W18}-C+I+B+M-s{seed}", ds, 40.0)
            write_eval(tmp_path, f"null_bce-{W18}-C+I+B+M-s{seed}", ds, 40.0 + gap)
        # single models on every unseen set: C 38, M 41 - seed (the single-best)
        for code, base in (("C", 38.0), ("M", 41.0 - seed)):
            for ds in unseen:
                write_eval(tmp_path, f"single-{W18}-{code}-s{seed}", ds, base)
    claims = check_claims(Results(load_results(tmp_path)), tmp_path / "models")
    claims = claims.set_index("claim")
    null = claims.loc["Null BCE beats multi-dataset CE on the unseen datasets on average"]
    assert null.verdict == "within noise" and null.seeds == 3
    assert (null.gap_mean, null.gap_std, null.gap_se) == (1.0, 2.0, 1.155)
    assert "mean +1.00, 2 SE 2.31" in null.rule and "smoke" not in null.rule
    assert null.figures.startswith("s0: ") and " | s2: " in null.figures
    assert null.converged == "unknown"  # no summary.json
    # per seed: multi_ce 40 and null_bce 40 + gap vs single-best 41 - seed; smallest gap per seed
    # s0: min(40 - 41, 43 - 41) = -1; s1: min(40 - 40, 39 - 40) = -1; s2: min(1, 2) = 1
    single = claims.loc[
        "Multi-dataset training on C+I+B+M beats the single-best model on the unseen datasets"
    ]
    assert single.seeds == 3 and single.gap_mean == round(-1 / 3, 3)
    assert single.verdict == "within noise"  # std 1.155, SE 0.667


def test_relation_claim_over_seeds(tmp_path):
    from mdseg.tables.claims import check_claims

    header = "dataset,class,related_dataset,related_class,score,tau\n"
    pair = "mapillary,bicyclist,cityscapes,rider,0.61,0.48\n"
    models = tmp_path / "models"
    for seed, body in ((0, pair), (1, ""), (2, pair)):
        _write_run(models, f"cr_bce-{W18}-C+I+B+M-s{seed}", [], {"relations.csv": header + body})
    claims = check_claims(Results(load_results(tmp_path / "eval")), models).set_index("claim")
    bicyclist = claims.loc["C-R BCE generates bicyclist → rider"]
    assert bicyclist.verdict == "within noise" and bicyclist.seeds == 3
    assert "generated in 2 of 3" in bicyclist.rule and np.isnan(bicyclist.gap_mean)
    assert "s1: cr_bce" in bicyclist.figures and "not generated (no relations)" in bicyclist.figures
    assert claims.loc["C-R BCE generates motorcyclist → rider"].verdict == "reversed"
    # all seeds agreeing
    (models / f"cr_bce-{W18}-C+I+B+M-s1" / "relations.csv").write_text(header + pair)
    claims = check_claims(Results(load_results(tmp_path / "eval")), models).set_index("claim")
    assert claims.loc["C-R BCE generates bicyclist → rider"].verdict == "holds"


def test_converged_column_from_summaries(tmp_path):
    from mdseg.tables.claims import converged

    runs = ["a-b-C-s0", "a-b-C-s1", "a-b-C-s2"]
    for run, flag in zip(runs, (True, True, False), strict=True):
        path = tmp_path / run / "summary.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"steps": 10, "convergence": {"converged": flag}}))
    assert converged(runs[:2], tmp_path) == "all"
    assert converged(runs, tmp_path) == "not: a-b-C-s2"
    (tmp_path / "a-b-C-s3").mkdir()
    (tmp_path / "a-b-C-s3" / "summary.json").write_text(json.dumps({"steps": 10}))
    assert converged([*runs[:2], "a-b-C-s3"], tmp_path) == "unknown"  # no convergence written
    assert converged([*runs[:2], "a-b-C-s4"], tmp_path) == "unknown"  # no summary.json
    assert converged([], tmp_path) == ""


def test_claims_config_dry_runs_every_claim_over_three_seeds(tmp_path):
    """experiments/claims.yaml plans three seeds of every run the claims compare, and the
    claim checks find each comparison (stub results, one per planned run and dataset)."""
    configs = ["--configfiles", "config.yaml", "experiments/claims.yaml"]
    command = [SNAKEMAKE, *configs, "-d", str(tmp_path / "run")]
    dry = subprocess.run([*command, "-n", "tables"], cwd=REPO, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    planned = set(re.findall(r"results/eval/([^/\s,]+)/(\w+)\.json", dry.stdout))
    runs = {e for e, _ in planned}
    assert {e.rsplit("-", 1)[1] for e in runs} == {"s0", "s1", "s2"}
    methods = {e.split("-")[0] for e in runs}
    assert methods == {
        "single",
        "multi_ce",
        "null_bce",
        "cosine_bce",
        "cr_bce",
        "multi_head",
        "autouniseg",
    }
    eval_dir = tmp_path / "eval"
    for exp, dataset in planned:
        write_eval(eval_dir, exp, dataset, 30.0, 30.0)
    from mdseg.tables.claims import check_claims

    verdicts = check_claims(Results(load_results(eval_dir)), tmp_path / "models")
    gap_claims = verdicts[verdicts.gap_mean.notna()]
    assert len(gap_claims) == 7 and (gap_claims.seeds == 3).all()
