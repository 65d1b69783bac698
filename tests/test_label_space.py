import numpy as np
import pytest
import torch
from PIL import Image

from mdseg.evaluate import sliced_prediction
from mdseg.io import IGNORE_ID
from mdseg.label_space import lookup_table, match_classes, union_by_name
from mdseg.methods import Method


def test_union_by_name_keeps_first_spelling_and_order():
    assert union_by_name([["road", "rider"], ["Road", "bicyclist", "rider"]]) == [
        "road",
        "rider",
        "bicyclist",
    ]


def test_lookup_table_maps_by_name_and_ignores_the_rest():
    lut = lookup_table(["sky", "rider", "car"], ["car", "road", "sky"])
    assert lut[:3].tolist() == [2, IGNORE_ID, 0]
    assert lut[IGNORE_ID] == IGNORE_ID


def test_match_classes_uses_aliases():
    target = ["Sky", "Pedestrian", "Tree", "SignSymbol"]
    model = ["sky", "person", "vegetation", "tree", "road"]
    aliases = {"Pedestrian": ["person"], "Tree": ["vegetation", "tree"]}
    assert match_classes(target, model, aliases) == {0: [0], 1: [1], 2: [2, 3]}


def test_sliced_prediction_argmax_over_shared_classes_only():
    # model classes: 0 road, 1 lane marking (not in target), 2 car; target: 0 car, 1 road
    scores = torch.tensor([[5.0, 9.0, 1.0], [0.0, 9.0, 3.0]]).T.reshape(1, 3, 1, 2)
    pred = sliced_prediction(scores, {0: [2], 1: [0]})
    assert pred.tolist() == [[[1, 0]]]


def test_sliced_prediction_takes_best_of_several_model_classes():
    scores = torch.tensor([1.0, 4.0, 3.0]).reshape(1, 3, 1, 1)
    pred = sliced_prediction(scores, {0: [0], 1: [1, 2]})
    assert pred.item() == 1


class AlwaysRoad(Method):
    """A stand-in method whose model predicts ``road`` everywhere."""

    name = "always_road"

    def __init__(self) -> None:
        self.classes = ["road", "car", "bicyclist"]

    def scores(self, model, images):
        scores = torch.zeros(images.shape[0], 3, *images.shape[-2:])
        scores[:, 0] = 1.0
        return scores


def test_two_evaluation_protocols_hand_computed(tiny_datasets):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import evaluate_dataset

    data = SplitDataset(tiny_datasets["cityscapes"], "val")  # road, rider, car
    result = evaluate_dataset(AlwaysRoad(), None, data, {}, torch.device("cpu"))
    px = result["gt_pixels"]
    assert result["evaluated_classes"] == ["road", "car"]
    # shared protocol: rider pixels ignored; road IoU = road / (road + car), car IoU 0
    road_shared = px["road"] / (px["road"] + px["car"])
    assert result["iou"]["rider"] is None
    assert result["miou"] == round(100 * road_shared / 2, 4)
    # all-classes protocol: rider counts with IoU 0 and its pixels are false road positives
    road_all = px["road"] / sum(px.values())
    assert result["miou_all_classes"] == round(100 * road_all / 3, 4)


def test_no_shared_class_gives_null_and_zero(tiny_datasets):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import evaluate_dataset

    method = AlwaysRoad()
    method.classes = ["sky", "tree", "bird"]
    data = SplitDataset(tiny_datasets["cityscapes"], "val")
    result = evaluate_dataset(method, None, data, {}, torch.device("cpu"))
    assert result["miou"] is None and result["miou_all_classes"] == 0.0
    assert sum(result["gt_pixels"].values()) == 4 * (32 * 32 - 1)


def test_further_mappings_are_scored_as_variants(tiny_datasets):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import evaluate_dataset

    class RoadAsCar(AlwaysRoad):
        def target_matches(self, model, dataset_key, data, aliases, device, inference=None):
            by_name = super().target_matches(model, dataset_key, data, aliases, device, inference)
            return {**by_name, "swapped": {2: [0]}}  # model's road channel predicts car

    data = SplitDataset(tiny_datasets["cityscapes"], "val")  # road, rider, car
    result = evaluate_dataset(RoadAsCar(), None, data, {}, torch.device("cpu"))
    assert result["mapping"] == "by_name"
    swapped = result["variants"]["swapped"]
    assert swapped["evaluated_classes"] == ["car"]
    assert swapped["iou"]["car"] == 100.0 and swapped["miou"] == 100.0


# numpee/UniSeg datasets/dataset_utils.py: the camvid classes (alphabetical) and
# 'camvid_to_combined', their channels in the sorted C+I+B+M union ("city_idd_bdd_mapillary")
AUTHORS_CAMVID = ["bicyclist", "building", "car", "fence", "person", "pole", "road", "sidewalk"]
AUTHORS_CAMVID += ["sky", "traffic sign", "vegetation"]
AUTHORS_CAMVID_CHANNELS = [5, 12, 14, 23, 41, 43, 47, 50, 51, 56, 65]
# our CamVid names -> the authors' names for them
CAMVID_NAMES = {"Bicyclist": "bicyclist", "Building": "building", "Car": "car", "Fence": "fence"}
CAMVID_NAMES |= {"Pedestrian": "person", "Pole": "pole", "Road": "road", "Sidewalk": "sidewalk"}
CAMVID_NAMES |= {"Sky": "sky", "SignSymbol": "traffic sign", "Tree": "vegetation"}


def _union(keys: list[str]) -> list[str]:
    from mdseg.datasets.classnames import load_classnames

    return union_by_name([load_classnames(k) for k in keys])


def _matched_names(target, model, aliases) -> dict[str, list[str]]:
    return {
        target[t]: [model[j] for j in js] for t, js in match_classes(target, model, aliases).items()
    }


def test_camvid_one_channel_is_the_authors_table():
    from mdseg.datasets.classnames import load_aliases, load_classnames
    from mdseg.evaluate import one_channel_aliases

    camvid, aliases = load_classnames("camvid"), load_aliases()["camvid"]
    cibm = _union(["cityscapes", "idd", "bdd", "mapillary"])
    # our union is the authors' 70 classes: their channel ids name the same classes
    assert len(cibm) == 70
    assert [sorted(cibm)[i] for i in AUTHORS_CAMVID_CHANNELS] == AUTHORS_CAMVID
    one = _matched_names(camvid, cibm, one_channel_aliases(camvid, aliases, cibm))
    assert one == {c: [CAMVID_NAMES[c]] for c in camvid}
    # without Mapillary there is no bicyclist: the authors' camvid_cib reads 'rider'
    cib = _union(["cityscapes", "idd", "bdd"])
    one = _matched_names(camvid, cib, one_channel_aliases(camvid, aliases, cib))
    assert one["Bicyclist"] == ["rider"] and one["Car"] == ["car"]
    # the max-over-aliases option keeps every matching channel
    most = _matched_names(camvid, cibm, aliases)
    assert sorted(most["Car"]) == ["bus", "car", "truck"]
    assert sorted(most["Bicyclist"]) == ["bicycle", "bicyclist", "rider"]


class Constant(Method):
    """A stand-in method with one constant score per class."""

    name = "constant"

    def __init__(self, classes: list[str], values: list[float]) -> None:
        self.classes, self.values = classes, values

    def scores(self, model, images):
        return (
            torch.tensor(self.values)
            .view(1, -1, 1, 1)
            .expand(images.shape[0], -1, *images.shape[-2:])
        )


def write_dataset(root, key: str, classes: list[str], labels: list[np.ndarray]):
    """A prepared dataset whose val split holds ``labels`` (images all black)."""
    from mdseg.io import sha256, write_json, write_split_list

    out = root / key
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    pairs = []
    for i, label in enumerate(labels):
        Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(out / "images" / f"{i}.png")
        Image.fromarray(label.astype(np.uint8)).save(out / "labels" / f"{i}.png")
        pairs.append((f"images/{i}.png", f"labels/{i}.png"))
    write_split_list(out / "val.lst", pairs)
    splits = {"val": {"count": len(labels), "list": "val.lst"}}
    manifest = {"name": key, "classes": classes, "ignore_id": 255, "source": "test"}
    checksums = {"val.lst": sha256(out / "val.lst")}
    write_json(out / "manifest.json", {**manifest, "checksums": checksums, "splits": splits})
    return out


def test_one_channel_versus_max_in_evaluation(tmp_path):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import Scoring, evaluate_dataset

    data = SplitDataset(write_dataset(tmp_path, "v", ["Car", "Bicyclist"], [np.eye(4)]), "val")
    # truck 3 > bicyclist 2 > rider 1 > car 0
    method = Constant(["truck", "car", "rider", "bicyclist"], [3.0, 0.0, 1.0, 2.0])
    aliases = {"Car": ["car", "truck"], "Bicyclist": ["bicyclist", "rider"]}
    cpu = torch.device("cpu")
    most = evaluate_dataset(method, None, data, aliases, cpu)  # Car scores max(truck, car) = 3
    assert most["matched_model_classes"] == {
        "Car": ["truck", "car"],
        "Bicyclist": ["rider", "bicyclist"],
    }
    assert most["iou"] == {"Car": 75.0, "Bicyclist": 0.0}  # 12 of 16 pixels are Car
    one = evaluate_dataset(method, None, data, aliases, cpu, scoring=Scoring(aliases="one_channel"))
    assert one["matched_model_classes"] == {"Car": ["car"], "Bicyclist": ["bicyclist"]}
    assert one["iou"] == {"Car": 0.0, "Bicyclist": 25.0}  # car 0 < bicyclist 2
    assert one["scoring"] == {"score_at": "label", "empty_union": "skip", "aliases": "one_channel"}


def test_empty_union_skip_or_zero(tmp_path):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import Scoring, evaluate_dataset

    label = np.array([[0, 0, 0, 1]])  # road 3 px, car 1 px, bus none
    data = SplitDataset(write_dataset(tmp_path, "d", ["road", "car", "bus"], [label]), "val")
    method, cpu = Constant(["road", "car", "bus"], [1.0, 0.0, 0.0]), torch.device("cpu")
    skip = evaluate_dataset(method, None, data, {}, cpu)
    # road: 3 / 4, car: 0, bus: empty union (no pixel, never predicted)
    assert skip["iou"] == {"road": 75.0, "car": 0.0, "bus": None}
    assert skip["miou"] == 37.5 and skip["miou_all_classes"] == 37.5
    zero = evaluate_dataset(method, None, data, {}, cpu, scoring=Scoring(empty_union="zero"))
    assert zero["miou"] == 25.0 and zero["miou_all_classes"] == 25.0


def test_scoring_at_the_inference_size(tmp_path):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import Scoring, evaluate_dataset
    from mdseg.inference import Inference

    # 4x4 labels, short side resized to 2: PIL's nearest keeps rows/columns 1 and 3
    label = np.array([[0, 0, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    data = SplitDataset(write_dataset(tmp_path, "s", ["road", "car"], [label]), "val")
    method, cpu = Constant(["road", "car"], [0.0, 1.0]), torch.device("cpu")
    half = Inference(resize_short_side=2)
    native = evaluate_dataset(method, None, data, {}, cpu, half)
    assert native["gt_pixels"] == {"road": 9, "car": 7} and native["iou"]["car"] == 43.75
    small = evaluate_dataset(method, None, data, {}, cpu, half, scoring=Scoring("inference"))
    # kept pixels: (1,1) car, (1,3) car, (3,1) car, (3,3) car
    assert small["gt_pixels"] == {"road": 0, "car": 4} and small["iou"]["car"] == 100.0
    with pytest.raises(ValueError, match=r"evaluation\.score_at must be one of"):
        Scoring("native")


def test_no_shared_class_counts_pixels_at_the_scored_size(tmp_path):
    from mdseg.data import SplitDataset
    from mdseg.evaluate import Scoring, evaluate_dataset
    from mdseg.inference import Inference

    # car covers row 0 only, which the 4 -> 2 resize (rows 1 and 3 kept) drops
    label = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    data = SplitDataset(write_dataset(tmp_path, "n", ["road", "car"], [label]), "val")
    method, cpu = Constant(["sky"], [1.0]), torch.device("cpu")
    half = Inference(resize_short_side=2)
    native = evaluate_dataset(method, None, data, {}, cpu, half)
    assert native["gt_pixels"] == {"road": 12, "car": 4}
    assert native["iou_all_classes"] == {"road": 0.0, "car": 0.0}
    small = evaluate_dataset(method, None, data, {}, cpu, half, scoring=Scoring("inference"))
    assert small["gt_pixels"] == {"road": 4, "car": 0}
    assert small["iou_all_classes"] == {"road": 0.0, "car": None}
