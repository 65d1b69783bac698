"""Our evaluation results as one tidy frame, and lookups the table builders share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mdseg.experiments import parse_experiment_id, parse_train_set
from mdseg.io import read_json

# the papers' training and unseen datasets, as their tables group them
UNISEG_TRAIN = ["cityscapes", "idd", "bdd", "mapillary"]
# UniSeg Tables 1-2 use the original WildDash (v1); WildDash 2 only fills Table 4
UNISEG_UNSEEN = ["kitti", "wilddash", "camvid"]
AUTOUNISEG_TRAIN = ["cityscapes", "mapillary", "sunrgbd", "bdd", "idd", "ade20k", "coco"]
AUTOUNISEG_UNSEEN = ["wilddash2", "kitti", "camvid", "scannet", "voc", "context"]

COLUMNS = [
    "experiment",
    "method",
    "backbone",
    "train",
    "dataset",
    "variant",
    "miou",
    "miou_all_classes",
    "backbone_init",
    "source",
    "seed",
]


RERUN_TRAINING = "delete it and rerun its train rule"
RERUN_RELATIONS = "delete it and rerun its relations rule"
RESULT_KEYS = ("experiment", "dataset", "backbone_init", "source", "miou")


def load_results(eval_dir: Path) -> pd.DataFrame:
    """One row per ``results/eval/<experiment>/<dataset>.json`` and evaluation variant.

    ``train`` is a frozenset; ``variant`` is "" for the primary result; ``seed`` is the id's
    ``-s<seed>`` (None for a seedless run).
    """
    rows = []
    for path in sorted(Path(eval_dir).glob("*/*.json")):
        result = read_json(path)
        missing = [k for k in RESULT_KEYS if not isinstance(result, dict) or k not in result]
        if missing:
            raise ValueError(
                f"{path}: not an evaluation result, it lacks {missing}; delete it and rerun its "
                "evaluate rule"
            )
        try:
            method, backbone, train, seed = parse_experiment_id(result["experiment"])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        base = {
            "experiment": result["experiment"],
            "method": method,
            "backbone": backbone,
            "train": frozenset(train),
            "dataset": result["dataset"],
            "backbone_init": result["backbone_init"],
            "source": result["source"],
            "seed": seed,
        }
        # the primary mapping has variant "", further ones (e.g. one head, zero-shot) their name
        for variant, scores in [("", result), *result.get("variants", {}).items()]:
            rows.append(
                {
                    **base,
                    "variant": variant,
                    "miou": _number(scores["miou"]),
                    "miou_all_classes": _number(scores.get("miou_all_classes")),
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # object dtype keeps seeds as ints beside None (pandas would make them floats beside NaN)
    frame["seed"] = pd.Series([r["seed"] for r in rows], index=frame.index, dtype=object)
    return frame


def spread(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample std (ddof 1; nan below two values) and count of the finite ``values``."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return np.nan, np.nan, 0
    std = float(np.std(finite, ddof=1)) if len(finite) >= 2 else np.nan
    return float(np.mean(finite)), std, len(finite)


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)


class Results:
    """Lookups of our mIoU by (method, backbone, training set, dataset), and the runs per seed."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def seeds(self) -> list[int | None]:
        """The seeds of our runs, sorted, None (seedless runs) first."""
        found = {None if pd.isna(s) else int(s) for s in self.frame.seed}
        return sorted(found, key=lambda s: (s is not None, s or 0))

    def for_seed(self, seed: int | None) -> Results:
        """Only the runs of ``seed`` (None: the seedless runs)."""
        f = self.frame
        return Results(f[f.seed.isna() if seed is None else f.seed == seed])

    def miou(
        self,
        method: str,
        backbone: str,
        train: frozenset[str],
        dataset: str,
        metric: str = "miou",
        variant: str = "",
    ) -> tuple[float, str]:
        """Our ``metric`` (``miou`` or ``miou_all_classes``) and the experiment behind it.

        ``(nan, "")`` where we did not run it.
        """
        f = self.frame
        hit = f[
            (f.variant == variant)
            & (f.method == method)
            & (f.backbone == backbone)
            & (f.train == train)
            & (f.dataset == dataset)
        ]
        if hit.empty:
            return np.nan, ""
        row = hit.iloc[0]
        return float(row[metric]), row.experiment

    def single_best(self, backbone: str, candidates: list[str], dataset: str) -> tuple[float, str]:
        """Best single-dataset model (trained on one of ``candidates``) on ``dataset``."""
        f = self.frame
        hit = f[
            (f.variant == "")
            & (f.method == "single")
            & (f.backbone == backbone)
            & (f.train.isin([frozenset([c]) for c in candidates]))
            & (f.dataset == dataset)
        ].dropna(subset=["miou"])
        if hit.empty:
            return np.nan, ""
        row = hit.loc[hit.miou.idxmax()]
        return float(row.miou), row.experiment


def train_set(text: str) -> frozenset[str]:
    """``"C+I+B"`` → frozenset of dataset keys (order does not matter for lookups)."""
    return frozenset(parse_train_set(text))
