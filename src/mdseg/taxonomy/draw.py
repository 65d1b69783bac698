"""``taxonomy.png``: the learned bipartite graph between unified nodes and dataset labels.

Drawn as an incidence grid, which stays readable with hundreds of nodes: one row per unified
node, one column per dataset, the dataset label it maps to written in the cell. A label that
several unified nodes map to (a coarse label split into finer nodes) is coloured the same in
all its cells, so many-to-one links stand out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw_taxonomy(taxonomy: dict[str, Any], path: Path) -> Path:
    """Draw ``taxonomy`` (the ``taxonomy.json`` structure) to ``path``."""
    datasets = list(taxonomy["datasets"])
    unified = taxonomy["unified"]
    counts: dict[tuple[str, str], int] = {}
    for node in unified:
        for key, label in node["labels"].items():
            counts[key, label] = counts.get((key, label), 0) + 1
    palette = plt.get_cmap("tab20")
    colours = {lab: palette(i % 20) for i, lab in enumerate(k for k, n in counts.items() if n > 1)}
    rows, cols = len(unified), len(datasets)
    fig, ax = plt.subplots(figsize=(2.0 + 1.9 * cols, 1.0 + 0.22 * rows))
    for y, node in enumerate(unified):
        ax.text(-0.05, y, node["name"], ha="right", va="center", fontsize=7)
        for x, key in enumerate(datasets):
            label = node["labels"].get(key)
            if label is None:
                continue
            colour = colours.get((key, label), (0.88, 0.88, 0.88, 1.0))
            ax.add_patch(plt.Rectangle((x, y - 0.45), 0.96, 0.9, color=colour, lw=0))
            ax.text(x + 0.48, y, label, ha="center", va="center", fontsize=6, clip_on=True)
    ax.set_xlim(-0.1, cols)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks([x + 0.48 for x in range(cols)], datasets, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        f"{rows} unified labels (rows) mapped to dataset labels; shared colour = one label "
        "split over several unified nodes",
        fontsize=9,
        pad=24,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
