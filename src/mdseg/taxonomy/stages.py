"""``stages.csv`` and ``stages.png``: AutoUniSeg's run phase by phase.

One row per phase (stage 1, each graph and segmentation phase of stage 2, stage 3): its steps,
the dataset loss (without the orthogonality term) at its first and last step and on average, and
at its start the median and 95th percentile of the pairwise cosine of the unified node
embeddings (a collapsed graph has every pair near 1), the active nodes and the links of the
mapping. The loss comes from ``train_log.csv``'s ``dataset_loss`` column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mdseg.io import read_table

COLUMNS = [
    "phase",
    "start",
    "end",
    "first_loss",
    "last_loss",
    "mean_loss",
    "cosine_median",
    "cosine_p95",
    "nodes",
    "links",
]


def stages_table(stages: list[dict[str, Any]], log: pd.DataFrame) -> pd.DataFrame:
    """The phases of ``stages`` (the method's records, stage 1 added in front) with losses
    from ``log`` (the run's ``train_log.csv``)."""
    last = int(log["step"].max())
    rows = [{"phase": "multi_head", "start": 0}, *stages]
    out = []
    for row, after in zip(rows, [*rows[1:], {"start": last}], strict=True):
        # log row "step" s is the step with index s - 1
        span = log[(log["step"] > row["start"]) & (log["step"] <= after["start"])]
        loss = span["dataset_loss"].dropna() if "dataset_loss" in span else span["loss"]
        out.append(
            {
                **row,
                "end": after["start"],
                "first_loss": loss.iloc[0] if len(loss) else None,
                "last_loss": loss.iloc[-1] if len(loss) else None,
                "mean_loss": round(loss.mean(), 6) if len(loss) else None,
            }
        )
    return pd.DataFrame(out).reindex(columns=COLUMNS)


def plot_stages(runs: dict[str, pd.DataFrame], logs: dict[str, pd.DataFrame], path: Path) -> Path:
    """Per run (``runs``: its ``stages.csv`` table, ``logs``: its ``train_log.csv``): the
    dataset loss per step with the phases shaded, and the node embeddings' pairwise cosine at
    each switch (median and 95th percentile; near 1 = a collapsed graph)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"multi_head": "#dddddd", "graph": "#cfe2f3", "segmentation": "#fce5cd"}
    if not runs:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no AutoUniSeg run in this configuration", ha="center", va="center")
        ax.set_axis_off()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return Path(path)
    fig, axes = plt.subplots(
        2 * len(runs), 1, figsize=(8, 4.2 * len(runs)), sharex=False, squeeze=False
    )
    for k, (name, table) in enumerate(runs.items()):
        ax_loss, ax_cos = axes[2 * k, 0], axes[2 * k + 1, 0]
        log = logs[name]
        for _, row in table.iterrows():
            for ax in (ax_loss, ax_cos):
                ax.axvspan(row["start"], row["end"], color=colours.get(row["phase"], "#d9ead3"))
        column = "dataset_loss" if "dataset_loss" in log else "loss"
        ax_loss.plot(log["step"], log[column], lw=0.8, color="black")
        ax_loss.set_ylabel("dataset loss")
        ax_loss.set_title(
            f"{name}\nstage 1 grey, graph blue, segmentation orange, stage 3 green", fontsize=9
        )
        switches = table.dropna(subset=["cosine_p95"])
        ax_cos.plot(switches["start"], switches["cosine_p95"], "o-", label="95th percentile")
        ax_cos.plot(switches["start"], switches["cosine_median"], "s--", label="median")
        ax_cos.set_ylim(-1.05, 1.05)
        ax_cos.set_ylabel("node cosine at switch")
        ax_cos.set_xlabel("step")
        ax_cos.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


_RERUN = "delete it and rerun its train rule"


def collect_stages(models_dir: Path) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Every run's ``stages.csv`` and ``train_log.csv`` under ``models_dir``, by experiment."""
    runs, logs = {}, {}
    for path in sorted(Path(models_dir).glob("*/stages.csv")):
        runs[path.parent.name] = read_table(path, _RERUN)
        logs[path.parent.name] = read_table(path.parent / "train_log.csv", _RERUN)
    return runs, logs


def stages_summary(models_dir: Path, out_dir: Path) -> list[Path]:
    """``autouniseg_stages.csv`` (every run's phases, with an ``experiment`` column) and
    ``autouniseg_stages.png`` in ``out_dir``."""
    runs, logs = collect_stages(models_dir)
    frames = [t.assign(experiment=name) for name, t in runs.items()]
    table = pd.concat(frames) if frames else pd.DataFrame(columns=COLUMNS)
    csv = Path(out_dir) / "autouniseg_stages.csv"
    table.reindex(columns=["experiment", *COLUMNS]).to_csv(csv, index=False)
    return [csv, plot_stages(runs, logs, Path(out_dir) / "autouniseg_stages.png")]
