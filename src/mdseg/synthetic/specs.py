"""The 14 synthetic datasets: real label names defined as sets of hidden fine classes.

Each label space is the real dataset's (or a subset of it, in the real id order) and each label
covers the fine classes its real definition covers, so the datasets disagree the way the real
ones do: Cityscapes ``rider`` is Mapillary ``bicyclist`` + ``motorcyclist``; Cityscapes ``road``
includes lane markings and crosswalk paint while Mapillary labels them apart; IDD ``curb`` merges
curbs and barriers; SUN ``television``, COCO ``tv``, ADE ``television receiver`` and VOC
``tvmonitor`` are one fine class; VOC and Context ``background`` catch everything else.
A fine class that occurs in a dataset's scenes but that none of its labels covers is unlabelled
(ignore id), as in real annotations.

``frequency`` drives the scenes: for an object, the expected number of instances per image (in
scenes whose backdrop can hold it); for a region (sky, sidewalk, wall, ...), the probability
that it is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mdseg.io import IGNORE_ID
from mdseg.synthetic.domain import Domain
from mdseg.synthetic.world import FINE_INDEX, WORLD, fine_class

SCENE_TYPES = ("driving", "indoor", "everyday")


@dataclass(frozen=True)
class SyntheticSpec:
    """One synthetic dataset: its label space over fine classes, its domain and its scenes."""

    key: str
    scene: str  # driving | indoor | everyday
    labels: dict[str, tuple[str, ...]]  # label name (id = position) -> fine classes it covers
    domain: Domain
    frequency: dict[str, float] = field(repr=False)

    def __post_init__(self) -> None:
        where = f"synthetic spec {self.key!r}"
        if self.scene not in SCENE_TYPES:
            raise ValueError(f"{where}: scene must be one of {SCENE_TYPES}, got {self.scene!r}")
        for name, freq in self.frequency.items():
            fine = fine_class(name)
            if self.scene not in fine.scenes:
                raise ValueError(f"{where}: {self.scene} scenes cannot draw fine class {name!r}")
            if freq <= 0:
                raise ValueError(f"{where}: frequency of {name!r} must be > 0, got {freq}")
            missing = [r for r in fine.requires if r not in self.frequency]
            if missing:
                raise ValueError(
                    f"{where}: {name!r} is drawn with {missing}; give them frequencies"
                )
        if not 0 < len(self.labels) < IGNORE_ID:
            raise ValueError(f"{where}: needs 1..{IGNORE_ID - 1} labels, got {len(self.labels)}")
        seen: dict[str, str] = {}
        for label, fines in self.labels.items():
            if not fines:
                raise ValueError(f"{where}: label {label!r} covers no fine class")
            for name in fines:
                if name not in self.frequency:
                    raise ValueError(
                        f"{where}: label {label!r} covers {name!r}, absent from scenes"
                    )
                if name in seen:
                    raise ValueError(f"{where}: {name!r} is in both {seen[name]!r} and {label!r}")
                seen[name] = label

    @property
    def classes(self) -> list[str]:
        """Label names; list index = canonical id."""
        return list(self.labels)

    def occurring(self) -> tuple[str, ...]:
        """Fine classes that occur in this dataset's scenes, in world order."""
        return tuple(f.name for f in WORLD if f.name in self.frequency)

    def unlabelled(self) -> tuple[str, ...]:
        """Fine classes that occur in the scenes but no label covers (they get the ignore id)."""
        covered = {name for fines in self.labels.values() for name in fines}
        return tuple(name for name in self.occurring() if name not in covered)

    def label_lut(self) -> np.ndarray:
        """Lookup table fine-class index -> label id (IGNORE_ID where no label covers it)."""
        lut = np.full(len(WORLD), IGNORE_ID, np.uint8)
        for label_id, fines in enumerate(self.labels.values()):
            lut[[FINE_INDEX[name] for name in fines]] = label_id
        return lut

    def truth(self) -> dict:
        """The hidden definition of this label space, for scoring learned taxonomies."""
        return {
            "name": self.key,
            "labels": {label: list(fines) for label, fines in self.labels.items()},
            "unlabelled": list(self.unlabelled()),
            "occurring": list(self.occurring()),
        }


def relation_truth(key_a: str, key_b: str) -> set[tuple[str, str]]:
    """Pairs (label of ``key_a``, label of ``key_b``) whose fine-class sets intersect."""
    a, b = spec_of(key_a), spec_of(key_b)
    return {
        (la, lb) for la, fa in a.labels.items() for lb, fb in b.labels.items() if set(fa) & set(fb)
    }


def spec_of(key: str) -> SyntheticSpec:
    if key not in SPECS:
        raise KeyError(f"no synthetic dataset {key!r}; known: {', '.join(SPECS)}")
    return SPECS[key]


def _with_background(objects: dict[str, tuple[str, ...]], frequency: dict[str, float]):
    """A catch-all ``background`` label (id 0) covering every occurring fine class that the
    object labels leave uncovered."""
    covered = {name for fines in objects.values() for name in fines}
    rest = tuple(f.name for f in WORLD if f.name in frequency and f.name not in covered)
    return {"background": rest, **objects}


# --- label spaces ------------------------------------------------------------------------------

CITYSCAPES_19 = {
    "road": ("road", "lane_marking", "crosswalk"),
    "sidewalk": ("sidewalk", "curb"),  # Cityscapes counts the delimiting curb as sidewalk
    "building": ("building",),
    "wall": ("wall",),
    "fence": ("fence",),
    "pole": ("pole", "utility_pole", "street_light"),
    "traffic light": ("traffic_light",),
    "traffic sign": ("sign_front",),  # the back of a sign is 'static' (ignored)
    "vegetation": ("tree", "bush"),
    "terrain": ("grass", "soil"),
    "sky": ("sky",),
    "person": ("person",),
    "rider": ("bicyclist", "motorcyclist"),
    "car": ("car",),
    "truck": ("truck",),
    "bus": ("bus",),
    "train": ("train",),
    "motorcycle": ("motorcycle",),
    "bicycle": ("bicycle",),
}

MAPILLARY = {
    "curb": ("curb",),
    "fence": ("fence",),
    "guard rail": ("guard_rail",),
    "barrier": ("barrier",),
    "wall": ("wall",),
    "parking": ("parking",),
    "road": ("road",),
    "sidewalk": ("sidewalk",),
    "building": ("building",),
    "person": ("person",),
    "bicyclist": ("bicyclist",),
    "motorcyclist": ("motorcyclist",),
    "lane marking - crosswalk": ("crosswalk",),
    "lane marking - general": ("lane_marking",),
    "sky": ("sky",),
    "terrain": ("grass", "soil"),
    "vegetation": ("tree", "bush"),
    "billboard": ("billboard",),
    "street light": ("street_light",),
    "pole": ("pole",),
    "utility pole": ("utility_pole",),
    "traffic light": ("traffic_light",),
    "traffic sign (back)": ("sign_back",),
    "traffic sign": ("sign_front",),
    "bicycle": ("bicycle",),
    "bus": ("bus",),
    "car": ("car",),
    "motorcycle": ("motorcycle",),
    "on rails": ("train",),
    "other vehicle": ("other_vehicle",),
    "truck": ("truck",),
}

IDD_LEVEL3 = {
    "road": ("road", "lane_marking", "crosswalk"),
    "parking": ("parking",),
    "sidewalk": ("sidewalk",),
    # level-3 id 3 merges 'rail track' with 'non-drivable fallback' (mud, grass, open ground)
    "rail track": ("grass", "soil"),
    "person": ("person",),
    "rider": ("bicyclist", "motorcyclist"),
    "motorcycle": ("motorcycle",),
    "bicycle": ("bicycle",),
    "autorickshaw": ("autorickshaw",),
    "car": ("car",),
    "truck": ("truck",),
    "bus": ("bus",),
    "vehicle fallback": ("other_vehicle", "train"),  # level 3 folds caravans, trailers, trains in
    "curb": ("curb", "barrier"),
    "wall": ("wall",),
    "fence": ("fence",),
    "guard rail": ("guard_rail",),
    "billboard": ("billboard",),
    "traffic sign": ("sign_front", "sign_back"),
    "traffic light": ("traffic_light",),
    "pole": ("pole", "utility_pole", "street_light"),
    "building": ("building",),
    "vegetation": ("tree", "bush"),
    "sky": ("sky",),
}

CAMVID_11 = {
    "Sky": ("sky",),
    "Building": ("building", "wall"),
    "Pole": ("pole", "utility_pole", "street_light"),
    "Road": ("road", "lane_marking", "crosswalk", "parking"),
    "Sidewalk": ("sidewalk", "curb"),
    "Tree": ("tree", "bush"),
    "SignSymbol": ("sign_front", "sign_back", "traffic_light"),
    "Fence": ("fence",),
    "Car": ("car", "truck", "bus", "other_vehicle"),
    "Pedestrian": ("person",),
    "Bicyclist": ("bicyclist",),  # the ridden bicycle is left unlabelled
}

SUNRGBD = {
    "wall": ("room_wall",),
    "floor": ("floor",),
    "cabinet": ("cabinet",),
    "bed": ("bed",),
    "chair": ("chair",),
    "sofa": ("sofa",),
    "table": ("table",),
    "door": ("door",),
    "window": ("window",),
    "bookshelf": ("bookshelf",),
    "picture": ("picture",),
    "curtain": ("curtain",),
    "pillow": ("pillow",),
    "ceiling": ("ceiling",),
    "television": ("television",),
    "person": ("person",),
    "lamp": ("lamp",),
}

SCANNET_20 = {name: SUNRGBD[name] for name in list(SUNRGBD)[:12]}  # wall ... curtain

ADE20K = {
    "wall": ("wall", "room_wall"),
    "building": ("building",),
    "sky": ("sky",),
    "floor": ("floor",),
    "tree": ("tree",),
    "ceiling": ("ceiling",),
    "road": ("road",),
    "bed": ("bed",),
    "windowpane": ("window",),
    "grass": ("grass",),
    "cabinet": ("cabinet",),
    "sidewalk": ("sidewalk", "curb"),
    "person": ("person",),
    "earth": ("soil",),
    "door": ("door",),
    "table": ("table",),
    "plant": ("bush", "potted_plant"),
    "curtain": ("curtain",),
    "chair": ("chair",),
    "car": ("car",),
    "painting": ("picture",),
    "sofa": ("sofa",),
    "lamp": ("lamp",),
    "pillow": ("pillow",),
    "bookcase": ("bookshelf",),
    "bus": ("bus",),
    "truck": ("truck",),
    "television receiver": ("television",),
    "airplane": ("airplane",),
    "bottle": ("bottle",),
    "animal": ("dog", "cat"),
    "bicycle": ("bicycle",),
}

COCO_PANOPTIC = {
    "person": ("person",),
    "bicycle": ("bicycle",),
    "car": ("car",),
    "motorcycle": ("motorcycle",),
    "airplane": ("airplane",),
    "bus": ("bus",),
    "truck": ("truck",),
    "cat": ("cat",),
    "dog": ("dog",),
    "bottle": ("bottle",),
    "chair": ("chair",),
    "couch": ("sofa",),
    "potted plant": ("potted_plant",),
    "bed": ("bed",),
    "dining table": ("table",),
    "tv": ("television",),
    "curtain": ("curtain",),
    "door-stuff": ("door",),
    "light": ("lamp",),
    "pillow": ("pillow",),
    "road": ("road",),
    "shelf": ("bookshelf",),
    "window-other": ("window",),
    "tree-merged": ("tree", "bush"),
    "ceiling-merged": ("ceiling",),
    "sky-other-merged": ("sky",),
    "cabinet-merged": ("cabinet",),
    "floor-other-merged": ("floor",),
    "pavement-merged": ("sidewalk", "curb"),
    "grass-merged": ("grass",),
    "dirt-merged": ("soil",),
    "building-other-merged": ("building",),
    "wall-other-merged": ("wall", "room_wall"),
}

VOC_OBJECTS = {
    "aeroplane": ("airplane",),
    "bicycle": ("bicycle",),
    "bottle": ("bottle",),
    "bus": ("bus",),
    "car": ("car",),
    "cat": ("cat",),
    "chair": ("chair",),
    "diningtable": ("table",),
    "dog": ("dog",),
    "motorbike": ("motorcycle",),
    "person": ("person",),
    "pottedplant": ("potted_plant",),
    "sofa": ("sofa",),
    "tvmonitor": ("television",),
}

CONTEXT_OBJECTS = {
    "aeroplane": ("airplane",),
    "bed": ("bed",),
    "bicycle": ("bicycle",),
    "bottle": ("bottle",),
    "building": ("building",),
    "bus": ("bus",),
    "cabinet": ("cabinet",),
    "car": ("car",),
    "cat": ("cat",),
    "ceiling": ("ceiling",),
    "chair": ("chair",),
    "curtain": ("curtain",),
    "dog": ("dog",),
    "door": ("door",),
    "floor": ("floor",),
    "grass": ("grass",),
    "ground": ("soil",),
    "light": ("lamp",),
    "motorbike": ("motorcycle",),
    "person": ("person",),
    "pottedplant": ("potted_plant",),
    "road": ("road",),
    "shelves": ("bookshelf",),
    "sidewalk": ("sidewalk", "curb"),
    "sky": ("sky",),
    "sofa": ("sofa",),
    "table": ("table",),
    "tree": ("tree", "bush"),
    "truck": ("truck",),
    "tvmonitor": ("television",),
    "wall": ("wall", "room_wall"),
    "window": ("window",),
}

# --- scene statistics --------------------------------------------------------------------------

DRIVING = {
    "sky": 1.0, "road": 1.0, "sidewalk": 0.9, "curb": 0.9, "lane_marking": 0.8, "crosswalk": 0.35,
    "building": 0.9, "tree": 0.7, "bush": 0.45, "grass": 0.5, "soil": 0.4, "wall": 0.4,
    "fence": 0.4, "pole": 1.2, "street_light": 0.5, "utility_pole": 0.35, "traffic_light": 0.7,
    "sign_front": 1.0, "person": 2.0, "bicyclist": 0.4, "motorcyclist": 0.35, "bicycle": 0.4,
    "motorcycle": 0.35, "car": 3.0, "truck": 0.5, "bus": 0.35, "train": 0.3,
}  # fmt: skip
INDOOR = {
    "room_wall": 1.0, "floor": 1.0, "ceiling": 0.85, "door": 0.6, "window": 0.7, "picture": 0.7,
    "curtain": 0.5, "bookshelf": 0.45, "cabinet": 0.6, "television": 0.45, "lamp": 0.5,
    "bed": 0.4, "pillow": 0.9, "sofa": 0.5, "table": 0.8, "chair": 1.5, "person": 0.4,
}  # fmt: skip
EVERYDAY = {
    "sky": 1.0, "building": 0.7, "tree": 0.6, "bush": 0.4, "grass": 0.55, "soil": 0.4,
    "road": 0.45, "sidewalk": 0.6, "curb": 0.6, "wall": 0.4,
    "room_wall": 1.0, "floor": 1.0, "ceiling": 0.75, "door": 0.5, "window": 0.9, "picture": 0.5,
    "curtain": 0.6, "cabinet": 0.55, "bookshelf": 0.5, "lamp": 0.5,
    "person": 1.2, "dog": 0.4, "cat": 0.35, "car": 0.6, "bus": 0.35, "truck": 0.35,
    "bicycle": 0.4, "motorcycle": 0.35, "airplane": 0.45, "potted_plant": 0.4, "bottle": 0.4,
    "chair": 0.7, "sofa": 0.45, "table": 0.5, "bed": 0.4, "pillow": 0.6, "television": 0.5,
}  # fmt: skip


def _freq(base: dict[str, float], drop: tuple[str, ...] = (), **extra: float) -> dict[str, float]:
    out = {k: v for k, v in base.items() if k not in drop}
    out.update(extra)
    return out


_PASCAL = _freq(EVERYDAY, person=1.0)  # VOC and PASCAL Context annotate the same kind of images

SPECS: dict[str, SyntheticSpec] = {
    spec.key: spec
    for spec in (
        # training: driving
        SyntheticSpec(
            "cityscapes", "driving", CITYSCAPES_19,
            Domain(gain=(0.98, 1.0, 0.96), saturation=0.8, noise=0.015, horizon=0.42),
            _freq(DRIVING, sign_back=0.4, parking=0.3, guard_rail=0.15, billboard=0.25,
                  barrier=0.2, other_vehicle=0.15),
        ),
        SyntheticSpec(
            "mapillary", "driving", MAPILLARY,
            Domain(gain=(1.04, 1.0, 0.98), brightness=0.03, contrast=1.1, saturation=1.1,
                   noise=0.02, texture_scale=0.9, horizon=0.45, horizon_jitter=0.08),
            _freq(DRIVING, sign_back=0.8, street_light=1.0, utility_pole=0.7, parking=0.35,
                  guard_rail=0.4, barrier=0.4, billboard=0.5, other_vehicle=0.35, crosswalk=0.45,
                  bicyclist=0.5, motorcyclist=0.5),
        ),
        SyntheticSpec(
            "bdd", "driving", CITYSCAPES_19,
            Domain(gain=(0.94, 0.96, 1.1), brightness=-0.08, contrast=0.9, saturation=0.9,
                   noise=0.04, blur=1, horizon=0.5),
            _freq(DRIVING, car=4.0, person=1.2, guard_rail=0.4, parking=0.25, billboard=0.3,
                  other_vehicle=0.2, sign_back=0.3),
        ),
        SyntheticSpec(
            "idd", "driving", IDD_LEVEL3,
            Domain(gain=(1.12, 1.0, 0.84), brightness=0.04, contrast=0.95, saturation=0.9,
                   noise=0.025, texture_scale=1.1, horizon=0.4),
            _freq(DRIVING, autorickshaw=1.2, other_vehicle=0.5, motorcyclist=0.9, motorcycle=0.7,
                  person=2.5, car=2.0, soil=0.8, grass=0.4, lane_marking=0.4, crosswalk=0.2,
                  barrier=0.5, parking=0.3, guard_rail=0.3, billboard=0.5, sign_back=0.4,
                  train=0.1),
        ),
        # training: indoor and everyday
        SyntheticSpec(
            "sunrgbd", "indoor", SUNRGBD,
            Domain(gain=(1.08, 1.0, 0.9), contrast=0.9, noise=0.03, blur=1),
            _freq(INDOOR, bottle=0.4, potted_plant=0.3),
        ),
        SyntheticSpec(
            "ade20k", "everyday", ADE20K,
            Domain(noise=0.015, outdoor=0.5),
            _freq(EVERYDAY, drop=("motorcycle",)),
        ),
        SyntheticSpec(
            "coco", "everyday", COCO_PANOPTIC,
            Domain(gain=(1.03, 1.0, 0.97), contrast=1.05, noise=0.02, object_scale=0.9,
                   outdoor=0.55),
            _freq(EVERYDAY, person=1.5),
        ),
        # unseen
        SyntheticSpec(
            "kitti", "driving", CITYSCAPES_19,
            Domain(gain=(1.0, 1.02, 0.98), brightness=0.02, contrast=1.15, noise=0.03,
                   horizon=0.45),
            _freq(DRIVING, car=3.5, person=1.0, tree=0.9, bush=0.6, grass=0.7, crosswalk=0.15,
                  guard_rail=0.2, parking=0.3, sign_back=0.3, other_vehicle=0.2),
        ),
        # WildDash v1 (UniSeg Tables 1-2): Cityscapes' 19 classes in dashcam frames chosen for
        # their hazards (night, glare, rain, lens distortion): the hardest domain of the set
        SyntheticSpec(
            "wilddash", "driving", CITYSCAPES_19,
            Domain(gain=(1.15, 0.95, 0.8), brightness=-0.1, contrast=1.3, saturation=0.6,
                   noise=0.07, blur=2, texture_scale=1.3, horizon=0.5, horizon_jitter=0.12),
            _freq(DRIVING, guard_rail=0.3, barrier=0.25, billboard=0.3, sign_back=0.4,
                  other_vehicle=0.3, parking=0.2),
        ),
        SyntheticSpec(
            "wilddash2", "driving", CITYSCAPES_19,
            Domain(gain=(0.85, 1.05, 1.2), brightness=-0.05, contrast=1.25, saturation=0.7,
                   noise=0.06, blur=1, texture_scale=1.2, horizon=0.48, horizon_jitter=0.1),
            _freq(DRIVING, guard_rail=0.3, barrier=0.3, billboard=0.3, sign_back=0.4,
                  other_vehicle=0.3),
        ),
        SyntheticSpec(
            "camvid", "driving", CAMVID_11,
            Domain(gain=(1.1, 1.05, 0.9), brightness=0.05, contrast=0.85, saturation=1.2,
                   noise=0.03, blur=1, texture_scale=0.85, horizon=0.46),
            _freq(DRIVING, drop=("motorcyclist", "motorcycle", "train"), parking=0.3,
                  sign_back=0.3, other_vehicle=0.25),
        ),
        SyntheticSpec(
            "scannet", "indoor", SCANNET_20,
            Domain(brightness=-0.06, contrast=0.8, noise=0.05, blur=2, texture_scale=1.1),
            _freq(INDOOR, ceiling=0.6, person=0.2, bottle=0.3),
        ),
        SyntheticSpec(
            "voc", "everyday", _with_background(VOC_OBJECTS, _PASCAL),
            Domain(gain=(0.95, 1.0, 1.05), brightness=0.02, contrast=1.1, noise=0.025, blur=1,
                   object_scale=1.2, outdoor=0.5),
            _PASCAL,
        ),
        SyntheticSpec(
            "context", "everyday", _with_background(CONTEXT_OBJECTS, _PASCAL),
            Domain(gain=(0.96, 1.0, 1.04), brightness=0.01, contrast=1.05, noise=0.025, blur=1,
                   object_scale=1.1, outdoor=0.55),
            _PASCAL,
        ),
    )
}  # fmt: skip
