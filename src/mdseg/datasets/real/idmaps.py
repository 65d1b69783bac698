"""Datasets whose labels are single-channel id images: one lookup table each, plus a layout.

Cityscapes, KITTI and the original WildDash (label ids -> 19 train ids), BDD100K (train ids
already), Mapillary Vistas v1.2 (65 classes, 65 = unlabeled), SUN RGB-D (37 classes; A. Handa's
1-37 with 0 = unlabelled, or MSeg's 0-36 with 255 = unlabeled, whichever layout was extracted),
ADE20K (150, 0 = other), ScanNet (NYU40 -> the 20 benchmark classes) and PASCAL VOC 2012
(palette indices, 255 = border).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mdseg.datasets.real.convert import (
    Item,
    apply_lut,
    build_lut,
    check_channels,
    first_few,
    label_pairs,
    locate,
)
from mdseg.datasets.real.png import read_label
from mdseg.io import IGNORE_ID

Layout = Callable[[Path, Mapping[str, str]], list[Item]]


@dataclass(frozen=True)
class IdMapConverter:
    """Native id image -> canonical ids through one lookup table."""

    layout: Layout
    lut: np.ndarray

    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        return self.layout(root, splits)

    def convert(self, item: Item) -> np.ndarray:
        raw = read_label(item.label)
        check_channels(item.label, raw, colour=False)
        return apply_lut(raw, self.lut)


@dataclass(frozen=True)
class DetectedLayout:
    """One dataset shipped in several layouts, each with its own converter.

    ``variants`` maps a marker (a path ``locate`` finds) to the converter of the layout it marks;
    the first marker found under the source decides, and each item carries its marker.
    """

    variants: Mapping[str, IdMapConverter]

    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        for marker, converter in self.variants.items():
            try:
                locate(root, marker)
            except FileNotFoundError:
                continue
            return [replace(it, meta=(marker,)) for it in converter.items(root, splits)]
        raise FileNotFoundError(
            f"{root}: none of {list(self.variants)} here or one or two levels below"
        )

    def convert(self, item: Item) -> np.ndarray:
        return self.variants[item.meta[0]].convert(item)


# Cityscapes label id -> train id (the 19 evaluated classes); ids 0-33 are defined, the rest void
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_LUT = build_lut(CITYSCAPES_TRAIN_IDS, known=range(34))
BDD_LUT = build_lut({i: i for i in range(19)}, known=[IGNORE_ID])
MAPILLARY_LUT = build_lut({i: i for i in range(65)}, known=[65])
# semseg-label37 PNGs are already 0-based (0 = wall, 1 = floor; checked against a real image),
# 255 = unlabeled; A. Handa's original 1-37 numbering is shifted down by that relayout
SUNRGBD_LUT = build_lut({i: i for i in range(37)}, known=[IGNORE_ID])
SUNRGBD_HANDA_LUT = build_lut({k: k - 1 for k in range(1, 38)}, known=[0])
ADE20K_LUT = build_lut({k: k - 1 for k in range(1, 151)}, known=[0])
VOC_LUT = build_lut({i: i for i in range(21)}, known=[IGNORE_ID])
# NYU40 ids of the 20 ScanNet benchmark classes, in scannet.txt order
SCANNET_NYU40 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET_LUT = build_lut({n: i for i, n in enumerate(SCANNET_NYU40)}, known=range(41))


def cityscapes_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`` beside ``leftImg8bit/...``."""
    gt, img = locate(root, "gtFine"), locate(root, "leftImg8bit")
    suffix = "_gtFine_labelIds.png"

    def image_of(label: Path) -> Path:
        rel = label.relative_to(gt)
        return img / rel.parent / label.name.replace(suffix, "_leftImg8bit.png")

    return [
        item
        for ours, official in splits.items()
        for item in label_pairs(ours, (gt / official).glob(f"*/*{suffix}"), image_of, suffix)
    ]


def kitti_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``<split>/semantic/*.png`` (Cityscapes label ids) beside ``<split>/image_2/*.png``."""
    items = []
    for ours, official in splits.items():
        base = locate(root, f"{official}/semantic").parent
        items += label_pairs(
            ours, (base / "semantic").glob("*.png"), lambda p, b=base: b / "image_2" / p.name
        )
    return items


def wilddash_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """WildDash v1: ``wd_val_01/<frame>_100000_labelIds.png`` beside ``<frame>_100000.png``.

    The layout MSeg's ``wilddash-19`` lists and the Robust Vision Challenge devkit read; the ids
    are Cityscapes label ids 0-33 (the devkit's ``LabelIds``), mapped to the 19 train ids as the
    UniSeg authors' ``dataset_utils.py`` ``wilddash`` mapping does (the Cityscapes one).
    """
    suffix = "_labelIds.png"
    items = []
    for ours, official in splits.items():
        folder = locate(root, f"{official}/*{suffix}").parent
        items += label_pairs(
            ours,
            folder.glob(f"*{suffix}"),
            lambda p: p.with_name(p.name.replace(suffix, ".png")),
            suffix,
        )
    return items


def bdd_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``labels/sem_seg/masks/<split>/*.png`` beside ``images/10k/<split>/*.jpg``."""
    masks = locate(root, "labels/sem_seg/masks")
    images = masks.parents[2] / "images" / "10k"
    return [
        item
        for ours, official in splits.items()
        for item in label_pairs(
            ours,
            (masks / official).glob("*.png"),
            lambda p, s=official: images / s / f"{p.stem}.jpg",
        )
    ]


def mapillary_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``<split>/v1.2/labels/*.png`` beside ``<split>/images/*.jpg``."""
    items = []
    for ours, official in splits.items():
        base = locate(root, f"{official}/v1.2/labels").parents[1]
        items += label_pairs(
            ours,
            (base / "v1.2" / "labels").glob("*.png"),
            lambda p, b=base: b / "images" / f"{p.stem}.jpg",
        )
    return items


def sunrgbd_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """MSeg relayout: ``semseg-label37/<split>/NNNNNNNN.png`` beside ``image/<split>/img-*.jpg``."""
    labels = locate(root, "semseg-label37")
    images = labels.parent / "image"
    return [
        item
        for ours, official in splits.items()
        for item in label_pairs(
            ours,
            (labels / official).glob("*.png"),
            lambda p, s=official: images / s / f"img-{int(p.stem):06d}.jpg",
        )
    ]


def sunrgbd_handa_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """A. Handa's archives: ``SUNRGBD-<split>_images/img-NNNNNN.jpg`` plus one folder of labels.

    The labels ``img-000001.png`` ... number the test set first (1-5050), then the training set
    (5051-10335): test image k (in name order) has label k, training image k has label
    (number of test images) + k, which is 5050 + k in a complete download. Labels and images must
    match one to one, or this stops naming the folders and counts.
    """
    label_dir = locate(root, "img-*.png").parent
    images = {
        s: sorted(locate(root, f"SUNRGBD-{s}_images/img-*.jpg").parent.glob("img-*.jpg"))
        for s in ("test", "train")
    }
    total = len(images["test"]) + len(images["train"])
    labels = {p.name for p in label_dir.glob("img-*.png")}
    first = {"test": 1, "train": 1 + len(images["test"])}
    expected = {
        f"img-{first[s] + k:06d}.png": image for s in images for k, image in enumerate(images[s])
    }
    if labels != set(expected):
        folders = "; ".join(f"{len(v)} images in {v[0].parent}" for v in images.values())
        unlabelled = [f"{expected[n]} (no {n})" for n in sorted(set(expected) - labels)]
        extra = sorted(labels - set(expected))
        raise ValueError(
            f"SUN RGB-D labels do not pair with the images: {len(labels)} labels in {label_dir}, "
            f"expected img-000001.png ... img-{total:06d}.png for {folders}; "
            f"{first_few('images without a label', unlabelled)}"
            f"{first_few('labels without an image', extra)}"
            "extract all three archives of the layout again"
        )
    return [
        Item(ours, image.stem, image, label_dir / f"img-{first[official] + k:06d}.png")
        for ours, official in splits.items()
        for k, image in enumerate(images[official])
    ]


def ade20k_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """``annotations/<split>/*.png`` beside ``images/<split>/*.jpg``."""
    ann = locate(root, "annotations")
    return [
        item
        for ours, official in splits.items()
        for item in label_pairs(
            ours,
            (ann / official).glob("*.png"),
            lambda p, s=official: ann.parent / "images" / s / f"{p.stem}.jpg",
        )
    ]


def voc_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """Ids from ``ImageSets/Segmentation/<split>.txt``; ``SegmentationClass/<id>.png`` labels."""
    base = locate(root, "SegmentationClass").parent
    items = []
    for ours, official in splits.items():
        ids = (base / "ImageSets" / "Segmentation" / f"{official}.txt").read_text().split()
        items += [
            Item(ours, i, base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClass" / f"{i}.png")
            for i in ids
        ]
    return items


SCENE = re.compile(r"^scene\d{4}_\d{2}$")


def scannet_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """Scenes from ``scannetv2_<split>.txt``; ``<scene>/label/<frame>.png`` (NYU40 ids)."""
    items = []
    for ours, official in splits.items():
        listing = locate(root, f"scannetv2_{official}.txt")
        scenes = [s for s in listing.read_text().split() if SCENE.match(s)]
        frames = locate(root, "scene*/label").parents[1]
        for scene in scenes:
            for label in sorted((frames / scene / "label").glob("*.png")):
                image = frames / scene / "color" / f"{label.stem}.jpg"
                items.append(Item(ours, f"{scene}_{label.stem}", image, label, group=scene))
    return items


ID_CONVERTERS: dict[str, IdMapConverter | DetectedLayout] = {
    "cityscapes": IdMapConverter(cityscapes_layout, CITYSCAPES_LUT),
    "kitti": IdMapConverter(kitti_layout, CITYSCAPES_LUT),
    "wilddash": IdMapConverter(wilddash_layout, CITYSCAPES_LUT),
    "bdd": IdMapConverter(bdd_layout, BDD_LUT),
    "mapillary": IdMapConverter(mapillary_layout, MAPILLARY_LUT),
    "sunrgbd": DetectedLayout(
        {
            "semseg-label37": IdMapConverter(sunrgbd_layout, SUNRGBD_LUT),
            "SUNRGBD-train_images": IdMapConverter(sunrgbd_handa_layout, SUNRGBD_HANDA_LUT),
        }
    ),
    "ade20k": IdMapConverter(ade20k_layout, ADE20K_LUT),
    "scannet": IdMapConverter(scannet_layout, SCANNET_LUT),
    "voc": IdMapConverter(voc_layout, VOC_LUT),
}
