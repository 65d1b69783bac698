"""The hidden world: fine classes, the scene types they occur in, and how their pixels look.

Every synthetic dataset labels these fine classes through its own coarser label space; the
world itself is never shown to a model. Texture periods are in pixels (at texture scale 1),
so a class keeps the same local look at every image size.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]
TEXTURES = ("flat", "stripes", "checker", "dots", "blobs")


@dataclass(frozen=True)
class FineClass:
    """One fine class: where it can occur and its appearance (colour plus texture)."""

    name: str
    scenes: frozenset[str]  # scene types whose layouts can draw it: driving | indoor | everyday
    color: RGB
    texture: str  # one of TEXTURES
    period: float  # texture period in pixels
    angle: float  # texture orientation in degrees
    amplitude: float  # how far the texture mixes the colour towards ``accent`` (0..1)
    accent: RGB
    requires: tuple[str, ...] = ()  # fine classes always drawn with it (a rider's vehicle)


SCENE_LETTERS = {"d": "driving", "i": "indoor", "e": "everyday"}


def _fine(
    name: str,
    scenes: str,
    color: RGB,
    texture: str,
    period: float,
    angle: float,
    amplitude: float,
    accent: RGB,
    requires: tuple[str, ...] = (),
) -> FineClass:
    """A fine class; ``scenes`` names scene types by initial letter ("de": driving, everyday)."""
    where = frozenset(SCENE_LETTERS[c] for c in scenes)
    return FineClass(name, where, color, texture, period, angle, amplitude, accent, requires)


WORLD: tuple[FineClass, ...] = (
    # ground
    _fine("road", "de", (92, 92, 98), "blobs", 9, 0, 0.45, (58, 58, 64)),
    _fine("lane_marking", "d", (238, 205, 70), "flat", 6, 0, 0.25, (250, 235, 160)),
    _fine("crosswalk", "d", (245, 245, 250), "dots", 5, 0, 0.3, (190, 195, 210)),
    _fine("parking", "d", (118, 106, 122), "checker", 7, 0, 0.35, (150, 140, 150)),
    _fine("sidewalk", "de", (172, 152, 140), "checker", 9, 0, 0.3, (130, 115, 105)),
    _fine("curb", "de", (205, 205, 195), "stripes", 6, 90, 0.45, (120, 120, 115)),
    _fine("barrier", "d", (214, 76, 58), "stripes", 8, 45, 0.7, (245, 245, 245)),
    _fine("guard_rail", "d", (175, 185, 205), "stripes", 4, 0, 0.7, (60, 65, 85)),
    _fine("grass", "de", (72, 142, 52), "stripes", 4, 80, 0.35, (120, 180, 70)),
    _fine("soil", "de", (136, 100, 62), "blobs", 6, 0, 0.45, (96, 70, 45)),
    # structures
    _fine("building", "de", (150, 140, 130), "dots", 8, 0, 0.65, (52, 62, 86)),
    _fine("wall", "de", (178, 104, 84), "stripes", 5, 0, 0.45, (225, 215, 200)),
    _fine("fence", "d", (132, 108, 78), "stripes", 5, 90, 0.7, (60, 45, 30)),
    _fine("pole", "d", (124, 128, 134), "flat", 6, 0, 0.15, (160, 165, 170)),
    _fine("utility_pole", "d", (112, 80, 50), "stripes", 4, 90, 0.35, (70, 50, 30)),
    _fine("street_light", "d", (66, 92, 82), "stripes", 5, 0, 0.35, (130, 150, 140)),
    _fine("traffic_light", "d", (38, 38, 40), "dots", 5, 0, 0.6, (230, 185, 40), ("pole",)),
    _fine("sign_front", "d", (32, 82, 205), "dots", 5, 45, 0.55, (250, 250, 250), ("pole",)),
    _fine("sign_back", "d", (190, 195, 205), "stripes", 4, 90, 0.5, (95, 100, 110), ("pole",)),
    _fine("billboard", "d", (222, 172, 40), "checker", 6, 0, 0.55, (200, 40, 120)),
    # nature
    _fine("tree", "de", (40, 100, 42), "blobs", 5, 0, 0.5, (95, 145, 62)),
    _fine("bush", "de", (88, 122, 40), "dots", 4, 30, 0.45, (50, 80, 25)),
    _fine("sky", "de", (140, 182, 232), "blobs", 14, 0, 0.35, (235, 240, 248)),
    # road users
    _fine("person", "die", (200, 140, 112), "stripes", 5, 0, 0.5, (62, 42, 100)),
    _fine("bicyclist", "d", (58, 162, 172), "stripes", 5, 0, 0.5, (232, 230, 62), ("bicycle",)),
    _fine("motorcyclist", "d", (92, 60, 142), "checker", 5, 0, 0.5, (30, 30, 30), ("motorcycle",)),
    _fine("car", "de", (172, 40, 50), "blobs", 8, 0, 0.3, (240, 225, 225)),
    _fine("truck", "de", (228, 228, 222), "stripes", 8, 0, 0.3, (140, 140, 140)),
    _fine("bus", "de", (240, 190, 30), "stripes", 7, 0, 0.55, (40, 50, 70)),
    _fine("train", "d", (50, 150, 110), "stripes", 9, 90, 0.55, (225, 235, 230)),
    _fine("motorcycle", "de", (32, 32, 36), "dots", 4, 0, 0.5, (182, 182, 192)),
    _fine("bicycle", "de", (222, 122, 32), "stripes", 4, 45, 0.55, (30, 30, 30)),
    _fine("autorickshaw", "d", (228, 212, 42), "checker", 6, 0, 0.6, (40, 122, 52)),
    _fine("other_vehicle", "d", (200, 90, 150), "blobs", 7, 0, 0.45, (90, 40, 70)),
    # rooms
    _fine("room_wall", "ie", (222, 216, 200), "flat", 6, 0, 0.12, (200, 195, 180)),
    _fine("floor", "ie", (152, 102, 60), "stripes", 6, 0, 0.35, (110, 70, 40)),
    _fine("ceiling", "ie", (236, 236, 242), "checker", 10, 0, 0.12, (205, 205, 215)),
    _fine("bed", "ie", (120, 150, 220), "blobs", 8, 0, 0.45, (205, 215, 240)),
    _fine("pillow", "ie", (246, 240, 226), "dots", 4, 0, 0.25, (205, 195, 170)),
    _fine("chair", "ie", (150, 60, 40), "stripes", 4, 90, 0.45, (85, 30, 20)),
    _fine("sofa", "ie", (60, 100, 130), "checker", 6, 0, 0.35, (35, 60, 85)),
    _fine("table", "ie", (196, 150, 90), "stripes", 4, 90, 0.4, (140, 95, 50)),
    _fine("cabinet", "ie", (150, 160, 110), "stripes", 9, 90, 0.5, (80, 85, 55)),
    _fine("door", "ie", (100, 60, 30), "checker", 12, 0, 0.4, (165, 110, 65)),
    _fine("window", "ie", (172, 212, 242), "checker", 8, 0, 0.55, (250, 250, 250)),
    _fine("picture", "ie", (202, 102, 62), "blobs", 5, 0, 0.7, (52, 122, 202)),
    _fine("lamp", "ie", (250, 232, 152), "flat", 6, 0, 0.2, (255, 250, 210)),
    _fine("television", "ie", (26, 26, 32), "stripes", 4, 0, 0.3, (62, 62, 92)),
    _fine("bookshelf", "ie", (90, 60, 40), "stripes", 4, 90, 0.7, (200, 60, 60)),
    _fine("curtain", "ie", (162, 42, 62), "stripes", 6, 90, 0.4, (100, 20, 35)),
    # everyday objects
    _fine("dog", "e", (205, 150, 75), "blobs", 6, 0, 0.45, (140, 90, 40)),
    _fine("cat", "e", (130, 130, 150), "stripes", 5, 60, 0.55, (50, 50, 60)),
    _fine("bottle", "ie", (42, 132, 62), "stripes", 6, 90, 0.35, (200, 235, 210)),
    _fine("potted_plant", "ie", (110, 185, 70), "stripes", 5, 60, 0.5, (50, 110, 35)),
    _fine("airplane", "e", (232, 232, 236), "stripes", 7, 0, 0.45, (52, 82, 162)),
)

FINE_INDEX: dict[str, int] = {fine.name: i for i, fine in enumerate(WORLD)}


def fine_class(name: str) -> FineClass:
    """The fine class called ``name``; a clear error for an unknown one."""
    if name not in FINE_INDEX:
        raise KeyError(f"unknown fine class {name!r}; known: {', '.join(FINE_INDEX)}")
    return WORLD[FINE_INDEX[name]]
