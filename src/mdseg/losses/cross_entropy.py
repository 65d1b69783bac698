"""Softmax cross-entropy over one label space, plain or with online hard example mining (OHEM).

Plain: ``single`` (one dataset) and ``multi_ce`` (UniSeg eq. 1, the union label space).
OHEM: the authors of AutoUniSeg train every stage, Multi-SegHead included, with it
(``auto_uni_seg/modeling/loss/ohem_ce_loss.py``, ``OhemCELoss``, ``LOSS.OHEM_THRESH: 0.7``);
:mod:`mdseg.losses.dataset_heads` applies it per dataset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID


def pixel_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits [B, C, H, W]`` against ``labels [B, H, W]``, averaged over the
    labelled pixels (``IGNORE_ID`` pixels take no part)."""
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_ID)


def ohem_kept(
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

    The mean of the kept losses (see :func:`ohem_kept`); ``IGNORE_ID`` pixels have loss 0.
    When nothing is kept (no labelled pixel, or fewer than ``1 / min_fraction`` and none hard)
    the result is 0 with a gradient, where the authors' ``torch.mean`` of nothing gives NaN.
    """
    hard = ohem_kept(logits, labels, threshold, min_fraction)
    if hard.numel() == 0:
        return logits.sum() * 0.0
    return hard.mean()
