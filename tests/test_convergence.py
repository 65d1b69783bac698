import csv
import json

import numpy as np
import pytest
from conftest import tiny_experiment

from mdseg.convergence import convergence
from mdseg.train import train


def test_flat_noisy_loss_has_converged():
    losses = 1.0 + np.random.default_rng(0).normal(0, 0.05, 500)
    result = convergence(losses.tolist())
    assert result["converged"] is True
    assert result["window_steps"] == 100
    assert abs(result["relative_drop"]) < 0.05


def test_exponential_still_falling_has_not_converged():
    # exp(-t / 100) + 0.1 over 200 steps: the last 40 fall from 0.302 to 0.237
    losses = [float(np.exp(-t / 100) + 0.1) for t in range(200)]
    result = convergence(losses)
    assert result["converged"] is False
    assert result["relative_drop"] > 0.2
    # the same curve levelled off (time constant 10) has converged
    assert convergence([float(np.exp(-t / 10) + 0.1) for t in range(200)])["converged"] is True


def test_linear_loss_gives_the_hand_computed_drop():
    # 2 - 0.01 t, t = 0..99: the last 20 steps run 1.20 .. 1.01 (mean 1.105), a drop of 0.19
    losses = [2 - 0.01 * t for t in range(100)]
    result = convergence(losses)
    assert result["window_steps"] == 20
    assert result["relative_drop"] == pytest.approx(0.19 / 1.105, rel=1e-9)
    assert result["converged"] is False
    assert result["threshold"] == 0.05
    assert result["rule"] == (
        "converged if a least-squares line through the loss over the last 20% of steps "
        "(20 of 100) falls by less than 5% of its mean loss"
    )
    assert convergence(losses, threshold=0.2)["converged"] is True
    # a rising loss (reversed: the last 20 steps run 1.81 .. 2.00, mean 1.905) is no longer falling
    assert convergence(losses[::-1])["relative_drop"] == pytest.approx(-0.19 / 1.905, rel=1e-9)
    assert convergence(losses[::-1])["converged"] is True


def test_fraction_sets_the_window():
    # the last half of 2 - 0.01 t, t = 0..99: 1.50 .. 1.01 (mean 1.255), a drop of 0.49
    result = convergence([2 - 0.01 * t for t in range(100)], fraction=0.5)
    assert result["window_steps"] == 50
    assert result["relative_drop"] == pytest.approx(0.49 / 1.255, rel=1e-9)


def test_too_short_log_gives_no_verdict():
    result = convergence([1.0] * 45)
    assert result == {
        "converged": None,
        "relative_drop": None,
        "window_steps": 9,
        "threshold": 0.05,
        "rule": "no verdict: the last 20% of 45 steps is 9 steps, fewer than the 10 a fitted "
        "line needs",
    }
    assert convergence([])["converged"] is None
    assert convergence([1.0] * 50)["converged"] is True


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        convergence([1.0] * 100, fraction=0)
    with pytest.raises(ValueError, match=r"threshold must be > 0, got -0\.1"):
        convergence([1.0] * 100, threshold=-0.1)


def test_training_writes_the_flag_from_its_loss_log(tmp_path, tiny_datasets):
    out = tmp_path / "model"
    spec = tiny_experiment("single", ["cityscapes"], iterations=50)
    train(spec, {"cityscapes": tiny_datasets["cityscapes"]}, out)
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "train_log.csv") as fh:
        losses = [float(row["loss"]) for row in csv.DictReader(fh)]
    assert len(losses) == 50
    assert summary["convergence"] == convergence(losses)
    assert summary["convergence"]["window_steps"] == 10
    assert isinstance(summary["convergence"]["converged"], bool)
