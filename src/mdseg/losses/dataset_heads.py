"""One loss per dataset over its own block of logit channels: Multi-SegHead and AutoUniSeg.

Each sample is scored only on its own dataset's channels. As AutoUniSeg's authors train every
stage: each dataset's OHEM cross-entropy (:mod:`mdseg.losses.cross_entropy`) scaled by a
per-dataset weight (``loss_weight_dict`` in ``auto_uni_seg/HRNetv2_model.py``) and summed
(detectron2 sums the loss dict). Plain cross-entropy averaged over every labelled pixel of the
batch is this project's former loss (``loss: ce``, ``loss_reduction: pixel_mean``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID
from mdseg.losses.cross_entropy import ohem_cross_entropy, ohem_kept

KINDS = ("ohem", "ce")
REDUCTIONS = ("sum_of_datasets", "pixel_mean")
# per-dataset loss weights of AutoUniSeg's authors (``loss_weight_dict``): stages 1 and 2 in
# auto_uni_seg/HRNetv2_model.py, stage 3 in auto_uni_seg/HRNetv2_model_finetune.py; others 1
AUTHORS_WEIGHTS = {"mapillary": 3.0, "ade20k": 15.0, "coco": 15.0}
AUTHORS_FINETUNE_WEIGHTS = {"mapillary": 3.0, "ade20k": 3.0, "coco": 3.0}


def _block_sum(
    block: torch.Tensor, labels: torch.Tensor, kind: str, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and the number of pixels it sums, for one dataset's samples and block."""
    if kind == "ce":
        total = F.cross_entropy(block, labels, ignore_index=IGNORE_ID, reduction="sum")
        return total, (labels != IGNORE_ID).sum()
    hard = ohem_kept(block, labels, threshold, 1 / 16)
    return hard.sum(), torch.tensor(hard.numel(), device=block.device)


def dataset_losses(
    logits: torch.Tensor,
    labels: torch.Tensor,
    dataset_idx: torch.Tensor,
    offsets: list[int],
    *,
    kind: str = "ohem",
    threshold: float = 0.7,
    weights: list[float] | None = None,
    reduction: str = "sum_of_datasets",
) -> torch.Tensor:
    """Each sample's loss over its own dataset's channels ``offsets[d]:offsets[d + 1]``.

    ``logits [B, C, H, W]`` are at the labels' resolution; sample b belongs to dataset
    ``dataset_idx[b]``. ``kind``: ``"ohem"`` (authors, :func:`ohem_cross_entropy`) or ``"ce"``
    (plain cross-entropy, the former loss). ``weights[d]`` scales dataset d's loss (the
    authors' ``loss_weight_dict``; ``None``: all 1). ``reduction``:

    - ``"sum_of_datasets"`` (authors): the sum over the datasets present of
      ``weights[d] * (dataset d's mean loss)``, each dataset's OHEM applied on its own.
    - ``"pixel_mean"`` (former, ``own_head_loss``): the weighted sum of every kept pixel's loss
      (every labelled pixel for ``"ce"``, the hard ones for ``"ohem"``) over the number kept,
      as one loss over the whole batch.
    """
    if kind not in KINDS:
        raise ValueError(f"dataset loss kind: expected one of {KINDS}, got {kind!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"dataset loss reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    n_datasets = len(offsets) - 1
    if weights is not None and len(weights) != n_datasets:
        raise ValueError(
            f"dataset loss weights: expected one per dataset ({n_datasets}), got {len(weights)}"
        )
    total = logits.new_zeros(())
    count = torch.zeros((), dtype=torch.long, device=logits.device)
    for d in dataset_idx.unique().tolist():
        rows = dataset_idx == d
        block = logits[rows, offsets[d] : offsets[d + 1]]
        weight = 1.0 if weights is None else weights[d]
        if reduction == "sum_of_datasets":
            if kind == "ohem":
                mean = ohem_cross_entropy(block, labels[rows], threshold)
            else:
                summed, kept = _block_sum(block, labels[rows], kind, threshold)
                mean = summed / kept.clamp(min=1)
            total = total + weight * mean
        else:
            summed, kept = _block_sum(block, labels[rows], kind, threshold)
            total = total + weight * summed
            count = count + kept
    if reduction == "pixel_mean":
        return total / count.clamp(min=1)
    return total


@dataclass(frozen=True)
class HeadLoss:
    """How per-dataset heads are trained (:func:`dataset_losses`); the loss fields of the
    ``method_options`` of ``multi_head`` and ``autouniseg``, which extend this class.

    Args:
        loss (str, default "ohem"): ``ohem``, the authors' loss (``ohem_ce_loss.py``), or
            ``ce``, plain cross-entropy (the former loss).
        ohem_threshold (float, default 0.7): a pixel is hard when its true class's probability
            is below this (authors: ``LOSS.OHEM_THRESH``).
        dataset_weights (dict[str, float], default AUTHORS_WEIGHTS): each dataset's loss times
            this, missing keys 1 (authors: ``loss_weight_dict``, ``HRNetv2_model.py``).
        loss_reduction (str, default "sum_of_datasets"): each dataset's mean loss, weighted and
            summed, as detectron2 sums the authors' loss dict; ``pixel_mean``: one mean over
            every kept pixel (former).
    """

    loss: str = "ohem"
    ohem_threshold: float = 0.7
    dataset_weights: dict[str, float] = field(default_factory=lambda: dict(AUTHORS_WEIGHTS))
    loss_reduction: str = "sum_of_datasets"

    def __call__(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
        offsets: list[int],
        datasets: list[str],
        weights: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Each sample's loss over its own dataset's block of ``logits`` channels; ``weights``
        replaces ``dataset_weights`` (AutoUniSeg's stage 3)."""
        table = self.dataset_weights if weights is None else weights
        return dataset_losses(
            logits,
            labels,
            dataset_idx,
            offsets,
            kind=self.loss,
            threshold=self.ohem_threshold,
            weights=[float(table.get(d, 1.0)) for d in datasets],
            reduction=self.loss_reduction,
        )
