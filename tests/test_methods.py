import dataclasses
import inspect
import re
import sys

import pytest
import torch
import torch.nn.functional as F

from mdseg.build import build_model
from mdseg.io import IGNORE_ID
from mdseg.methods import METHODS
from mdseg.registry import Registry

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


def test_registration_names_each_method_once() -> None:
    for key in METHODS:
        cls = METHODS[key]
        assert cls.name == key
        # the name is stated in the registration only, not in the class body
        assert not re.search(r"^ {4}name\s*[:=]", inspect.getsource(cls), re.MULTILINE), key


def test_registry_sets_the_name_and_refuses_a_second_entry() -> None:
    things: Registry[type] = Registry("thing", name_attr="name")

    @things.register("first")
    class First:
        pass

    assert First.name == "first" and things["first"] is First
    with pytest.raises(KeyError, match="registered twice"):
        things.register("first")(First)
    with pytest.raises(KeyError, match="unknown thing 'second'; known: first"):
        things["second"]


# one ``Args:`` entry per option field: ``name (type, default value): why``
ARG = re.compile(r"^ {8}(\w+) \((.+?), default (.+?)\): \S", re.MULTILINE)


@pytest.mark.parametrize("key", [k for k in METHODS if METHODS[k].Options is not None])
def test_every_option_field_documents_its_type_default_and_purpose(key: str) -> None:
    options = METHODS[key].Options
    for f in dataclasses.fields(options):
        owner = next(c for c in options.__mro__ if f.name in vars(c).get("__annotations__", {}))
        documented = {m[1]: (m[2], m[3]) for m in ARG.finditer(owner.__doc__)}
        assert f.name in documented, f"{owner.__name__}.{f.name} has no Args: entry"
        type_text, default_text = documented[f.name]
        assert type_text == f.type, f"{owner.__name__}.{f.name}"
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        # the default as written, read in the module that defines the options
        assert eval(default_text, vars(sys.modules[owner.__module__])) == default, f.name
        fields = set(vars(owner)["__annotations__"])
        assert set(documented) <= fields, f"{owner.__name__} documents non-fields"
