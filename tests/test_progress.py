"""Progress in a job's log file: periodic plain lines (no ``\\r``), with share, rate and ETA."""

from __future__ import annotations

import io

from mdseg.progress import LogProgress, progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_period_then_a_final_one():
    clock, out = Clock(), io.StringIO()
    with LogProgress(
        4 * 1024**3, "coco.zip", unit="B", unit_scale=True, every=30, stream=out, clock=clock
    ) as bar:
        for _ in range(4):
            clock.now += 10
            bar.update(256 * 1024**2)  # 25.6 MiB/s
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines == [
        "coco.zip: 768M of 4.0G (19%)  26M/s  eta 2m10s",
        "coco.zip: 1.0G of 4.0G (25%)  26M/s  done in 40s",
    ]


def test_counts_without_a_total():
    clock, out = Clock(), io.StringIO()
    bar = LogProgress(None, "convert", unit="map", every=5, stream=out, clock=clock)
    clock.now = 6
    bar.update(3)
    bar.close()
    bar.close()  # closing twice writes one final line
    assert out.getvalue().splitlines() == [
        "convert: 3 map  0.5 map/s",
        "convert: 3 map  0.5 map/s  done in 6s",
    ]


def test_off_a_terminal_progress_writes_lines(capsys):
    with progress(3, "evaluate kitti", unit="img", initial=1) as bar:
        bar.update(2)
    err = capsys.readouterr().err
    assert err.startswith("evaluate kitti: 3 img of 3 img (100%)") and "\r" not in err
