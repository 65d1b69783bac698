"""Grouped bars of the paper's number beside ours (one panel per table column), each
experiment's training curves, and the claims summary (each claim's gap over seeds with its
verdict)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mdseg.io import atomic_path

LABEL_COLUMNS = ("train_datasets", "trained", "method_label", "model", "method", "backbone")


def plot_paper_vs_ours(table: pd.DataFrame, dimension: str | None, title: str, path: Path) -> None:
    """One horizontal bar pair (paper, ours) per row, one panel per value of ``dimension``;
    ours carries an error bar (std over seeds) where 2+ seeds gave a value."""
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
        spread = part.ours_std.notna().to_numpy() if "ours_std" in part else np.zeros(len(y), bool)
        if spread.any():
            ax.errorbar(
                part.ours[spread],
                y[spread] + 0.2,
                xerr=part.ours_std[spread],
                fmt="none",
                ecolor="#333",
                elinewidth=0.8,
                capsize=2,
                label="ours ± std over seeds",
            )
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


def plot_training_curves(name: str, log: pd.DataFrame, path: Path) -> None:
    """One experiment's ``train_log.csv``: the loss per step (faint) and its 10-step mean, the
    learning rate, and the validation mIoU where it was scored (``training.val_every``)."""
    val = log["val_miou"].dropna() if "val_miou" in log else pd.Series(dtype=float)
    panels = 3 if len(val) else 2
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 2.6))
    loss, lr = axes[0], axes[1]
    loss.plot(log.step, log.loss, lw=0.6, alpha=0.35, color="#d1495b")
    loss.plot(log.step, log.loss.rolling(10, min_periods=1).mean(), lw=1.2, color="#d1495b")
    loss.set_title("training loss (per step, 10-step mean)", fontsize=8)
    lr.plot(log.step, log.lr, lw=1.2, color="#30638e")
    lr.set_title("learning rate", fontsize=8)
    if len(val):
        axes[2].plot(log.step[val.index], val, marker="o", ms=3, lw=1.2, color="#2e8540")
        axes[2].set_title("validation mIoU (%, subset)", fontsize=8)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(name, fontsize=9)
    # a fixed layout and linear axes: tight_layout and log ticks measure every tick label,
    # which cost more than half of a figure (one per experiment, in the tables job)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.18, top=0.8, wspace=0.28)
    _save(fig, path)


VERDICT_COLOURS = {
    "holds": "#2e8540",
    "reversed": "#d1495b",
    "within noise": "#e69f00",
    "not run": "#9aa5b1",
}


def plot_claims(claims: pd.DataFrame, path: Path) -> None:
    """One row per claim: the mean per-seed gap, ± 2 SE where 2+ seeds, coloured by verdict,
    with the verdict written beside; relation claims (no gap) show the verdict only."""
    height = 0.5 * len(claims) + 1.6
    fig, ax = plt.subplots(figsize=(10, height))
    y = np.arange(len(claims))
    gaps = claims.gap_mean.to_numpy(dtype=float)
    bars = np.where(claims.seeds >= 2, 2 * claims.gap_se.to_numpy(dtype=float), np.nan)
    reach = np.nanmax(
        np.abs(np.concatenate([gaps + np.nan_to_num(bars), gaps - np.nan_to_num(bars)])),
        initial=1.0,
    )
    for yi, (_, row), gap, bar in zip(y, claims.iterrows(), gaps, bars, strict=True):
        colour = VERDICT_COLOURS[row.verdict]
        if np.isfinite(gap):
            ax.errorbar(
                gap, yi, xerr=bar if np.isfinite(bar) else None, fmt="o", color=colour, capsize=3
            )
        elif row.seeds:  # a relation claim: generated or not per seed, no gap to draw
            ax.text(
                0,
                yi,
                " a relation: generated or not per seed, no gap",
                va="center",
                fontsize=7,
                color=colour,
            )
        text = row.verdict if row.seeds == 0 else f"{row.verdict} (n={row.seeds})"
        ax.text(
            1.02,
            yi,
            text,
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=8,
            color=colour,
        )
    ax.axvline(0, color="#555", lw=0.8)
    ax.set_xlim(-1.15 * reach, 1.15 * reach)
    labels = [textwrap.fill(f"{r.paper}: {r.claim}", 50) for r in claims.itertuples()]
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("gap in mIoU points (mean over seeds, ± 2 SE)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    source = claims["benchmark"].iloc[0] if "benchmark" in claims else ""
    ax.set_title(f"Claims: per-seed gaps and verdicts ({source} benchmark)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
