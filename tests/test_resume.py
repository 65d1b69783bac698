"""A training run stopped by SIGTERM and rerun ends exactly where an uninterrupted run ends.

Both runs are ``mdseg train`` subprocesses on one CPU thread. The rerun restores model,
optimiser, gradient-scaler and RNG state from the checkpoint the signal handler wrote, the
learning rate is a function of the step and the batch stream a function of (seed, step), so the
final weights and the logged losses are bit-identical (same operations in the same order on the
same machine), which the test asserts. Both runs decode in a DataLoader worker, which the
stop signal must not disturb and which restart at the resumed step. The log, a pipe as in a
job, gets a plain progress line every ``log_every`` (20) steps.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import tiny_experiment

MDSEG = str(Path(sys.executable).parent / "mdseg")
STEPS = 30


def experiment(path: Path) -> Path:
    spec = tiny_experiment(
        "multi_ce",
        ["cityscapes", "mapillary"],
        iterations=STEPS,
        crop_size=24,
        scale_range=[0.75, 1.25],
        flip=True,
        weight_decay=0.0001,
        warmup_iterations=2,
        checkpoint_every=3,
        workers=1,
    )
    path.write_text(json.dumps(spec))
    return path


def command(spec: Path, datasets: Path, out: Path) -> list[str]:
    args = ("--experiment", spec, "--datasets-dir", datasets, "--out", out)
    return [MDSEG, "train", *map(str, args)]


def test_sigterm_then_rerun_matches_an_uninterrupted_run(tiny_datasets, tmp_path):
    spec = experiment(tmp_path / "experiment.json")
    datasets = tiny_datasets["cityscapes"].parent
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    done = subprocess.run(command(spec, datasets, whole), check=True, capture_output=True)
    log = done.stderr.decode()  # what a job's log file gets: plain lines, no progress bar
    assert "\r" not in log and re.search(r"^step 20/30  loss \S+  lr ", log, re.MULTILINE), log
    assert f"training {STEPS} steps, from step 0" in log

    proc = subprocess.Popen(
        command(spec, datasets, resumed), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not (resumed / "checkpoint.pt").exists():  # the first periodic checkpoint, step 3
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, "the run finished before the signal arrived"
    assert b"stopped by a signal" in err
    stopped_at = torch.load(resumed / "checkpoint.pt", weights_only=False)["step"]
    assert 3 <= stopped_at < STEPS
    assert not (resumed / "model.pt").exists()

    rerun = subprocess.run(command(spec, datasets, resumed), check=True, capture_output=True)
    assert f"resumed from {resumed / 'checkpoint.pt'} at step {stopped_at}" in rerun.stderr.decode()
    assert not (resumed / "checkpoint.pt").exists()
    a = torch.load(whole / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(resumed / "model.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a = pd.read_csv(whole / "train_log.csv")
    log_b = pd.read_csv(resumed / "train_log.csv")
    assert list(log_b["step"]) == list(range(1, STEPS + 1))
    pd.testing.assert_series_equal(log_a["loss"], log_b["loss"])
    pd.testing.assert_series_equal(log_a["lr"], log_b["lr"])


def test_a_changed_experiment_refuses_to_resume(tiny_datasets, tmp_path, monkeypatch):
    """A checkpoint resumes only the experiment that wrote it; fields that cannot change the
    weights (threads, workers, device, checkpoint_every, memory layout) may change."""
    import os

    from mdseg.fingerprint import run_spec
    from mdseg.methods.multi_ce import MultiCE
    from mdseg.train import train

    def stop_at_two(self, step, model, run):
        if step == 2:
            os.kill(os.getpid(), signal.SIGUSR1)

    spec = tiny_experiment("multi_ce", ["cityscapes", "mapillary"], iterations=4)
    out = tmp_path / "run"
    monkeypatch.setattr(MultiCE, "before_step", stop_at_two)
    with pytest.raises(SystemExit):
        train(spec, tiny_datasets, out)
    monkeypatch.undo()
    checkpoint = out / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=False)["run_spec"] == run_spec(spec)

    changed = json.loads(json.dumps(spec))
    changed["training"].update(lr=0.002, precision="bf16")
    message = (
        rf"{re.escape(str(checkpoint))}: will not resume {re.escape(spec['id'])}: the experiment "
        r"changed since: training\.lr: 0\.001 -> 0\.002; training\.precision: 'fp32' -> 'bf16'\. "
        rf".*delete the checkpoint \(rm {re.escape(str(checkpoint))}\)"
    )
    with pytest.raises(RuntimeError, match=message):
        train(changed, tiny_datasets, out)
    assert checkpoint.exists()

    harmless = json.loads(json.dumps(spec))
    harmless["training"].update(threads=2, workers=1, checkpoint_every=7, precision="fp32")
    harmless["evaluate"] = ["mapillary"]
    train(harmless, tiny_datasets, out)
    assert not checkpoint.exists()
    assert torch.load(out / "model.pt", weights_only=False)["experiment"] == harmless


def test_a_checkpoint_without_a_fingerprint_is_refused(tiny_datasets, tmp_path):
    from mdseg.train import train

    spec = tiny_experiment("multi_ce", ["cityscapes"], iterations=1)
    (tmp_path / "run").mkdir()
    torch.save({"step": 1}, tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(RuntimeError, match=r"records no experiment fingerprint.*rm "):
        train(spec, tiny_datasets, tmp_path / "run")


def test_options_at_their_default_leave_the_fingerprint_unchanged():
    """A later option whose default keeps the former behaviour must not orphan checkpoints."""
    from mdseg.fingerprint import TRAINING_DEFAULTS, fingerprint, run_spec

    spec = tiny_experiment("multi_ce", ["cityscapes"])
    spelled = json.loads(json.dumps(spec))
    spelled["training"].update(TRAINING_DEFAULTS)
    assert fingerprint(run_spec(spelled)) == fingerprint(run_spec(spec))
    spelled["training"]["crop_fit"] = "shrink"
    assert fingerprint(run_spec(spelled)) != fingerprint(run_spec(spec))
