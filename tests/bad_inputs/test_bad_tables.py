"""Bad inputs of ``mdseg tables``: its config, evaluation results and training logs.

The tables of the last good run (here one stand-in file) must survive a refused run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_tables import CFG

RUN = "single-hrnet_w18_small_v2-C"
RESULT = {
    "experiment": RUN,
    "dataset": "kitti",
    "miou": 20.0,
    "backbone_init": "random",
    "source": "synthetic",
}


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Any]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CFG))
    result = tmp_path / "eval" / RUN / "kitti.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps(RESULT))
    log = tmp_path / "models" / RUN / "train_log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("step,loss,lr,seconds\n1,2.0,0.1,0.5\n")
    out = tmp_path / "tables"
    out.mkdir()
    old = out / "uniseg_table1.csv"
    old.write_text("the last good run's table\n")
    argv = ["tables", "--config", config, "--eval-dir", tmp_path / "eval"]
    argv += ["--datasets-dir", tmp_path / "datasets", "--models-dir", tmp_path / "models"]
    argv += ["--out", out]
    return {"argv": argv, "config": config, "result": result, "log": log, "old": old}


def test_config_that_is_not_json(refused, tables):
    tables["config"].write_text("benchmark: synthetic\n")
    refused(tables["argv"], tables["config"], "not valid JSON", untouched=[tables["old"]])


def test_config_missing(refused, tables):
    tables["config"].unlink()
    refused(tables["argv"], tables["config"], untouched=[tables["old"]])


def test_result_that_is_not_json(refused, tables):
    tables["result"].write_text('{"experiment": ')
    refused(tables["argv"], tables["result"], "not valid JSON", untouched=[tables["old"]])


def test_result_without_its_score(refused, tables):
    tables["result"].write_text(json.dumps({k: v for k, v in RESULT.items() if k != "miou"}))
    refused(tables["argv"], tables["result"], "'miou'", "rerun", untouched=[tables["old"]])


def test_result_of_an_experiment_id_that_does_not_parse(refused, tables):
    tables["result"].write_text(json.dumps({**RESULT, "experiment": "single-C"}))
    refused(tables["argv"], tables["result"], "'single-C'", untouched=[tables["old"]])


def test_training_log_that_is_empty(refused, tables):
    tables["log"].write_text("")
    refused(tables["argv"], tables["log"], "a CSV table", untouched=[tables["old"]])


def test_relations_table_that_is_damaged(refused, tables):
    relations = tables["log"].parents[1] / "cr_bce-hrnet_w18_small_v2-C+I+B+M" / "relations.csv"
    relations.parent.mkdir()
    relations.write_bytes(b"")
    refused(tables["argv"], relations, "relations rule", untouched=[tables["old"]])
