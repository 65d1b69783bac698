"""Faults outside the input: a process killed during a checkpoint write, and the error boundary.

A ``kill -9`` cannot be caught, so only the write order protects the run: the checkpoint is
written beside its final name and renamed (``mdseg.io.atomic_path``). The killed write must
leave the previous checkpoint usable, and the rerun must end where an uninterrupted run ends.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import torch
from conftest import tiny_experiment

from mdseg.cli import main
from mdseg.io import write_json

KILLED_WRITE = textwrap.dedent(
    """
    import io, sys, time
    import torch
    from mdseg import cli, train
    from mdseg.io import atomic_path

    calls = 0
    whole = train.save_torch

    def save_then_hang_on_the_third(obj, path):
        global calls
        calls += 1
        if calls < 3:
            return whole(obj, path)
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        data = buffer.getvalue()
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            print("HALF-WRITTEN", flush=True)
            time.sleep(600)

    train.save_torch = save_then_hang_on_the_third
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def _argv(spec: Path, datasets: Path, out: Path) -> list[str]:
    return ["train", "--experiment", str(spec), "--datasets-dir", str(datasets), "--out", str(out)]


def test_kill_during_a_checkpoint_write_keeps_the_previous_one(
    tmp_path: Path, tiny_datasets: dict[str, Path]
) -> None:
    experiment = tiny_experiment("multi_ce", ["cityscapes"], iterations=5, checkpoint_every=1)
    spec = tmp_path / "experiment.json"
    write_json(spec, experiment)
    killed, whole = tmp_path / "killed", tmp_path / "whole"

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITE, *_argv(spec, tmp_path, killed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the third checkpoint (step 3) is half on disk
        if line.startswith("HALF-WRITTEN"):
            os.kill(proc.pid, signal.SIGKILL)
            break
    assert proc.wait(timeout=60) == -signal.SIGKILL

    checkpoint = killed / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    assert len(list(killed.glob(".checkpoint.pt.*.part"))) == 1  # the killed write's remains
    assert not (killed / "model.pt").exists()

    assert main(_argv(spec, tmp_path, killed)) == 0  # resumes from step 2, clears the remains
    assert not list(killed.glob(".*.part"))
    assert main(_argv(spec, tmp_path, whole)) == 0
    resumed = torch.load(killed / "model.pt", weights_only=False)["state_dict"]
    uninterrupted = torch.load(whole / "model.pt", weights_only=False)["state_dict"]
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key


def test_debug_shows_the_traceback(tmp_path: Path, capsys: Any) -> None:
    spec = tmp_path / "experiment.json"
    spec.write_text("{")
    argv = ["train", "--experiment", str(spec), "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    assert "Traceback" not in capsys.readouterr().err
    try:
        main(["--debug", *argv])
    except ValueError as err:
        assert str(spec) in str(err)
    else:
        raise AssertionError("--debug should let the error through with its traceback")


def test_an_unexpected_error_says_how_to_see_it(monkeypatch: Any, capsys: Any) -> None:
    def broken(_: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("mdseg.cli._plan", broken)
    assert main(["plan", "--config", "x.json"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "mdseg plan: error: ZeroDivisionError: division by zero (unexpected; rerun with --debug "
        "for the traceback, and please report it)"
    )


def test_a_signal_after_the_last_step_keeps_the_checkpoint(
    tmp_path: Path, tiny_datasets: dict[str, Path], monkeypatch: Any
) -> None:
    """SLURM's warning can land after the last step: the job still fails (Snakemake in the job
    counts the signal) and loses its outputs, so the checkpoint must survive for the retry."""
    from mdseg import train

    experiment = tiny_experiment("multi_ce", ["cityscapes"], iterations=3, checkpoint_every=1)
    spec = tmp_path / "experiment.json"
    write_json(spec, experiment)
    out = tmp_path / "run"
    whole = train._write_model

    def signalled_then_written(t: Any) -> Path:
        os.kill(os.getpid(), signal.SIGTERM)  # caught: training's handler is still installed
        return whole(t)

    monkeypatch.setattr(train, "_write_model", signalled_then_written)
    assert main(_argv(spec, tmp_path, out)) == 0
    first = (out / "model.pt").read_bytes()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    (out / "model.pt").unlink()  # what Snakemake does to a failed job's outputs
    monkeypatch.setattr(train, "_write_model", whole)
    assert main(_argv(spec, tmp_path, out)) == 0  # the retry: no step to run, same model
    assert not (out / "checkpoint.pt").exists()
    again = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    for key, value in torch.load(io.BytesIO(first), weights_only=False)["state_dict"].items():
        assert torch.equal(again[key], value), key
