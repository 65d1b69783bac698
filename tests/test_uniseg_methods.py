"""UniSeg's losses: Null BCE (eq. 4-5), class relations (eq. 6-7), C-R BCE training, export."""

from __future__ import annotations

import csv
import math
import os
import signal
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_experiment
from PIL import Image

from mdseg.build import load_model
from mdseg.cli import main
from mdseg.data import Augment
from mdseg.export import export_wilddash
from mdseg.inference import Inference
from mdseg.losses import label_targets, masked_bce
from mdseg.methods import METHODS
from mdseg.methods.cr_bce import RELATION_FIELDS, ClassRelationalBCE, choose_tau, multi_labels
from mdseg.models.heads import CosineClassifier
from mdseg.train import train

UNION = ["road", "rider", "bicyclist"]
SPACES = [["road", "rider"], ["road", "bicyclist"]]  # dataset 0 and dataset 1


def test_null_bce_hand_value_and_no_gradient_outside_the_dataset():
    logits = torch.tensor([[[[0.5, -1.0]], [[2.0, 0.3]], [[-0.7, 1.5]]]], requires_grad=True)
    labels = torch.tensor([[[0, 1]]])  # road, rider of dataset 0
    loss = masked_bce(logits, labels, torch.tensor([0]), label_targets(SPACES, UNION))
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  -log(1 - sigmoid(x)) = softplus(x)
    # pixel 1 (road): road positive, rider negative; pixel 2 (rider): road negative, rider
    # positive; bicyclist is Null for both; the sum is averaged over the 2 labelled pixels
    expected = (sp(-0.5) + sp(2.0) + sp(-1.0) + sp(-0.3)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.all(logits.grad[0, 2] == 0)
    assert torch.all(logits.grad[0, :2] != 0)


def test_ignore_pixels_contribute_nothing():
    logits = torch.randn(1, 3, 1, 2, requires_grad=True)
    loss = masked_bce(
        logits, torch.tensor([[[0, 255]]]), torch.tensor([0]), label_targets(SPACES, UNION)
    )
    loss.backward()
    assert torch.all(logits.grad[..., 1] == 0)


def test_ce_gradient_conflict_vanishes_under_null_bce():
    """Eq. 3: one pixel seen as rider (dataset 0) and as bicyclist (dataset 1)."""
    pixel = torch.tensor([0.1, 0.4, 0.2])

    def rider_gradient(loss_of: object, dataset: int, label: int) -> float:
        logits = pixel.clone().view(1, 3, 1, 1).requires_grad_(True)
        loss_of(logits, torch.tensor([[[label]]]), torch.tensor([dataset])).backward()
        return logits.grad[0, 1].item()

    multi_ce = METHODS["multi_ce"]({"a": SPACES[0], "b": SPACES[1]})

    def ce(logits, labels, owners):
        return F.cross_entropy(logits, multi_ce.to_unified(labels, owners))

    targets = label_targets(SPACES, UNION)

    def null(logits, labels, owners):
        return masked_bce(logits, labels, owners, targets)

    ce_a, ce_b = rider_gradient(ce, 0, 1), rider_gradient(ce, 1, 1)
    assert ce_a < 0 < ce_b  # the two copies pull the rider logit in opposite directions
    assert rider_gradient(null, 0, 1) < 0
    assert rider_gradient(null, 1, 1) == 0  # rider is Null for dataset 1: no push-back


def test_tau_and_multi_labels_on_a_hand_made_similarity():
    # union: road, rider, bicyclist, sidewalk; dataset 0 = road, rider, sidewalk;
    # dataset 1 = road, bicyclist
    own = [[0, 1, 3], [0, 2]]
    sim = [
        torch.tensor(
            [
                [0.9, 0.1, 0.2, 0.3],  # road: best is its own class
                [0.1, 0.6, 0.5, 0.1],  # rider: bicyclist 0.5 < own 0.6 -> nothing
                [float("nan")] * 4,  # sidewalk: no pixels
            ]
        ),
        torch.tensor(
            [
                [0.7, 0.1, 0.1, 0.75],  # road: best is sidewalk (other dataset) 0.75
                [0.1, 0.55, 0.45, 0.0],  # bicyclist: best is rider (other dataset) 0.55
            ]
        ),
    ]
    tau = choose_tau(sim, own)
    assert tau == pytest.approx((0.75 + 0.55) / 2)
    rel = multi_labels(sim, own, tau)
    # road of dataset 1 -> sidewalk (0.75 > max(0.65, 0.7)); bicyclist -> rider fails τ (0.55)
    assert {k: [u for u, _ in v] for k, v in rel.items()} == {(1, 0): [3]}
    # the max condition: a low τ still needs the other class to beat the own class
    rel = multi_labels(sim, own, 0.3)
    assert {k: [u for u, _ in v] for k, v in rel.items()} == {(1, 0): [3], (1, 1): [1]}
    assert choose_tau([sim[0][:2]], [own[0]]) is None
    assert multi_labels(sim, own, None) == {}


def test_relational_targets_turn_null_into_positive():
    positive, known = label_targets(SPACES, UNION, {(1, 1): [1]})
    # bicyclist pixels of dataset 1 are also rider; road pixels of dataset 1 keep rider Null
    assert positive[1, 1].tolist() == [False, True, True]
    assert known[1, 1].tolist() == [True, True, True]
    assert known[1, 0].tolist() == [True, False, True]


def test_cosine_classifier_is_bounded_by_t():
    head = CosineClassifier(16, 5, scale=20.0)
    out = head(torch.randn(2, 16, 4, 4) * 100)
    assert out.abs().max() <= 20.0 + 1e-4
    feature = torch.randn(1, 16, 1, 1)
    head.weight.data[0] = feature.flatten() * 3
    assert head(feature)[0, 0].item() == pytest.approx(20.0, rel=1e-5)


def test_methods_reject_unknown_options():
    with pytest.raises(ValueError, match=r"unknown options \['tau'\]"):
        METHODS["cr_bce"]({"a": SPACES[0]}, tau=0.5)
    with pytest.raises(ValueError, match="pretrain_fraction"):
        METHODS["cr_bce"]({"a": SPACES[0]}, schedule="in_run", pretrain_fraction=1.0)


def experiment(iterations: int = 4, statistic: str = "cosine", **training: object) -> dict:
    """C-R BCE within one run (``schedule: in_run``), the project's former protocol."""
    return tiny_experiment(
        "cr_bce",
        ["cityscapes", "mapillary"],
        {"schedule": "in_run", "similarity_images": 4, "statistic": statistic},
        iterations=iterations,
        sampling="concat",
        **training,
    )


@pytest.mark.parametrize("statistic", ["cosine", "sigmoid"])
def test_cr_bce_trains_writes_relations_and_reloads(tiny_datasets, tmp_path, statistic):
    model_path = train(experiment(statistic=statistic), tiny_datasets, tmp_path / "run")
    # the restarted network gets its own poly schedule: the lr is back at its peak at the switch
    with open(tmp_path / "run" / "train_log.csv", newline="") as fh:
        lrs = [float(r["lr"]) for r in csv.DictReader(fh)]
    assert lrs[0] == lrs[2] == 0.001 and lrs[1] == pytest.approx(0.001 * 0.5**0.9)
    with open(tmp_path / "run" / "relations.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == RELATION_FIELDS
        rows = list(reader)
    for row in rows:
        assert row["dataset"] != row["related_dataset"]
    method, model, _ = load_model(model_path)
    assert isinstance(method, ClassRelationalBCE)
    assert method.similarity is not None and method.initial is None
    assert [s.shape for s in method.similarity] == [(3, 5), (4, 5)]
    assert method.relation_rows() == [
        {**r, "score": float(r["score"]), "tau": float(r["tau"])} for r in rows
    ]
    scores = method.scores(model, torch.zeros(1, 3, 32, 32))
    assert scores.shape == (1, len(method.classes), 32, 32)

    # export the same model as a WildDash 2 submission
    images = tmp_path / "wd2"
    images.mkdir()
    Image.fromarray(np.zeros((24, 40, 3), np.uint8)).save(images / "wd0001.jpg")
    archive = export_wilddash(
        model_path, images, tmp_path / "sub", Inference(resize_height=32), device="cpu"
    )
    assert archive == tmp_path / "sub.zip"
    argv = ["--model", str(model_path), "--images", str(images), "--out", str(tmp_path / "cli")]
    assert main(["export-wilddash", *argv, "--resize-height", "0", "--device", "cpu"]) == 0
    assert (tmp_path / "cli" / "wd0001.png").exists() and (tmp_path / "cli.zip").exists()
    pred = np.asarray(Image.open(tmp_path / "sub" / "wd0001.png"))
    assert pred.shape == (24, 40) and pred.dtype == np.uint8
    assert set(np.unique(pred)) <= {7, 25, 26}  # road, rider, car; bicyclist has no WD2 id
    assert zipfile.ZipFile(archive).namelist() == ["wd0001.png"]


def test_state_round_trip_and_resume_across_the_switch(tiny_datasets, tmp_path, monkeypatch):
    method = ClassRelationalBCE({"a": SPACES[0], "b": SPACES[1]})
    method._set_similarity([torch.rand(2, 3), torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.7]])])
    copy = ClassRelationalBCE({"a": SPACES[0], "b": SPACES[1]})
    copy.load_state_dict(method.state_dict())
    assert copy.tau == method.tau and copy.relations == method.relations
    assert all(torch.equal(a, b) for a, b in zip(copy.targets, method.targets, strict=True))

    whole = train(experiment(5), tiny_datasets, tmp_path / "whole")
    # stop right after step 3 (the switch is at step 2) as SLURM's SIGUSR1 would, then resume
    original = ClassRelationalBCE.before_step

    def stop_at_three(self, step, model, run):
        original(self, step, model, run)
        if step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(ClassRelationalBCE, "before_step", stop_at_three)
    with pytest.raises(SystemExit):
        train(experiment(5), tiny_datasets, tmp_path / "resumed")
    monkeypatch.setattr(ClassRelationalBCE, "before_step", original)
    resumed = train(experiment(5), tiny_datasets, tmp_path / "resumed")
    a = torch.load(whole, weights_only=False)
    b = torch.load(resumed, weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float()), key
    assert (tmp_path / "whole" / "relations.csv").read_text() == (
        tmp_path / "resumed" / "relations.csv"
    ).read_text()


def test_augment_resizes_the_short_side_first():
    label = np.zeros((8, 16), np.uint8)
    image = np.zeros((8, 16, 3), np.uint8)
    rng = np.random.default_rng(0)
    _, plain = Augment(32, (1.0, 1.0), False)(image, label, rng)
    _, resized = Augment(32, (1.0, 1.0), False, short_side=32)(image, label, rng)
    _, halved = Augment(32, (0.5, 0.5), False, short_side=32)(image, label, rng)
    assert (plain == 255).sum() == 32 * 32 - 8 * 16  # 8x16 padded up to the 32 crop
    assert not (resized == 255).any()  # 32x64 after the short-side resize
    assert (halved == 255).sum() == 32 * 32 - 16 * 32  # short side 32, then the scale 0.5
