"""UniSeg's fixed class relations: eq. 7 with the cosine model, the relations file, C-R BCE
fine-tuned from the cosine model, and the workflow's dependencies."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_experiment
from PIL import Image
from torch import nn

from mdseg.cli import main
from mdseg.data import SplitDataset, normalise_images
from mdseg.io import sha256, write_json, write_split_list
from mdseg.methods import METHODS
from mdseg.methods.cr_bce import class_similarities, restrict_relations
from mdseg.models.heads import CosineClassifier
from mdseg.relations import NO_PIXELS, write_relations
from mdseg.train import train

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
RED, GREEN, BLUE = (200, 30, 30), (30, 200, 30), (30, 30, 200)


def coloured_dataset(root: Path) -> Path:
    """Two 8x8 images; classes a (left half), b (right half), c never present.

    Image 0: a red, b green; image 1: a red in rows 0-3 and blue in rows 4-7, b green.
    """
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    label = np.zeros((8, 8), np.uint8)
    label[:, 4:] = 1
    pairs = []
    for i in range(2):
        image = np.zeros((8, 8, 3), np.uint8)
        image[:, :4], image[:, 4:] = RED, GREEN
        if i:
            image[4:, :4] = BLUE
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(label).save(root / "labels" / f"{i}.png")
        pairs.append((f"images/{i}.png", f"labels/{i}.png"))
    write_split_list(root / "train.lst", pairs)
    splits = {"train": {"count": 2, "list": "train.lst"}}
    manifest = {"name": "x", "classes": ["a", "b", "c"], "ignore_id": 255, "source": "test"}
    checksums = {"train.lst": sha256(root / "train.lst")}
    write_json(root / "manifest.json", {**manifest, "checksums": checksums, "splits": splits})
    return root


class CosinePixels(nn.Module):
    """A cosine classifier straight on the normalised pixels: the logits are 20·cos."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"main": CosineClassifier(3, len(weight), 20.0)})
        self.heads["main"].weight.data = weight

    def forward(self, images: torch.Tensor, head: str) -> torch.Tensor:
        return self.heads[head](images)


def cos(colour: tuple[int, int, int], weight: torch.Tensor) -> torch.Tensor:
    pixel = normalise_images(torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1)).flatten()
    return F.cosine_similarity(pixel[None], weight)


def test_eq7_is_the_plain_cosine_mean_and_reports_classes_without_pixels(tmp_path):
    data = SplitDataset(coloured_dataset(tmp_path / "x"), "train")
    weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5], [-1.0, 0.2, 1.0], [0.3, 0.3, 0.3]])
    model = CosinePixels(weight)
    (means,), (pixels,) = class_similarities(model, [data], 4, None, torch.device("cpu"))
    # a: 32 red pixels in image 0, 16 red and 16 blue in image 1; b: 64 green; c: none
    assert pixels.tolist() == [64, 64, 0]
    expected_a = (48 * cos(RED, weight) + 16 * cos(BLUE, weight)) / 64
    torch.testing.assert_close(means[0], expected_a, atol=1e-6, rtol=0)
    torch.testing.assert_close(means[1], cos(GREEN, weight), atol=1e-6, rtol=0)
    assert torch.isnan(means[2]).all()
    # the sigmoid option: the mean of sigmoid(20 cos), not sigmoid of the mean
    (sig,), _ = class_similarities(model, [data], 4, None, torch.device("cpu"), statistic="sigmoid")
    torch.testing.assert_close(sig[1], torch.sigmoid(20 * cos(GREEN, weight)), atol=1e-6, rtol=0)
    expected_a = (
        48 * torch.sigmoid(20 * cos(RED, weight)) + 16 * torch.sigmoid(20 * cos(BLUE, weight))
    ) / 64
    torch.testing.assert_close(sig[0], expected_a, atol=1e-6, rtol=0)
    # one evenly spaced image of two: image 0 only
    (first,), _ = class_similarities(model, [data], 4, 1, torch.device("cpu"))
    torch.testing.assert_close(first[0], cos(RED, weight), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="cosine classifier"):
        model.heads["main"] = nn.Conv2d(3, 4, 1)
        class_similarities(model, [data], 4, None, torch.device("cpu"))


def payload() -> dict:
    """Relations over datasets a (road, rider, sidewalk) and b (road, bicyclist, lane)."""
    nan = float("nan")
    union = ["road", "rider", "sidewalk", "bicyclist", "lane"]
    return {
        "model": "cosine_bce-x-A+B",
        "statistic": "cosine",
        "datasets": {"a": ["road", "rider", "sidewalk"], "b": ["road", "bicyclist", "lane"]},
        "classes": union,
        "similarity": {
            "a": torch.tensor([[0.9, 0.1, 0.2, 0.0, 0.95], [0.1, 0.6, 0.0, 0.5, 0.0], [nan] * 5]),
            "b": torch.tensor([[0.8, 0.0, 0.1, 0.0, 0.3], [0.1, 0.7, 0.0, 0.6, 0.0], [0.0] * 5]),
        },
        "pixels": {"a": torch.tensor([10.0, 5.0, 0.0]), "b": torch.tensor([8.0, 4.0, 2.0])},
        "images": {"a": 2, "b": 2},
        "tau": 0.8,
    }


def test_relations_file_lists_pairs_tau_and_classes_without_pixels(tmp_path):
    write_relations(payload(), tmp_path)
    rows = list(csv.DictReader((tmp_path / "relations.csv").read_text().splitlines()))
    # road of a: lane 0.95 > max(τ 0.8, own 0.9); bicyclist of b: rider 0.7 fails τ
    assert [(r["dataset"], r["class"], r["related_dataset"], r["related_class"]) for r in rows] == [
        ("a", "road", "b", "lane")
    ]
    assert float(rows[0]["score"]) == 0.95 and float(rows[0]["tau"]) == 0.8
    classes = {
        (r["dataset"], r["class"]): r
        for r in csv.DictReader((tmp_path / "classes.csv").read_text().splitlines())
    }
    assert classes[("a", "sidewalk")]["status"] == NO_PIXELS
    assert classes[("a", "sidewalk")]["own_score"] == ""
    assert classes[("a", "road")]["best_class"] == "lane"
    assert classes[("b", "lane")]["status"] == "" and classes[("b", "lane")]["pixels"] == "2"
    assert torch.load(tmp_path / "relations.pt", weights_only=False)["tau"] == 0.8


def test_a_run_on_fewer_datasets_keeps_its_rows_columns_and_tau():
    # a run on dataset b alone: union road, bicyclist, lane; τ stays 0.8 (not re-chosen)
    method = METHODS["cr_bce"]({"b": ["road", "bicyclist", "lane"]}, relations=payload())
    assert method.tau == 0.8
    expected = torch.tensor([[0.8, 0.0, 0.3], [0.1, 0.6, 0.0], [0.0] * 3])
    torch.testing.assert_close(method.similarity[0], expected)
    assert method.relations == {}
    with pytest.raises(ValueError, match="no statistics for dataset 'z'"):
        restrict_relations(payload(), {"z": ["road"]}, ["road"])
    with pytest.raises(ValueError, match="classes of 'b' differ"):
        restrict_relations(payload(), {"b": ["road"]}, ["road"])


def test_cr_bce_options_by_schedule():
    with pytest.raises(ValueError, match="in_run only"):
        METHODS["cr_bce"]({"a": ["road"]}, statistic="sigmoid")
    with pytest.raises(ValueError, match="computes its own relations"):
        METHODS["cr_bce"]({"a": ["road"]}, schedule="in_run", relations=payload())
    with pytest.raises(ValueError, match="statistic"):
        METHODS["cr_bce"]({"a": ["road"]}, schedule="in_run", statistic="mean")


def test_cr_bce_fine_tunes_the_cosine_model_with_its_relations(tiny_datasets, tmp_path):
    keys = ["cityscapes", "mapillary"]
    cosine = tiny_experiment("cosine_bce", keys, iterations=2, sampling="concat", lr=0.01)
    cosine_pt = train(cosine, tiny_datasets, tmp_path / "cosine")
    rel_dir, datasets_dir = tmp_path / "rel", tiny_datasets["cityscapes"].parent
    argv = ["relations", "--model", str(cosine_pt), "--out", str(rel_dir)]
    assert main([*argv, "--datasets-dir", str(datasets_dir)]) == 0
    rel = torch.load(rel_dir / "relations.pt", weights_only=False)
    assert rel["statistic"] == "cosine" and rel["images"] == {"cityscapes": 4, "mapillary": 4}
    assert rel["model"] == cosine["id"] and sorted(rel["similarity"]) == keys

    # one step at a vanishing lr leaves a run at the weights it started from
    spec = tiny_experiment("cr_bce", keys, iterations=1, sampling="concat", lr=1e-30)
    spec.update(init=cosine["id"], relations=cosine["id"])
    with pytest.raises(ValueError, match="give --init exactly"):
        train(spec, tiny_datasets, tmp_path / "bad")
    tuned_pt = train(
        spec, tiny_datasets, tmp_path / "cr", None, cosine_pt, rel_dir / "relations.pt"
    )
    fresh_pt = train(
        {**spec, "init": None},
        tiny_datasets,
        tmp_path / "fresh",
        None,
        None,
        rel_dir / "relations.pt",
    )
    start = torch.load(cosine_pt, weights_only=False)["state_dict"]
    tuned = torch.load(tuned_pt, weights_only=False)
    fresh = torch.load(fresh_pt, weights_only=False)["state_dict"]
    for key, value in start.items():
        if value.is_floating_point() and "running" not in key:
            torch.testing.assert_close(tuned["state_dict"][key], value, atol=1e-6, rtol=0)
    # without init the run starts from the initial weights, which the cosine run has left
    assert not torch.allclose(fresh["heads.main.weight"], start["heads.main.weight"], atol=1e-3)
    # the fixed relations: τ and similarities of the file, not recomputed
    assert tuned["method_state"]["tau"] == rel["tau"]
    for got, key in zip(tuned["method_state"]["similarity"], keys, strict=True):
        torch.testing.assert_close(got, rel["similarity"][key], equal_nan=True)


def test_cr_bce_without_relations_stops_with_a_clear_error(tiny_datasets, tmp_path):
    spec = tiny_experiment("cr_bce", ["cityscapes"], iterations=1)
    with pytest.raises(RuntimeError, match="needs the relations of a cosine model"):
        train(spec, tiny_datasets, tmp_path / "run")


def test_every_cr_bce_run_reads_the_c_i_b_m_relations(tmp_path):
    """Dry run of the synthetic default: the fine-tunes depend on their cosine model and on the
    one relations file of the C+I+B+M cosine model."""
    targets = [
        f"results/models/cr_bce-hrnet_w18_small_v2-{t}/model.pt" for t in ("C+I+B", "C+I+B+M")
    ]
    out = subprocess.run(
        [
            SNAKEMAKE,
            *targets,
            "-n",
            "-p",
            "-d",
            str(tmp_path),
            "-s",
            str(REPO / "Snakefile"),
            "--configfile",
            str(REPO / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    rel = "results/relations/cosine_bce-hrnet_w18_small_v2-C+I+B+M/relations.pt"
    assert "relations --model results/models/cosine_bce-hrnet_w18_small_v2-C+I+B+M/model.pt" in text
    assert text.count(f"--relations {rel}") == 2
    assert "--init results/models/cosine_bce-hrnet_w18_small_v2-C+I+B/model.pt" in text
    assert "--init results/models/cosine_bce-hrnet_w18_small_v2-C+I+B+M/model.pt" in text
    assert "relations --model results/models/cosine_bce-hrnet_w18_small_v2-C+I+B/" not in text
