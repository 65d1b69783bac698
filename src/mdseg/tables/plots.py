"""Grouped bars of the paper's number beside ours, one panel per table column."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mdseg.io import atomic_path

LABEL_COLUMNS = ("train_datasets", "trained", "method_label", "model", "method", "backbone")


def plot_paper_vs_ours(table: pd.DataFrame, dimension: str | None, title: str, path: Path) -> None:
    """One horizontal bar pair (paper, ours) per row, one panel per value of ``dimension``."""
    facet = dimension or next(c for c in ("metric", "eval_set") if c in table.columns)
    panels = list(dict.fromkeys(table[facet]))
    label_cols = [c for c in LABEL_COLUMNS if c in table.columns]
    if "method_label" in label_cols and "method" in label_cols:
        label_cols.remove("method")
    first = table[table[facet] == panels[0]]
    height = max(2.5, 0.32 * len(first) + 1.2)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.2 * len(panels) + 2.5, height), sharey=True, squeeze=False
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        part = table[table[facet] == panel]
        labels = [" · ".join(str(r[c]) for c in label_cols) for _, r in part.iterrows()]
        y = np.arange(len(part))
        ax.barh(y - 0.2, part.paper.fillna(0), height=0.4, label="paper", color="#9aa5b1")
        ax.barh(y + 0.2, part.ours.fillna(0), height=0.4, label="ours", color="#d1495b")
        for yi, missing in zip(y, part.ours.isna(), strict=True):
            if missing:
                ax.text(0.5, yi + 0.2, "not run", va="center", fontsize=6, color="#555")
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(str(panel), fontsize=9)
        ax.set_xlabel("mIoU (%)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # the y axis is shared: invert once so rows read top-down
    axes[0][-1].legend(fontsize=7, loc="lower right")
    source = table["benchmark"].iloc[0] if "benchmark" in table else ""
    fig.suptitle(f"{title}: paper vs ours ({source} benchmark)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_training_curves(logs: dict[str, pd.DataFrame], path: Path) -> None:
    """Loss per step of every experiment (smoothed over 10 steps), one line each."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, log in sorted(logs.items()):
        ax.plot(log.step, log.loss.rolling(10, min_periods=1).mean(), label=name, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (10-step mean)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
