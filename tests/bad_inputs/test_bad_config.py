"""Bad workflow configs: ``snakemake -n`` refuses them before any job, naming the key or entry.

Snakemake prints its own error block (the schema's message, then where it was raised), so the
check differs from the ``mdseg`` commands' one line: non-zero exit, the culprit named, no
Python traceback into the library, and nothing written under ``results/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
W18 = "hrnet_w18_small_v2"


def refused_config(workdir: Path, overlay: dict[str, Any], *culprits: str) -> str:
    path = workdir / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    tiny = REPO / "experiments" / "tiny.yaml"
    done = subprocess.run(
        [SNAKEMAKE, "-n", "-s", REPO / "Snakefile", "-d", workdir, "--configfile", tiny, path],
        capture_output=True,
        text=True,
        check=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert "Traceback" not in text and f'File "{REPO / "src"}' not in text, text
    for culprit in culprits:
        assert culprit in text, f"{culprit} not named in:\n{text}"
    assert not (workdir / "results").exists()
    return text


def _entry(**fields: Any) -> dict[str, Any]:
    return {"methods": ["multi_ce"], "backbones": [W18], "train": ["C+M"], **fields}


@pytest.mark.workflow
def test_misspelled_top_level_key(tmp_path):
    refused_config(tmp_path, {"trainng": {"lr": 0.1}}, "'trainng' was unexpected")


@pytest.mark.workflow
def test_text_where_a_number_belongs(tmp_path):
    refused_config(
        tmp_path,
        {"training": {"iterations": "many"}},
        "config training.iterations: 'many' is not of type 'integer'",
    )


@pytest.mark.workflow
def test_signed_link_in_the_wrong_place_is_named_not_shown(tmp_path):
    link = "https://example.org/vistas.zip?Expires=1&Signature=SECRET-TOKEN-42"
    text = refused_config(
        tmp_path,
        {"real": {"mapillary": {"archives": link}}},
        "config real.mapillary.archives",
        "https://example.org/vistas.zip?<redacted>",
    )
    assert "SECRET-TOKEN-42" not in text


@pytest.mark.workflow
def test_unknown_evaluation_dataset(tmp_path):
    refused_config(tmp_path, {"datasets": {"evaluate": ["kitty"]}}, "'kitty' is not one of")


@pytest.mark.workflow
def test_unknown_dataset_code_in_an_experiment(tmp_path):
    refused_config(tmp_path, {"experiments": [_entry(train=["C+Q"])]}, "experiments[0]", "code 'Q'")


@pytest.mark.workflow
def test_seeds_beside_a_training_seed(tmp_path):
    entry = _entry(seeds=[0, 1], training={"seed": 3})
    refused_config(tmp_path, {"experiments": [entry]}, "experiments[0]", "seeds or training.seed")


@pytest.mark.workflow
def test_init_method_without_its_run(tmp_path):
    entry = _entry(methods=["cr_bce"], init="cosine_bce", relations="C+M")
    refused_config(
        tmp_path,
        {"experiments": [entry]},
        f"its init run cosine_bce-{W18}-C+M is not an experiment",
    )
