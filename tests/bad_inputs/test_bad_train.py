"""Bad inputs of ``mdseg train``: the experiment, its input files, its checkpoint, a full disk."""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_experiment

from mdseg.io import write_json


@pytest.fixture
def run(tmp_path: Path, tiny_datasets: dict[str, Path]) -> dict[str, Any]:
    """A one-dataset experiment of 2 steps: its spec file, its output folder, and argv."""
    experiment = tiny_experiment("multi_ce", ["cityscapes"], iterations=2, checkpoint_every=1)
    spec = tmp_path / "experiment.json"
    write_json(spec, experiment)
    out = tmp_path / "model"
    argv = ["train", "--experiment", spec, "--datasets-dir", tmp_path, "--out", out]
    return {"experiment": experiment, "spec": spec, "out": out, "argv": argv, "root": tmp_path}


def _rewrite(run: dict[str, Any], change: dict[str, Any]) -> None:
    experiment = json.loads(json.dumps(run["experiment"]))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = experiment
        for part in parents:
            node = node[part]
        if value is None:
            del node[key]
        else:
            node[key] = value
    write_json(run["spec"], experiment)


def test_zero_iterations(refused, run):
    _rewrite(run, {"training.iterations": 0})
    refused(run["argv"], run["spec"], "training.iterations", absent=[run["out"] / "model.pt"])


def test_a_training_key_missing(refused, run):
    _rewrite(run, {"training.lr": None})
    refused(run["argv"], run["spec"], "'lr' is a required property", absent=[run["out"]])


def test_a_misspelled_training_key(refused, run):
    _rewrite(run, {"training.learning_rate": 0.1})
    refused(run["argv"], run["spec"], "learning_rate", absent=[run["out"]])


def test_a_string_where_a_number_belongs(refused, run):
    _rewrite(run, {"training.batch_size": "2"})
    refused(run["argv"], "training.batch_size", "'2' is not of type 'integer'")


def test_an_unknown_method(refused, run):
    _rewrite(run, {"method": "uniseg"})
    refused(run["argv"], run["spec"], "method", "uniseg", absent=[run["out"]])


def test_an_unknown_training_dataset(refused, run):
    _rewrite(run, {"train": ["cityscape"]})
    refused(run["argv"], run["spec"], "train.0", "cityscape", absent=[run["out"]])


def test_experiment_file_that_is_not_json(refused, run):
    run["spec"].write_text('{"id": "multi_ce-hrnet_w18_small_v2-C",')
    refused(run["argv"], run["spec"], "not valid JSON", absent=[run["out"]])


def test_experiment_file_missing(refused, run):
    run["spec"].unlink()
    refused(run["argv"], run["spec"], absent=[run["out"]])


def test_dataset_folder_without_manifest(refused, run):
    manifest = run["root"] / "cityscapes" / "manifest.json"
    manifest.unlink()
    refused(run["argv"], manifest, absent=[run["out"] / "model.pt"])


def test_batch_that_does_not_split_over_the_datasets(refused, run):
    experiment = tiny_experiment("multi_ce", ["cityscapes", "mapillary"], batch_size=3)
    write_json(run["spec"], experiment)
    refused(run["argv"], "training.batch_size 3", absent=[run["out"] / "model.pt"])


def test_init_given_to_an_experiment_without_one(refused, run):
    model = run["root"] / "other.pt"
    model.write_bytes(b"")
    refused([*run["argv"], "--init", model], "--init", absent=[run["out"] / "model.pt"])


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_checkpoint_names_itself_and_the_way_out(refused, run, damage):
    """A resume from a checkpoint cut short stops, naming it and the choice to delete it."""
    _rewrite(run, {"training.iterations": 4})
    ckpt = run["out"] / "checkpoint.pt"
    run["out"].mkdir()
    good = run["root"] / "good.pt"
    torch.save({"model": torch.zeros(1000)}, good)
    data = good.read_bytes()
    ckpt.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    line = refused(
        run["argv"], ckpt, "delete it", absent=[run["out"] / "model.pt"], untouched=[ckpt]
    )
    assert "training checkpoint" in line


def test_damaged_init_model(refused, run):
    experiment = tiny_experiment("cr_bce", ["cityscapes"], iterations=2)
    experiment["init"] = "cosine_bce-hrnet_w18_small_v2-C"
    experiment["method_options"] = {"schedule": "in_run"}
    write_json(run["spec"], experiment)
    init = run["root"] / "init.pt"
    init.write_bytes(b"PK\x03\x04 cut short")
    refused(
        [*run["argv"], "--init", init],
        init,
        "a trained model",
        absent=[run["out"] / "model.pt"],
        untouched=[init],
    )


def test_text_features_that_are_not_a_torch_file(refused, run):
    experiment = tiny_experiment("autouniseg", ["cityscapes"], iterations=2)
    write_json(run["spec"], experiment)
    features = run["root"] / "features.pt"
    features.write_text("not a tensor file\n")
    refused(
        [*run["argv"], "--text-features", features],
        features,
        "label text features",
        absent=[run["out"] / "model.pt"],
    )


def test_text_features_without_the_dataset(refused, run):
    experiment = tiny_experiment("autouniseg", ["cityscapes"], iterations=2)
    write_json(run["spec"], experiment)
    features = run["root"] / "features.pt"
    torch.save({"datasets": {"mapillary": {"features": torch.zeros(3, 4)}}}, features)
    refused(
        [*run["argv"], "--text-features", features],
        features,
        "cityscapes",
        absent=[run["out"] / "model.pt"],
    )


def test_backbone_weights_file_that_is_damaged(refused, run):
    weights = run["root"] / "imagenet.pth"
    weights.write_bytes(b"\x80\x02 not a state dict")
    _rewrite(run, {"weights": str(weights)})
    refused(run["argv"], weights, "backbone weights", absent=[run["out"] / "model.pt"])


def _no_bigger_than(limit: int) -> Any:
    def apply() -> None:  # in the child: writes beyond `limit` bytes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def test_full_disk_leaves_no_half_written_file(refused_process, run):
    """A write that finds no room (here a file-size limit, as a full disk) names the file and
    leaves nothing under a final name, nor a temporary file beside it."""
    line = refused_process(
        run["argv"],
        "not written",
        "File too large",
        "Nothing was left under that name",
        absent=[run["out"] / "model.pt", run["out"] / "checkpoint.pt"],
        popen={"preexec_fn": _no_bigger_than(64 * 1024)},
    )
    assert str(run["out"] / "checkpoint.pt") in line or str(run["out"] / "model.pt") in line
    assert not list(run["out"].glob(".*.part"))
