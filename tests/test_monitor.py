"""Live metrics of training: the periodic log line, TensorBoard event files, validation.

The runs are tiny in-process CPU runs; pytest captures stderr, which is no terminal, so the
trainer writes plain lines as it does into a job's log file.
"""

from __future__ import annotations

import json
import re
import resource
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_experiment
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mdseg import monitor
from mdseg.methods.multi_ce import MultiCE
from mdseg.monitor import Monitor, duration, size
from mdseg.tables.plots import plot_training_curves
from mdseg.train import train

LINE = re.compile(
    r"^step (?P<step>\d+)/(?P<total>\d+)  loss (?P<loss>[0-9.e+-]+)  lr (?P<lr>\d\.\de[+-]\d\d)"
    r"  data (?P<data>\d+\.\d\d)s  step (?P<time>\d+\.\d\d)s"
    r"  eta (?P<eta>(?:\d+[dhm])?\d+[hms])  mem (?P<mem>\d+(?:\.\d)?)(?P<unit>[KMG])(?P<rest>.*)$"
)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(eta: str) -> int:
    """``1m41s`` -> 101."""
    return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", eta))


def test_durations_and_sizes_read_at_a_glance():
    assert [duration(s) for s in (0.4, 45, 101, 7500, 277200)] == [
        "0s",
        "45s",
        "1m41s",
        "2h05m",
        "3d05h",
    ]
    assert [size(b) for b in (96 * 1024, 884 * 1024**2, 1.2 * 1024**3)] == ["96K", "884M", "1.2G"]


def test_the_line_gives_window_means_an_eta_and_peak_memory(monkeypatch, tmp_path):
    """Four steps of 2 s (0.5 s of it waiting for data) on a fake clock: the line at step 4 of
    10 shows the window's mean loss and times, 6 steps x 2 s to go, and the peak RSS."""
    now = [0.0]
    monkeypatch.setattr(monitor.time, "perf_counter", lambda: now[0])
    lines: list[str] = []
    with Monitor(tmp_path, 10, 0, torch.device("cpu"), 4, False, lines.append) as mon:
        for step in range(1, 5):
            now[0] += 2.0
            row = {"step": step, "loss": float(step), "lr": 0.004, "seconds": 0.0}
            mon.step(row, {"phase": "graph", "dataset_loss": 1 / 3, "absent": None}, 0.5, 2.0)
    [line] = lines
    match = LINE.match(line)
    assert match, line
    assert [match[k] for k in ("step", "total", "loss", "lr")] == ["4", "10", "2.5", "4.0e-03"]
    assert (match["data"], match["time"], match["eta"]) == ("0.50", "2.00", "12s")
    assert match["rest"] == "  phase graph  dataset_loss 0.3333"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert match["unit"] == "G" or abs(float(match["mem"]) * 1024**2 - peak) <= 1024**2
    assert not (tmp_path / "tb").exists()  # tensorboard off


def test_training_writes_a_line_every_log_every_steps(tiny_datasets, tmp_path, capsys):
    spec = tiny_experiment("multi_ce", ["cityscapes", "mapillary"], iterations=6, log_every=2)
    train(spec, tiny_datasets, tmp_path / "run")
    err = capsys.readouterr().err
    assert "\r" not in err  # no progress bar in a file
    matches = [LINE.match(line) for line in err.splitlines() if line.startswith("step ")]
    assert all(matches), err
    assert [int(m["step"]) for m in matches] == [2, 4, 6]
    etas = [seconds(m["eta"]) for m in matches]
    assert etas == sorted(etas, reverse=True) and etas[-1] == 0
    assert all(m["unit"] in "MG" for m in matches)  # a CPU process with torch: megabytes at least
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert float(matches[-1]["loss"]) == pytest.approx(log.loss.iloc[-2:].mean(), rel=1e-3)

    quiet = json.loads(json.dumps(spec))
    quiet["training"].update(log_every=0, tensorboard=False)
    train(quiet, tiny_datasets, tmp_path / "quiet")
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert not (tmp_path / "quiet" / "tb").exists()


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of a TensorBoard folder as (step, value) pairs."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_tensorboard_files_hold_the_run(tiny_datasets, tmp_path):
    spec = tiny_experiment(
        "multi_ce", ["cityscapes", "mapillary"], iterations=6, log_every=2, val_every=3
    )
    spec["training"]["val_images"] = 2
    train(spec, tiny_datasets, tmp_path / "run")
    series = scalars(tmp_path / "run" / "tb")
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert [s for s, _ in series["train/loss"]] == list(log.step)
    np.testing.assert_allclose([v for _, v in series["train/loss"]], log.loss, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in series["train/lr"]], log.lr, rtol=1e-6)
    for tag in ("time/data_s", "time/step_s", "memory/peak_gib"):
        assert [s for s, _ in series[tag]] == [2, 4, 6], tag
    assert all(v > 0 for _, v in series["memory/peak_gib"])
    assert [s for s, _ in series["val/miou"]] == [3, 6]
    np.testing.assert_allclose([v for _, v in series["val/miou"]], log.val_miou.dropna(), 1e-4)
    assert {"val/cityscapes", "val/mapillary"} <= set(series)


def test_a_resumed_run_appends_to_its_tensorboard_events(tiny_datasets, tmp_path, monkeypatch):
    """A run that dies at step 3 after its checkpoint at step 2 left step 3's events behind;
    the rerun resumes at step 2 (with other reporting settings, which do not stop a resume)
    and TensorBoard shows every step once."""

    def die_at_three(self, step, model, run):
        if step == 3:
            raise RuntimeError("node failure")

    spec = tiny_experiment("multi_ce", ["cityscapes"], iterations=5, checkpoint_every=2)
    out = tmp_path / "run"
    monkeypatch.setattr(MultiCE, "before_step", die_at_three)
    with pytest.raises(RuntimeError, match="node failure"):
        train(spec, tiny_datasets, out)
    monkeypatch.undo()
    assert [s for s, _ in scalars(out / "tb")["train/loss"]] == [1, 2, 3]

    spec["training"].update(log_every=1, val_every=5, val_images=1)
    train(spec, tiny_datasets, out)
    series = scalars(out / "tb")
    assert [s for s, _ in series["train/loss"]] == [1, 2, 3, 4, 5]
    assert [s for s, _ in series["time/step_s"]] == [3, 4, 5]
    assert {"val/miou", "val/cityscapes"} <= set(series) and "val/mapillary" not in series
    log = pd.read_csv(out / "train_log.csv")
    np.testing.assert_allclose([v for _, v in series["train/loss"]], log.loss, rtol=1e-6)


@pytest.mark.parametrize("method", ["multi_ce", "autouniseg"])
def test_validation_is_logged_and_leaves_the_weights_unchanged(
    method, tiny_datasets, tmp_path, capsys
):
    """val_miou every val_every steps (NaN elsewhere; AutoUniSeg can score only once its
    unified label space exists, after stage 1's 4 steps) and the same final weights as a run
    without validation: RNG state and module modes are restored around it."""
    from test_autouniseg import _experiment, _write_features

    from mdseg.data import SplitDataset

    if method == "autouniseg":
        classes = {k: SplitDataset(d, "train").classes for k, d in tiny_datasets.items()}
        features = _write_features(tmp_path / "features.pt", classes)
        spec = _experiment(list(tiny_datasets))
    else:
        features = None
        spec = tiny_experiment(method, list(tiny_datasets), iterations=12, flip=True)
        spec["training"]["scale_range"] = [0.75, 1.25]
    plain = train(spec, tiny_datasets, tmp_path / "plain", text_features=features)
    capsys.readouterr()
    spec["training"].update(val_every=2, val_images=3)
    watched = train(spec, tiny_datasets, tmp_path / "watched", text_features=features)

    lines = [ln for ln in capsys.readouterr().err.splitlines() if " val mIoU " in ln]
    by_step = {int(re.match(r"step (\d+)/12", ln)[1]): ln for ln in lines}
    assert list(by_step) == [2, 4, 6, 8, 10, 12]
    log = pd.read_csv(tmp_path / "watched" / "train_log.csv")
    scored = [6, 8, 10, 12] if method == "autouniseg" else [2, 4, 6, 8, 10, 12]
    assert list(log.step[log.val_miou.notna()]) == scored
    assert log.val_miou.dropna().between(0, 100).all()
    assert all("(3+3 images" in by_step[step] for step in scored)  # val_images of each
    a = torch.load(plain, weights_only=False)
    b = torch.load(watched, weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert str(a["method_state"]) == str(b["method_state"])
    plain_log = pd.read_csv(tmp_path / "plain" / "train_log.csv")
    pd.testing.assert_series_equal(plain_log.loss, log.loss)
    # the curves figure gets a third panel, the validation mIoU
    plot_training_curves(spec["id"], plain_log, tmp_path / "plain.png")
    plot_training_curves(spec["id"], log, tmp_path / "watched.png")
    widths = [Image.open(tmp_path / f"{n}.png").width for n in ("plain", "watched")]
    assert widths[1] == pytest.approx(1.5 * widths[0], rel=0.01)
