"""Whether a run's training loss has levelled off, so a claim can say it rests on one that has not.

The test fits a least-squares line to the loss over the last ``fraction`` of the steps and reads
its relative drop: (fitted loss at the window's first step - at its last) / the window's mean
loss. A run has converged when that drop is below ``threshold`` (a rising or flat loss has
converged too: it is no longer falling). A line rather than the first and last losses keeps the
per-step noise of small batches out of the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_WINDOW = 10


def convergence(
    losses: Sequence[float], fraction: float = 0.2, threshold: float = 0.05
) -> dict[str, Any]:
    """``converged`` (None when the window has fewer than 10 steps), ``relative_drop``,
    ``window_steps``, ``threshold`` and ``rule``, the test in one line, for one loss per step."""
    if not 0 < fraction <= 1:
        raise ValueError(f"convergence: fraction must be in (0, 1], got {fraction}")
    if threshold <= 0:
        raise ValueError(f"convergence: threshold must be > 0, got {threshold}")
    steps = len(losses)
    window = round(fraction * steps)
    result: dict[str, Any] = {
        "converged": None,
        "relative_drop": None,
        "window_steps": window,
        "threshold": threshold,
    }
    if window < MIN_WINDOW:
        rule = (
            f"no verdict: the last {fraction * 100:g}% of {steps} steps is {window} steps, "
            f"fewer than the {MIN_WINDOW} a fitted line needs"
        )
        return {**result, "rule": rule}
    y = np.asarray(losses[steps - window :], dtype=np.float64)
    mean = float(y.mean())
    if mean <= 0:
        rule = f"no verdict: the mean loss over the last {window} steps is {mean}, not > 0"
        return {**result, "rule": rule}
    slope, _ = np.polyfit(np.arange(window, dtype=np.float64), y, 1)
    # the fitted line falls by -slope per step over the window's window - 1 steps
    drop = float(-slope * (window - 1) / mean)
    rule = (
        f"converged if a least-squares line through the loss over the last {fraction * 100:g}% of "
        f"steps ({window} of {steps}) falls by less than {threshold * 100:g}% of its mean loss"
    )
    return {**result, "converged": drop < threshold, "relative_drop": drop, "rule": rule}
