"""The losses of :mod:`mdseg.losses` (cross-entropy, OHEM, per-dataset heads, orthogonality)
against hand-computed cases; Null BCE is tested with UniSeg's methods."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID
from mdseg.losses import (
    AUTHORS_WEIGHTS,
    HeadLoss,
    dataset_losses,
    ohem_cross_entropy,
    orthogonality_loss,
    pixel_cross_entropy,
)


def own_head_loss(
    logits: torch.Tensor, labels: torch.Tensor, dataset_idx: torch.Tensor, offsets: list[int]
) -> torch.Tensor:
    """The former ``mdseg.methods.multi_head.own_head_loss`` (commit 47345ed), verbatim."""
    total = logits.new_zeros(())
    for d in dataset_idx.unique().tolist():
        rows = dataset_idx == d
        block = logits[rows, offsets[d] : offsets[d + 1]]
        total = total + F.cross_entropy(
            block, labels[rows], ignore_index=IGNORE_ID, reduction="sum"
        )
    return total / (labels != IGNORE_ID).sum().clamp(min=1)


def _pixels(probs: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class logits ``[1, 2, 1, P]`` whose pixel p gives class 0 probability ``probs[p]``,
    and labels all 0: pixel p's cross-entropy is ``-log probs[p]``."""
    p = torch.tensor(probs, dtype=torch.float64)
    logits = torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, -1)
    return logits, torch.zeros(1, 1, len(probs), dtype=torch.long)


def test_ohem_keeps_only_the_pixels_above_the_threshold() -> None:
    # threshold 0.7: losses above -log 0.7 (probability below 0.7) are hard; n_min = 4 // 16 = 0
    logits, labels = _pixels([0.9, 0.5, 0.2, 0.8])
    loss = ohem_cross_entropy(logits, labels)
    assert loss.item() == pytest.approx((math.log(2) + math.log(5)) / 2)


def test_ohem_takes_the_n_min_largest_when_too_few_are_hard() -> None:
    # 32 labelled pixels: n_min = 2, but only the 0.5 pixel is hard -> the two largest losses
    logits, labels = _pixels([0.9] * 30 + [0.8, 0.5])
    loss = ohem_cross_entropy(logits, labels)
    assert loss.item() == pytest.approx((math.log(2) + math.log(1.25)) / 2)
    # a looser min_fraction of 1/8 asks for 4: the 0.5, the 0.8 and two 0.9 pixels
    loose = ohem_cross_entropy(logits, labels, min_fraction=1 / 8)
    expected = (math.log(2) + math.log(1.25) + 2 * math.log(1 / 0.9)) / 4
    assert loose.item() == pytest.approx(expected)


def test_ohem_ignores_unlabelled_pixels() -> None:
    # 16 labelled easy pixels (n_min = 1: the largest is taken), 16 ignored with any logits
    logits, labels = _pixels([0.95] * 15 + [0.9] + [0.01] * 16)
    labels[..., 16:] = IGNORE_ID
    assert ohem_cross_entropy(logits, labels).item() == pytest.approx(-math.log(0.9))
    # nothing labelled: 0 with a gradient (the authors' mean of nothing is NaN)
    logits.requires_grad_(True)
    empty = ohem_cross_entropy(logits, torch.full_like(labels, IGNORE_ID))
    empty.backward()
    assert empty.item() == 0 and (logits.grad == 0).all()
    # fewer than 16 labelled, none hard: n_min = 0, nothing kept
    assert ohem_cross_entropy(*_pixels([0.9, 0.8])).item() == 0


def _two_datasets() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Sample 0 from dataset 0 (channels 0-1), sample 1 from dataset 1 (channels 2-4).

    Dataset 0's pixels have true-class probabilities 0.5 and 0.25, dataset 1's 0.5, 0.8 and an
    ignored pixel; the other block's channels hold junk that must not matter.
    """
    logits = torch.full((2, 5, 1, 3), 7.0, dtype=torch.float64)
    labels = torch.tensor([[[0, 1, IGNORE_ID]], [[2, 0, IGNORE_ID]]])
    zero, half, quarter = 0.0, math.log(0.5), math.log(0.25)
    logits[0, 0:2, 0, 0] = torch.tensor([half, half])
    logits[0, 0:2, 0, 1] = torch.tensor([math.log(0.75), quarter])
    logits[1, 2:5, 0, 0] = torch.tensor([quarter, quarter, half])
    logits[1, 2:5, 0, 1] = torch.tensor([math.log(0.8), math.log(0.1), math.log(0.1)])
    logits[0, 0:2, 0, 2] = logits[1, 2:5, 0, 2] = zero
    return logits, labels, torch.tensor([0, 1]), [0, 2, 5]


def test_dataset_losses_weights_and_reductions_by_hand() -> None:
    logits, labels, idx, offsets = _two_datasets()
    ln2, ln4, ln125 = math.log(2), math.log(4), math.log(1.25)
    ce0, ce1 = ln2 + ln4, ln2 + ln125  # summed over each dataset's two labelled pixels
    found = dataset_losses(logits, labels, idx, offsets, kind="ce", weights=[1.0, 3.0])
    assert found.item() == pytest.approx(ce0 / 2 + 3 * ce1 / 2)
    pixel = dataset_losses(
        logits, labels, idx, offsets, kind="ce", weights=[1.0, 3.0], reduction="pixel_mean"
    )
    assert pixel.item() == pytest.approx((ce0 + 3 * ce1) / 4)
    # OHEM per dataset: dataset 0 keeps both pixels, dataset 1 only the 0.5 one (0.8 is easy)
    ohem = dataset_losses(logits, labels, idx, offsets, weights=[1.0, 3.0])
    assert ohem.item() == pytest.approx(ce0 / 2 + 3 * ln2)
    ohem_pixel = dataset_losses(
        logits, labels, idx, offsets, weights=[1.0, 3.0], reduction="pixel_mean"
    )
    assert ohem_pixel.item() == pytest.approx((ce0 + 3 * ln2) / 3)
    # a dataset absent from the batch adds nothing, whatever its weight
    only0 = dataset_losses(logits[:1], labels[:1], idx[:1], offsets, weights=[1.0, 3.0])
    assert only0.item() == pytest.approx(ce0 / 2)


def test_dataset_losses_plain_ce_pixel_mean_is_own_head_loss() -> None:
    torch.manual_seed(0)
    offsets = [0, 3, 7, 9]
    logits = torch.randn(4, 9, 6, 5)
    idx = torch.tensor([0, 1, 0, 2])
    sizes = torch.tensor([3, 4, 3, 2])
    labels = (torch.rand(4, 6, 5) * sizes.view(4, 1, 1)).long()
    labels[torch.rand(4, 6, 5) < 0.3] = IGNORE_ID
    found = dataset_losses(logits, labels, idx, offsets, kind="ce", reduction="pixel_mean")
    assert torch.equal(found, own_head_loss(logits, labels, idx, offsets))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "focal"}, "kind"),
        ({"reduction": "mean"}, "reduction"),
        ({"weights": [1.0]}, "one per dataset"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_dataset_losses_reject_bad_options(options: dict, message: str) -> None:
    logits, labels, idx, offsets = _two_datasets()
    with pytest.raises(ValueError, match=message):
        dataset_losses(logits, labels, idx, offsets, **options)


def test_pixel_cross_entropy_averages_over_labelled_pixels_only() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25], [0.5, 0.75]])).view(1, 2, 1, 2)
    labels = torch.tensor([[[0, IGNORE_ID]]])
    assert pixel_cross_entropy(logits, labels).item() == pytest.approx(math.log(2))


def test_head_loss_weighs_datasets_by_key_and_stage_three_replaces_the_table() -> None:
    logits, labels, idx, offsets = _two_datasets()
    head = HeadLoss(dataset_weights={"b": 2.0})
    found = head(logits, labels, idx, offsets, ["a", "b"])
    assert torch.equal(found, dataset_losses(logits, labels, idx, offsets, weights=[1.0, 2.0]))
    replaced = head(logits, labels, idx, offsets, ["a", "b"], weights={"a": 3.0})
    assert torch.equal(replaced, dataset_losses(logits, labels, idx, offsets, weights=[3.0, 1.0]))
    assert HeadLoss().dataset_weights == AUTHORS_WEIGHTS  # the authors' loss_weight_dict


def test_orthogonality_losses_by_hand() -> None:
    # Gram diag(ln 3): every row's softmax is (3/4, 1/4)
    nodes = math.sqrt(math.log(3)) * torch.eye(2)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    loss = orthogonality_loss(nodes, "row_entropy", temperature=1.0)
    assert loss.item() == pytest.approx(2 * entropy / 4)  # two rows' entropies over N^2 = 4
    assert orthogonality_loss(nodes, "identity_ce").item() == pytest.approx(-math.log(0.75))
    # the authors' T = 0.07 divides the Gram first
    scaled = nodes * math.sqrt(0.07)
    assert orthogonality_loss(scaled).item() == pytest.approx(entropy / 2)
    with pytest.raises(ValueError, match="row_entropy"):
        orthogonality_loss(nodes, "entropy")
