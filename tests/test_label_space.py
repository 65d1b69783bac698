import torch

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
