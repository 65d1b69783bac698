"""IDD polygon annotations rasterised into the 26 level-3 classes.

Each ``*_gtFine_polygons.json`` lists objects (class name + polygon) in drawing order; later
objects cover earlier ones, as in the dataset's own tools. Class names map to level-3 ids by the
IDD label table; pixels no polygon covers are unlabeled (ignore).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mdseg.datasets.real.convert import Item, UnknownLabels, label_pairs, locate
from mdseg.io import IGNORE_ID

# IDD class name -> level-3 id (index into idd.txt); None = void in level 3
IDD_LEVEL3: dict[str, int | None] = {
    "road": 0, "parking": 1, "drivable fallback": 1, "sidewalk": 2, "rail track": 3,
    "non-drivable fallback": 3, "person": 4, "animal": 4, "rider": 5, "motorcycle": 6,
    "bicycle": 7, "autorickshaw": 8, "car": 9, "truck": 10, "bus": 11, "caravan": 12,
    "trailer": 12, "train": 12, "vehicle fallback": 12, "curb": 13, "wall": 14, "fence": 15,
    "guard rail": 16, "billboard": 17, "traffic sign": 18, "traffic light": 19, "pole": 20,
    "polegroup": 20, "obs-str-bar-fallback": 21, "building": 22, "bridge": 23, "tunnel": 23,
    "vegetation": 24, "sky": 25, "fallback background": 25, "unlabeled": None,
    "ego vehicle": None, "rectification border": None, "out of roi": None, "license plate": None,
}  # fmt: skip


def level3_id(name: str) -> int:
    """Level-3 id of an IDD class name; ``<name>group`` falls back to ``<name>``."""
    if name not in IDD_LEVEL3 and name.endswith("group"):
        name = name[: -len("group")]
    if name not in IDD_LEVEL3:
        raise UnknownLabels([name])
    found = IDD_LEVEL3[name]
    return IGNORE_ID if found is None else found


def rasterise(annotation: dict) -> np.ndarray:
    """Draw one IDD annotation's polygons, in order, into a level-3 label map."""
    canvas = Image.new("L", (annotation["imgWidth"], annotation["imgHeight"]), IGNORE_ID)
    draw = ImageDraw.Draw(canvas)
    unknown = []
    for obj in annotation["objects"]:
        if obj.get("deleted"):
            continue
        try:
            value = level3_id(obj["label"])
        except UnknownLabels as err:
            unknown += err.values
            continue
        points = [tuple(p) for p in obj["polygon"]]
        if len(points) >= 2:
            draw.polygon(points, fill=value)
    if unknown:
        raise UnknownLabels(unknown)
    return np.asarray(canvas)


def idd_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``gtFine/<split>/<seq>/<stem>_gtFine_polygons.json`` beside ``leftImg8bit/...``."""
    gt, img = locate(root, "gtFine"), locate(root, "leftImg8bit")
    suffix = "_gtFine_polygons.json"

    def image_of(label: Path) -> Path:
        return img / label.relative_to(gt).parent / label.name.replace(suffix, "_leftImg8bit.png")

    return [
        item
        for ours, official in splits.items()
        for item in label_pairs(ours, (gt / official).glob(f"*/*{suffix}"), image_of, suffix)
    ]


@dataclass(frozen=True)
class PolygonConverter:
    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        return idd_layout(root, splits)

    def convert(self, item: Item) -> np.ndarray:
        return rasterise(json.loads(item.label.read_text()))
