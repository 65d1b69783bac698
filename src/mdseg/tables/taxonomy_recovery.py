"""``results/tables/taxonomy_recovery.csv``: learned label relations against the hidden truth.

One row per run that learns relations: C-R BCE's generated multi-labels (``relations.csv``,
scored on pairs of differently named labels, since the union by name already joins equal
names) and AutoUniSeg's unified nodes (``taxonomy.json``, scored on every cross-dataset pair).
AutoUniSeg runs add a row per merge computed at the stage switch (``merges.json``): the
paper's UniDet merge (``autouniseg_merge_unidet``) and the text-assisted one
(``autouniseg_merge_text_assisted``), whichever of them the run trained from.
Each is preceded by what joining labels by equal name alone gets on the same datasets, the
baseline a learned taxonomy has to beat. Only the synthetic benchmark has a hidden truth; on
real data the table is empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mdseg.taxonomy.recovery import (
    load_truths,
    pair,
    relation_pairs,
    score,
    truth_pairs,
    unified_pairs,
)

COLUMNS = [
    "method",
    "experiment",
    "precision",
    "recall",
    "f1",
    "predicted_pairs",
    "true_pairs",
    "correct_pairs",
    "scored_on",
]


def _name_pairs(truths: dict[str, dict[str, list[str]]]) -> set:
    """Pairs a union by exact name joins: equally named labels of two datasets."""
    keys = sorted(truths)
    return {
        pair((a, name), (b, name))
        for i, a in enumerate(keys)
        for b in keys[i + 1 :]
        for name in set(truths[a]) & set(truths[b])
    }


def recovery_table(models_dir: Path, datasets_dir: Path) -> pd.DataFrame:
    rows = []
    runs = [("cr_bce", p, False) for p in sorted(Path(models_dir).glob("*/relations.csv"))] + [
        ("autouniseg", p, True) for p in sorted(Path(models_dir).glob("*/taxonomy.json"))
    ]
    for method, path, same_name in runs:
        spec = json.loads((path.parent / "experiment.json").read_text())
        try:
            truths = load_truths(datasets_dir, spec["train"])
        except FileNotFoundError:  # real data: no hidden truth to score against
            continue
        truth = truth_pairs(truths, same_name=same_name)
        scored_on = "all cross-dataset pairs" if same_name else "pairs of different names"
        if same_name:
            rows.append(
                {
                    "method": "equal_names",
                    "experiment": spec["id"],
                    **score(_name_pairs(truths), truth),
                    "scored_on": scored_on,
                }
            )
        merges = path.parent / "merges.json"
        if same_name and merges.exists():
            for name, taxonomy in json.loads(merges.read_text()).items():
                if name == "used":
                    continue
                rows.append(
                    {
                        "method": f"autouniseg_merge_{name}",
                        "experiment": spec["id"],
                        **score(unified_pairs(taxonomy), truth),
                        "scored_on": scored_on,
                    }
                )
        predicted = (
            unified_pairs(json.loads(path.read_text())) if same_name else relation_pairs(path)
        )
        rows.append(
            {
                "method": method,
                "experiment": spec["id"],
                **score(predicted, truth),
                "scored_on": scored_on,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
