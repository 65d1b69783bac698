import pytest
import torch
import torch.nn.functional as F

from mdseg.io import IGNORE_ID
from mdseg.methods import METHODS
from mdseg.train import build_model

CITY = ["road", "rider", "car"]
MAPI = ["road", "bicyclist", "motorcyclist", "car"]


def test_multi_ce_union_and_label_remap():
    method = METHODS["multi_ce"]({"cityscapes": CITY, "mapillary": MAPI})
    assert method.classes == ["road", "rider", "car", "bicyclist", "motorcyclist"]
    labels = torch.tensor([[[1, 2, IGNORE_ID]], [[1, 2, 3]]])
    unified = method.to_unified(labels, torch.tensor([0, 1]))
    assert unified.tolist() == [[[1, 2, IGNORE_ID]], [[3, 4, 2]]]


def test_single_refuses_several_datasets():
    with pytest.raises(ValueError, match="at most 1"):
        METHODS["single"]({"cityscapes": CITY, "mapillary": MAPI})


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="takes no options"):
        METHODS["multi_ce"]({"cityscapes": CITY}, tau=0.5)


def test_model_output_shape_and_loss_value():
    torch.manual_seed(0)
    method = METHODS["multi_ce"]({"cityscapes": CITY, "mapillary": MAPI})
    model = build_model(method, "hrnet_w18_small_v2").eval()
    images = torch.randn(2, 3, 64, 48)
    scores = method.scores(model, images)
    assert scores.shape == (2, 5, 64, 48)
    labels = torch.randint(0, 3, (2, 64, 48))
    owners = torch.tensor([0, 1])
    expected = F.cross_entropy(scores, method.to_unified(labels, owners), ignore_index=IGNORE_ID)
    assert method.loss(model, images, labels, owners).item() == pytest.approx(expected.item())
