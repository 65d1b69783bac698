import numpy as np
import pytest
import torch

from mdseg.io import IGNORE_ID
from mdseg.metrics import confusion, iou_from_confusion, mean_iou


def test_confusion_counts_and_ignores():
    target = torch.tensor([[0, 0, 1], [2, IGNORE_ID, 1]])
    pred = torch.tensor([[0, 1, 1], [2, 0, 0]])
    conf = confusion(pred, target, 3)
    expected = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    assert torch.equal(conf, expected)


def test_iou_hand_computed():
    # class 0: inter 1, union 1+2+... ; see the counts below
    conf = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    iou, inter, union = iou_from_confusion(conf)
    assert inter.tolist() == [1, 1, 1]
    assert union.tolist() == [3, 3, 1]
    assert iou == pytest.approx([1 / 3, 1 / 3, 1.0])
    assert mean_iou(iou) == pytest.approx((1 / 3 + 1 / 3 + 1) / 3)


def test_absent_class_is_left_out_of_the_mean():
    # class 2 never appears in ground truth nor prediction: zero union, excluded
    conf = np.array([[2, 0, 0], [1, 3, 0], [0, 0, 0]])
    iou, _, _ = iou_from_confusion(conf)
    assert np.isnan(iou[2])
    assert mean_iou(iou) == pytest.approx((2 / 3 + 3 / 4) / 2)


def test_false_positives_of_absent_class_count():
    # class 2 absent from ground truth but predicted: IoU 0, it stays in the mean
    conf = np.array([[2, 0, 1], [0, 3, 0], [0, 0, 0]])
    iou, _, _ = iou_from_confusion(conf)
    assert iou[2] == 0.0
    assert mean_iou(iou) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_split_level_sum_differs_from_per_image_average():
    # image A: class 0 perfect on 1 pixel; image B: class 0 wrong on 99 of 100 pixels
    a = confusion(torch.tensor([0]), torch.tensor([0]), 2)
    b = confusion(torch.tensor([0] + [1] * 99), torch.tensor([0] * 100), 2)
    iou, _, _ = iou_from_confusion((a + b).numpy())
    assert iou[0] == pytest.approx(2 / 101)


def test_empty_mean_is_nan():
    assert np.isnan(mean_iou(np.array([np.nan, np.nan])))


def test_empty_union_counted_as_zero_as_the_uniseg_evaluator():
    # class 2 has neither ground truth nor prediction: skipped by default, 0 under "zero"
    conf = np.array([[2, 0, 0], [1, 3, 0], [0, 0, 0]])
    iou, _, _ = iou_from_confusion(conf)
    assert mean_iou(iou, "skip") == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert mean_iou(iou, "zero") == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    assert np.isnan(mean_iou(np.array([]), "zero"))
    with pytest.raises(ValueError, match="empty_union must be one of"):
        mean_iou(iou, "drop")
