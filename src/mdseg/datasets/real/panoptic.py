"""COCO-style panoptic labels (COCO panoptic, WildDash 2) to semantic ids.

A panoptic PNG stores a segment id per pixel as R + 256 G + 256² B; the JSON names each segment's
category. Segment id 0 is void. Each item carries its (segment id, canonical id) pairs, so a
worker needs no JSON; a segment id the JSON does not list is an unknown value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.real.convert import Item, UnknownLabels, check_channels, locate
from mdseg.datasets.real.png import read_label
from mdseg.io import IGNORE_ID

CategoryMap = Callable[[list[dict]], dict[int, int]]


def segment_ids(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of an RGB panoptic map."""
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)


def coco_categories(categories: list[dict]) -> dict[int, int]:
    """COCO panoptic category id -> contiguous id in category-id order (133 classes)."""
    ordered = sorted(categories, key=lambda c: c["id"])
    names = load_classnames("coco")
    if [c["name"] for c in ordered] != names:
        raise ValueError("COCO panoptic categories differ from coco.txt (expected the 133 of 2017)")
    return {c["id"]: i for i, c in enumerate(ordered)}


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().split("(")[0])


@cache
def wilddash2_policy() -> dict[str, tuple[str, str]]:
    """WildDash 2 category (squashed name) -> (Cityscapes class, WD2 eval class); '-' = none."""
    text = resources.files("mdseg").joinpath("data/real/wilddash2_labels.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    return {wd2: (cs, ev) for wd2, cs, ev in rows[1:]}


WD2_EVAL_CLASSES = tuple(dict.fromkeys(ev for _, ev in wilddash2_policy().values() if ev != "-"))


def _wilddash2_to(column: int, classes: list[str]) -> CategoryMap:
    def mapping(categories: list[dict]) -> dict[int, int]:
        policy = wilddash2_policy()
        unknown = [c["name"] for c in categories if _squash(c["name"]) not in policy]
        if unknown:
            raise UnknownLabels(unknown)
        index = {name: i for i, name in enumerate(classes)}
        return {
            c["id"]: index.get(policy[_squash(c["name"])][column], IGNORE_ID) for c in categories
        }

    return mapping


def wilddash2_cityscapes(categories: list[dict]) -> dict[int, int]:
    """WildDash 2 category id -> the Cityscapes 19 classes of wilddash2.txt (others ignored)."""
    return _wilddash2_to(0, load_classnames("wilddash2"))(categories)


def wilddash2_eval(categories: list[dict]) -> dict[int, int]:
    """WildDash 2 category id -> its evaluation classes (``WD2_EVAL_CLASSES`` order)."""
    return _wilddash2_to(1, list(WD2_EVAL_CLASSES))(categories)


def panoptic_items(
    split: str, annotations: Path, labels: Path, images: Path, classes: CategoryMap
) -> list[Item]:
    """Items of one panoptic JSON; each carries its (segment id, canonical id) pairs."""
    data = json.loads(annotations.read_text())
    absent = [k for k in ("categories", "annotations") if k not in data]
    if absent:
        raise ValueError(f"{annotations}: a panoptic JSON needs keys {absent}")
    category = classes(data["categories"])
    image_names = {im["id"]: im["file_name"] for im in data.get("images", [])}
    items = []
    for ann in data["annotations"]:
        missing = {s["category_id"] for s in ann["segments_info"]} - category.keys()
        if missing:
            raise ValueError(f"{annotations}: {ann['file_name']} uses unknown categories {missing}")
        pairs = tuple((s["id"], category[s["category_id"]]) for s in ann["segments_info"])
        label = labels / ann["file_name"]
        image = images / image_names.get(ann["image_id"], f"{label.stem}.jpg")
        items.append(Item(split, label.stem, image, label, meta=pairs))
    return items


def coco_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``annotations/panoptic_<split>.json`` + ``annotations/panoptic_<split>/`` + ``<split>/``."""
    items = []
    for ours, official in splits.items():
        ann = locate(root, f"annotations/panoptic_{official}.json")
        items += panoptic_items(
            ours,
            ann,
            ann.parent / f"panoptic_{official}",
            ann.parents[1] / official,
            coco_categories,
        )
    return items


def wilddash2_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``panoptic.json`` + ``panoptic/*.png`` + ``images/*.jpg`` (one public split)."""
    ann = locate(root, "panoptic.json")
    return [
        item
        for ours in splits
        for item in panoptic_items(
            ours, ann, ann.parent / "panoptic", ann.parent / "images", wilddash2_cityscapes
        )
    ]


@dataclass(frozen=True)
class PanopticConverter:
    layout: Callable[[Path, Mapping[str, str]], list[Item]]

    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        return self.layout(root, splits)

    def convert(self, item: Item) -> np.ndarray:
        raw = read_label(item.label)
        check_channels(item.label, raw, colour=True)
        ids = segment_ids(raw)
        uniques, inverse = np.unique(ids, return_inverse=True)
        known = dict(item.meta)
        known.setdefault(0, IGNORE_ID)
        stray = [int(u) for u in uniques if int(u) not in known]
        if stray:
            raise UnknownLabels(stray)
        table = np.array([known[int(u)] for u in uniques], dtype=np.uint8)
        return table[inverse.reshape(ids.shape)]


PANOPTIC_CONVERTERS = {
    "coco": PanopticConverter(coco_layout),
    "wilddash2": PanopticConverter(wilddash2_layout),
}
