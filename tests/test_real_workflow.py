"""``benchmark: real``: the tiny experiments run end to end on datasets in their native formats.

Small Cityscapes, Mapillary Vistas and KITTI copies are written in the official layouts under
``data_root/extracted`` with the marker a finished ``fetch_dataset`` leaves, so the workflow
converts them with ``mdseg prepare`` and trains, evaluates and tabulates on the results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_workflow import run_tiny

from mdseg.io import read_split_list

H, W = 40, 48
# native ids drawn for each dataset: Cityscapes labelIds (KITTI uses them too) and Mapillary's
CITYSCAPES_IDS = [0, 7, 8, 11, 21, 23, 24, 26]  # unlabeled, road, sidewalk, building, ...
MAPILLARY_IDS = [13, 15, 17, 19, 27, 30, 55, 65]  # road, sidewalk, building, person, sky, ...


def label_and_image(rng: np.random.Generator, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Four flat regions of native ids, each with its own colour in the image."""
    label = np.kron(rng.choice(ids, (2, 2)), np.ones((H // 2, W // 2), np.int64))
    image = np.stack([label * 5 % 256, label * 37 % 256, label * 91 % 256], axis=-1)
    return label.astype(np.uint8), image.astype(np.uint8)


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_cityscapes(root: Path, rng: np.random.Generator) -> None:
    for split, n in (("train", 6), ("val", 2)):
        for i in range(n):
            stem = f"aachen_{i:06d}_000019"
            label, image = label_and_image(rng, CITYSCAPES_IDS)
            save(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png", label)
            save(root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", image)


def write_mapillary(root: Path, rng: np.random.Generator) -> None:
    for split, n in (("training", 6), ("validation", 2)):
        for i in range(n):
            label, image = label_and_image(rng, MAPILLARY_IDS)
            save(root / split / "v1.2" / "labels" / f"m{i:03d}.png", label)
            save(root / split / "images" / f"m{i:03d}.jpg", image)


def write_kitti(root: Path, rng: np.random.Generator) -> None:
    for i in range(3):
        label, image = label_and_image(rng, CITYSCAPES_IDS)
        save(root / "training" / "semantic" / f"{i:06d}_10.png", label)
        save(root / "training" / "image_2" / f"{i:06d}_10.png", image)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    data = workdir / "data"
    for key, write in (
        ("cityscapes", write_cityscapes),
        ("mapillary", write_mapillary),
        ("kitti", write_kitti),
    ):
        extracted = data / "extracted" / key
        write(extracted, rng)
        (extracted / ".extracted").write_text("written by the test\n")
    overlay = workdir / "real.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "benchmark": "real",
                "data_root": str(data),
                "real": {"allow_incomplete": True, "jobs": 2},
            }
        )
    )
    proc = run_tiny(workdir, overlays=(overlay,))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir


@pytest.mark.workflow
def test_real_datasets_are_prepared_from_native_files(real_run):
    datasets = real_run / "results" / "datasets"
    manifest = json.loads((datasets / "cityscapes" / "manifest.json").read_text())
    assert manifest["source"] == "real" and manifest["official"]["complete"] is False
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {
        "train": 5,
        "holdout": 1,
        "val": 2,
    }
    assert (
        json.loads((datasets / "kitti" / "manifest.json").read_text())["splits"]["val"]["count"]
        == 3
    )
    # Mapillary's "unlabeled" (65) is ignore; every other drawn id is one of its 65 classes
    labels = [np.asarray(Image.open(p)) for _, p in read_split_list(datasets / "mapillary/val.lst")]
    assert set(np.unique(np.concatenate([x.ravel() for x in labels]))) <= {
        13, 15, 17, 19, 27, 30, 55, 255
    }  # fmt: skip
    assert not (real_run / "results" / "datasets" / "cityscapes" / "truth.json").exists()


@pytest.mark.workflow
def test_training_evaluation_and_tables_run_on_the_real_datasets(real_run):
    results = real_run / "results"
    for run in ("single-hrnet_w18_small_v2-C", "multi_ce-hrnet_w18_small_v2-C+M"):
        assert (results / "models" / run / "model.pt").is_file()
        scores = json.loads((results / "eval" / run / "kitti.json").read_text())
        assert scores["images"] == 3 and 0.0 <= scores["miou"] <= 100.0
    claims = (results / "tables" / "claims.csv").read_text().splitlines()
    assert len(claims) > 1 and all(line.endswith(",real") for line in claims[1:])
    # no hidden taxonomy behind real data: the recovery table is its header alone
    assert len((results / "tables" / "taxonomy_recovery.csv").read_text().splitlines()) == 1


@pytest.mark.workflow
def test_the_report_summary_says_real_data(real_run):
    summary = (real_run / "results" / "report" / "summary.rst").read_text()
    assert "real benchmark" in summary and "synthetic benchmark" not in summary
