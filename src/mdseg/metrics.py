"""Segmentation metrics as the field computes them: confusion summed over a split, then IoU."""

from __future__ import annotations

import numpy as np
import torch

from mdseg.io import IGNORE_ID


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[num_classes, num_classes]`` counts (rows: ground truth, columns: prediction).

    Pixels whose ground truth is the ignore id (or outside the class range) are not counted.
    """
    keep = (target != IGNORE_ID) & (target >= 0) & (target < num_classes)
    index = target[keep].long() * num_classes + pred[keep].long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class IoU (NaN where the union is empty), intersections and unions."""
    conf = np.asarray(conf, dtype=np.float64)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, np.nan)
    return iou, inter, union


EMPTY_UNION = ("skip", "zero")


def mean_iou(iou: np.ndarray, empty_union: str = "skip") -> float:
    """Mean of per-class IoUs, where NaN marks a class whose union is empty.

    ``skip`` (the field's usual rule, as MSeg and mmseg) leaves such classes out of the mean;
    ``zero`` counts them as IoU 0, as UniSeg's evaluator does (numpee/UniSeg
    ``evaluators/paper_evaluator.py``: ``inter / (eps + union)`` averaged over every evaluated
    class). NaN if there is nothing to average.
    """
    if empty_union not in EMPTY_UNION:
        raise ValueError(f"empty_union must be one of {EMPTY_UNION}, got {empty_union!r}")
    iou = np.asarray(iou, dtype=np.float64)
    if empty_union == "zero":
        return float(np.nan_to_num(iou, nan=0.0).mean()) if iou.size else float("nan")
    valid = ~np.isnan(iou)
    return float(iou[valid].mean()) if valid.any() else float("nan")
