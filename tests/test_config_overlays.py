"""config.yaml is the base; experiment files are overlays; command-line overrides keep types."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config

from mdseg.overrides import apply_overrides

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
BASE = yaml.safe_load((REPO / "config.yaml").read_text())
OVERLAYS = sorted((REPO / "experiments").glob("*.yaml"))


def overlaid(name: str) -> dict[str, Any]:
    """config.yaml, then the experiment file, merged as Snakemake merges ``--configfile``s."""
    config = copy.deepcopy(BASE)
    update_config(config, yaml.safe_load((REPO / "experiments" / name).read_text()))
    return config


def _restated(overlay: Any, base: Any, path: str = "") -> list[str]:
    if isinstance(overlay, dict) and isinstance(base, dict):
        return [
            p
            for key in overlay
            if key in base and key != "experiments"
            for p in _restated(overlay[key], base[key], f"{path}{key}.")
        ]
    return [path.rstrip(".")] if overlay == base else []


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda p: p.name)
def test_experiment_files_state_only_what_differs(path):
    assert _restated(yaml.safe_load(path.read_text()), BASE) == []


@pytest.mark.parametrize("path", OVERLAYS, ids=lambda p: p.name)
def test_an_experiment_file_replaces_the_experiment_list(path):
    own = yaml.safe_load(path.read_text())["experiments"]
    assert overlaid(path.name)["experiments"] == own
    assert own != BASE["experiments"]


def test_uniseg_table4_comes_from_w48_runs():
    config = overlaid("uniseg.yaml")
    assert config["tables"]["uniseg_table4_backbone"] == "hrnet_w48"
    assert config["training"]["optimizer"] == "sgd"  # its own value
    assert config["training"]["weight_decay"] == BASE["training"]["weight_decay"]  # inherited


def test_nested_override_strings_get_the_schema_types():
    config = copy.deepcopy(BASE)
    update_config(config, {"training": {"iterations": "1000", "lr": "0.02", "flip": "false"}})
    apply_overrides(config, SCHEMA)
    assert config["training"]["iterations"] == 1000
    assert config["training"]["lr"] == 0.02
    assert config["training"]["flip"] is False
    assert config["training"]["device"] == "auto"  # strings stay strings


def test_dotted_overrides_under_set():
    config = copy.deepcopy(BASE)
    config["set"] = "training.lr=0.03 training.iterations=7 cluster.gpus=8"
    apply_overrides(config, SCHEMA)
    assert "set" not in config
    assert (config["training"]["lr"], config["training"]["iterations"]) == (0.03, 7)
    assert config["cluster"] == {"gpus": 8}
    assert config["training"]["batch_size"] == BASE["training"]["batch_size"]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("training.lr", "is not key.path=value"),
        ("=3", "is not key.path=value"),
        ("training..lr=1", "is not key.path=value"),
        ("training.lr.max=1", "lr is not a section"),
    ],
)
def test_malformed_dotted_overrides(item, message):
    config = copy.deepcopy(BASE)
    config["set"] = item
    with pytest.raises(ValueError, match=message):
        apply_overrides(config, SCHEMA)


def test_a_value_of_the_wrong_type_stays_for_the_schema_to_name():
    config = copy.deepcopy(BASE)
    config["set"] = "training.iterations=many"
    apply_overrides(config, SCHEMA)
    assert config["training"]["iterations"] == "many"


@pytest.mark.workflow
def test_overrides_from_the_command_line_reach_the_resolved_config(tmp_path):
    command = [SNAKEMAKE, "results/config.json", "-c1", "-s", REPO / "Snakefile", "-d", tmp_path]
    command += ["--configfile", REPO / "config.yaml", "--config"]
    command += ["training={warmup_iterations: 3}", "set=training.lr=0.02 training.iterations=1000"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    training = json.loads((tmp_path / "results" / "config.json").read_text())["training"]
    got = (training["iterations"], training["lr"], training["warmup_iterations"])
    assert got == (1000, 0.02, 3)
