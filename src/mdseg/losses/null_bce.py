"""UniSeg's Null BCE (eq. 4) and, with extra positives, its class-relational BCE (eq. 8).

Per-class sigmoid BCE over the union label space: a pixel of dataset i is a positive for its
own class and a negative for the other classes of dataset i; classes of the union that
dataset i does not define are "Null" and get no loss, so two identical pixels from datasets
with conflicting label spaces no longer push a logit in opposite directions (eq. 3 vs eq. 5).
C-R BCE (eq. 8) is the same loss with the related classes of eq. 6 also positive
(``related`` of :func:`label_targets`). ``null_bce``, ``cosine_bce`` and ``cr_bce`` train with it.

Normalisation: eq. 4 is a plain sum over pixels and over the dataset's classes. We keep the sum
over classes per pixel and divide by the number of labelled pixels in the batch, the way
cross-entropy is averaged over pixels, so every logit receives ``(Q - Y) / pixels`` exactly as a
softmax logit receives ``(P - Y) / pixels`` under ``multi_ce`` and the learning rates compare.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID
from mdseg.label_space import lookup_table

# (dataset, source label id) -> union class ids that are positive / that enter the loss
Targets = tuple[torch.Tensor, torch.Tensor]


def label_targets(
    dataset_classes: list[list[str]],
    union: list[str],
    related: dict[tuple[int, int], list[int]] | None = None,
) -> Targets:
    """Per-label BCE targets over ``union``: ``positive`` and ``known`` of shape ``[D, 256, K]``.

    Label c of dataset d is positive for its own union class and known (0 or 1, not Null) for
    every class of dataset d; ``related[(d, c)]`` adds union classes that are also positive
    (UniSeg eq. 6). The ignore id and unused ids are known for nothing.
    """
    positive = torch.zeros(len(dataset_classes), 256, len(union), dtype=torch.bool)
    known = torch.zeros_like(positive)
    for d, classes in enumerate(dataset_classes):
        own = lookup_table(classes, union)[: len(classes)]
        for c, u in enumerate(own.tolist()):
            known[d, c, own] = True
            positive[d, c, u] = True
            for extra in (related or {}).get((d, c), []):
                known[d, c, extra] = True
                positive[d, c, extra] = True
    known[:, IGNORE_ID] = False
    return positive, known


def masked_bce(
    logits: torch.Tensor, labels: torch.Tensor, dataset_idx: torch.Tensor, targets: Targets
) -> torch.Tensor:
    """Sigmoid BCE summed over the known classes of each pixel, averaged over labelled pixels.

    ``logits`` is ``[B, K, H, W]``; ``labels`` holds each sample's own dataset ids.
    """
    positive, known = (t.to(logits.device) for t in targets)
    index = (dataset_idx[:, None, None], labels)
    pos = positive[index].permute(0, 3, 1, 2)
    mask = known[index].permute(0, 3, 1, 2)
    # -log(sigmoid(x)) for positives, -log(1 - sigmoid(x)) for negatives, stable for any x
    per_class = F.softplus(torch.where(pos, -logits, logits))
    total = torch.where(mask, per_class, torch.zeros_like(per_class)).sum()
    return total / (labels != IGNORE_ID).sum().clamp(min=1)
