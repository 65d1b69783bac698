"""Bad inputs of ``mdseg evaluate``: a spoilt split list, manifest, label or model file.

One tiny model is trained per module. Each case evaluates it on ``kitti``, a tiny prepared
dataset with one thing spoilt, into a folder that already holds a good ``cityscapes.json`` from
an earlier evaluation: the refusal must leave that file as it was and write no ``kitti.json``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import make_dataset, tiny_experiment

from mdseg.cli import main
from mdseg.io import sha256, write_json
from mdseg.train import train


@dataclass
class Setup:
    model: Path
    root: Path  # the datasets folder
    out: Path  # the evaluation folder, with an earlier cityscapes.json

    def argv(self, dataset: str = "kitti", model: Path | None = None) -> list[str | Path]:
        return [
            "evaluate",
            "--model",
            model or self.model,
            "--datasets",
            dataset,
            "--datasets-dir",
            self.root,
            "--device",
            "cpu",
            "--out",
            self.out,
        ]

    @property
    def kitti(self) -> Path:
        return self.root / "kitti"

    @property
    def earlier(self) -> Path:
        return self.out / "cityscapes.json"

    @property
    def result(self) -> Path:
        return self.out / "kitti.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("datasets")
    make_dataset(root, "cityscapes", ["road", "rider", "car"], seed=1)
    make_dataset(root, "kitti", ["road", "car", "sky"], seed=5)
    experiment = tiny_experiment("multi_ce", ["cityscapes"], iterations=2)
    model = train(experiment, {"cityscapes": root / "cityscapes"}, root.parent / "model")
    out = root.parent / "eval"
    assert main([str(a) for a in Setup(model, root, out).argv("cityscapes")]) == 0
    return Setup(model, root, out)


@pytest.fixture
def setup(trained: Setup, tmp_path: Path) -> Setup:
    """A copy of the module's datasets and earlier result, to spoil."""
    shutil.copytree(trained.root, tmp_path / "datasets")
    shutil.copytree(trained.out, tmp_path / "eval")
    return Setup(trained.model, tmp_path / "datasets", tmp_path / "eval")


def test_the_good_dataset_evaluates(setup):
    """The cases below spoil one thing of this setup, which evaluates as it is."""
    assert main([str(a) for a in setup.argv()]) == 0
    assert json.loads(setup.result.read_text())["images"] == 4


def test_empty_val_list(refused, setup):
    val = setup.kitti / "val.lst"
    val.write_bytes(b"")
    refused(
        setup.argv(),
        val,
        "an empty split list",
        "rerun mdseg prepare",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_val_list_changed_after_prepare(refused, setup):
    val = setup.kitti / "val.lst"
    recorded = sha256(val)
    lines = val.read_text().splitlines(keepends=True)
    val.write_text("".join(reversed(lines)))  # same count, other order: only the sha256 tells
    refused(
        setup.argv(),
        val,
        f"sha256 {sha256(val)}, but the manifest records {recorded}",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_val_list_count_differs_from_the_manifest(refused, setup):
    manifest = json.loads((setup.kitti / "manifest.json").read_text())
    manifest["splits"]["val"]["count"] = 5
    write_json(setup.kitti / "manifest.json", manifest)
    refused(
        setup.argv(),
        setup.kitti / "val.lst",
        "4 pairs, but the manifest records 5",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_val_list_not_utf8(refused, setup):
    val = setup.kitti / "val.lst"
    val.write_bytes(b"images/\xff.png\tlabels/0.png\n")
    refused(
        setup.argv(),
        val,
        "not UTF-8 text (byte 7)",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_val_list_line_without_a_tab(refused, setup):
    val = setup.kitti / "val.lst"
    val.write_text(val.read_text().replace("\t", " ", 1))
    refused(
        setup.argv(),
        f"{val}:1: expected 'image<TAB>label'",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_manifest_without_the_list_checksum(refused, setup):
    manifest_path = setup.kitti / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["checksums"]["val.lst"]
    write_json(manifest_path, manifest)
    refused(
        setup.argv(),
        manifest_path,
        "records no checksum for val.lst",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_missing_manifest(refused, setup):
    (setup.kitti / "manifest.json").unlink()
    refused(
        setup.argv(),
        setup.kitti / "manifest.json",
        "holds no complete dataset",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_unknown_dataset(refused, setup):
    refused(
        setup.argv("kitty"),
        setup.root / "kitty" / "manifest.json",
        "check the dataset key and --datasets-dir",
        absent=[setup.out / "kitty.json"],
        untouched=[setup.earlier, setup.model],
    )


def test_split_the_dataset_does_not_have(refused, setup):
    refused(
        [*setup.argv(), "--split", "test"],
        "no split 'test'",
        setup.kitti,
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_label_that_is_not_an_image(refused, setup):
    label = setup.kitti / "labels" / "2.png"
    label.write_text("not a PNG")
    refused(
        setup.argv(),
        label,
        "cannot be read as a label image",
        "rerun mdseg prepare",
        absent=[setup.result],
        untouched=[setup.earlier, setup.model],
    )


def test_truncated_model(refused, setup, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(setup.model.read_bytes()[:1000])
    refused(
        setup.argv(model=model),
        model,
        "cannot be read as a trained model",
        "delete it and rerun its training",
        absent=[setup.result],
        untouched=[setup.earlier, model],
    )


def test_empty_model(refused, setup, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"")
    refused(
        setup.argv(model=model),
        model,
        "EOFError",
        "delete it and rerun its training",
        absent=[setup.result],
        untouched=[setup.earlier, model],
    )


def test_model_file_that_holds_no_model(refused, setup, tmp_path):
    model = tmp_path / "model.pt"
    torch.save({"step": 3}, model)  # a readable torch file, but no trained model in it
    refused(
        setup.argv(model=model),
        model,
        "cannot be read as a trained model",
        "KeyError: experiment",
        absent=[setup.result],
        untouched=[setup.earlier, model],
    )


def test_a_dataset_sharing_no_class_is_skipped_with_its_reason(setup, capsys):
    """Not an error: the result says why, ``miou`` is null and the log has one line."""
    make_dataset(setup.root, "scannet", ["wall", "floor"], seed=3)
    assert main([str(a) for a in setup.argv("scannet")]) == 0
    result = json.loads((setup.out / "scannet.json").read_text())
    assert "no class of scannet (2 classes) matches" in result["skipped"]
    assert result["miou"] is None and result["miou_all_classes"] == 0.0
    assert result["evaluated_classes"] == []
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"multi_ce-hrnet_w18_small_v2-C on scannet: skipped: {result['skipped']}"]
    good = json.loads(setup.earlier.read_text())
    assert good["skipped"] is None and good["miou"] is not None
