"""Taxonomy recovery: learned label relations scored against the synthetic benchmark's truth.

Every synthetic label is a set of hidden fine classes (``truth.json`` beside the manifest). Two
labels of different datasets are truly related when their fine-class sets intersect (Cityscapes
``rider`` and Mapillary ``bicyclist``; ``road`` and ``road``). A method's relations are pairs of
dataset labels: AutoUniSeg relates the labels that share a unified node, UniSeg's C-R BCE the
multi-label pairs it generated. Precision and recall are taken over unordered pairs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

Label = tuple[str, str]  # (dataset key, class name)
Pair = frozenset[Label]


def pair(a: Label, b: Label) -> Pair:
    if a[0] == b[0]:
        raise ValueError(f"a relation joins labels of two datasets, got {a} and {b}")
    return frozenset((a, b))


def load_truths(datasets_dir: Path, keys: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """``{dataset: {label: fine classes}}`` from each dataset's ``truth.json``."""
    truths = {}
    for key in keys:
        path = Path(datasets_dir) / key / "truth.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no hidden truth (only synthetic datasets have one)")
        truths[key] = json.loads(path.read_text())["labels"]
    return truths


def truth_pairs(
    truths: Mapping[str, Mapping[str, Iterable[str]]], *, same_name: bool = True
) -> set[Pair]:
    """Pairs of labels from different datasets whose fine-class sets intersect.

    ``same_name=False`` leaves out pairs of equally named labels, which a union of label spaces
    by name already joins (UniSeg's multi-labels only add relations between different names).
    """
    found = set()
    for (ka, la), (kb, lb) in combinations(sorted(truths.items()), 2):
        for name_a, fine_a in la.items():
            for name_b, fine_b in lb.items():
                if set(fine_a) & set(fine_b) and (same_name or name_a != name_b):
                    found.add(pair((ka, name_a), (kb, name_b)))
    return found


def unified_pairs(taxonomy: Mapping[str, Any]) -> set[Pair]:
    """Pairs of dataset labels that share a unified node of an AutoUniSeg ``taxonomy.json``."""
    found = set()
    for node in taxonomy["unified"]:
        labels = sorted(node["labels"].items())
        found.update(pair(a, b) for a, b in combinations(labels, 2))
    return found


def relation_pairs(relations_csv: Path) -> set[Pair]:
    """Pairs from C-R BCE's ``relations.csv`` (a pixel of one label is also the other)."""
    with open(relations_csv, newline="") as fh:
        return {
            pair((r["dataset"], r["class"]), (r["related_dataset"], r["related_class"]))
            for r in csv.DictReader(fh)
        }


def score(predicted: set[Pair], truth: set[Pair]) -> dict[str, float | int]:
    """Precision, recall and F1 of ``predicted`` against ``truth`` (0 where undefined)."""
    correct = len(predicted & truth)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "predicted_pairs": len(predicted),
        "true_pairs": len(truth),
        "correct_pairs": correct,
    }
