"""Segmentation losses: OHEM cross-entropy and one loss per dataset over its own logit block.

The authors of AutoUniSeg train every stage, Multi-SegHead included, with OHEM cross-entropy
(``auto_uni_seg/modeling/loss/ohem_ce_loss.py``, ``OhemCELoss``, ``LOSS.OHEM_THRESH: 0.7``),
one loss per dataset over that dataset's logits, scaled by a per-dataset weight
(``loss_weight_dict`` in ``auto_uni_seg/HRNetv2_model.py``) and summed (detectron2 sums the loss
dict). Plain cross-entropy averaged over every labelled pixel of the batch is the former loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID

KINDS = ("ohem", "ce")
REDUCTIONS = ("sum_of_datasets", "pixel_mean")


def _ohem_kept(
    logits: torch.Tensor, labels: torch.Tensor, threshold: float, min_fraction: float
) -> torch.Tensor:
    """The per-pixel losses OHEM keeps, as ``OhemCELoss.forward`` selects them.

    Pixels whose cross-entropy exceeds ``-log(threshold)`` (a predicted probability of the true
    class below ``threshold``); if fewer than ``floor(valid pixels * min_fraction)``, that
    many largest losses of all pixels, ignored ones (loss 0) included, as their ``topk`` does.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"OHEM threshold: expected a probability in (0, 1), got {threshold}")
    loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_ID, reduction="none").flatten()
    # as theirs: -log of the float32 threshold, compared in the logits' dtype
    thresh = -torch.log(torch.tensor(threshold, dtype=torch.float32)).to(loss.dtype)
    n_min = math.floor(int((labels != IGNORE_ID).sum()) * min_fraction)
    hard = loss[loss > thresh.to(loss.device)]
    if hard.numel() < n_min:
        hard = loss.topk(n_min).values
    return hard


def ohem_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    threshold: float = 0.7,
    min_fraction: float = 1 / 16,
) -> torch.Tensor:
    """OHEM cross-entropy of ``logits [B, C, H, W]`` against ``labels [B, H, W]``.

    The mean of the kept losses (see :func:`_ohem_kept`); ``IGNORE_ID`` pixels have loss 0.
    When nothing is kept (no labelled pixel, or fewer than ``1 / min_fraction`` and none hard)
    the result is 0 with a gradient, where the authors' ``torch.mean`` of nothing gives NaN.
    """
    hard = _ohem_kept(logits, labels, threshold, min_fraction)
    if hard.numel() == 0:
        return logits.sum() * 0.0
    return hard.mean()


def _block_sum(
    block: torch.Tensor, labels: torch.Tensor, kind: str, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed loss and the number of pixels it sums, for one dataset's samples and block."""
    if kind == "ce":
        total = F.cross_entropy(block, labels, ignore_index=IGNORE_ID, reduction="sum")
        return total, (labels != IGNORE_ID).sum()
    hard = _ohem_kept(block, labels, threshold, 1 / 16)
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
