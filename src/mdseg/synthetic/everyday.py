"""Everyday scenes: an outdoor or indoor backdrop with a few large, salient objects in front."""

from __future__ import annotations

import numpy as np

from mdseg.synthetic import indoor
from mdseg.synthetic.canvas import Canvas
from mdseg.synthetic.domain import Domain
from mdseg.synthetic.objects import draw

# object heights as a share of the image height, for an object at the bottom edge
OUTDOOR = {
    "person": 0.6, "dog": 0.3, "cat": 0.26, "car": 0.34, "bus": 0.46, "truck": 0.44,
    "bicycle": 0.3, "motorcycle": 0.32, "potted_plant": 0.3, "bottle": 0.26,
}  # fmt: skip
INDOOR = {
    "person": 0.66, "dog": 0.3, "cat": 0.26, "chair": 0.42, "sofa": 0.4, "table": 0.34,
    "bed": 0.38, "television": 0.3, "bottle": 0.28, "potted_plant": 0.34, "lamp": 0.55,
}  # fmt: skip


def layout(c: Canvas, domain: Domain) -> None:
    """Paint one everyday scene onto ``c``."""
    if c.rng.random() < domain.outdoor:
        h = _outdoor_backdrop(c, domain)
        _salient(c, OUTDOOR, h + 0.12, domain)
        for _ in range(c.count("airplane")):
            w = c.rng.uniform(0.35, 0.7) * domain.object_scale
            y = c.rng.uniform(0.08, max(h - 0.1, 0.12)) + w / 5
            draw(
                c,
                "airplane",
                c.rng.uniform(0.25, 0.75),
                y,
                w / 2.5,
                flip=bool(c.rng.random() < 0.5),
            )
    else:
        room = indoor.paint_room(c)
        boxes = indoor.wall_items(c, room)
        boxes.update(_salient(c, INDOOR, room.y1 + 0.06, domain))
        indoor.place_on_top(c, room, boxes, ("pillow",))


def _outdoor_backdrop(c: Canvas, domain: Domain) -> float:
    """Sky, a skyline of buildings and trees, and ground bands; returns the horizon row."""
    rng = c.rng
    h = float(np.clip(domain.horizon + domain.horizon_jitter * rng.standard_normal(), 0.3, 0.62))
    c.fill("sky")
    if c.has("building"):
        x = rng.uniform(-0.2, 0.1)
        while x < 1.0:
            w = rng.uniform(0.15, 0.35)
            if rng.random() < 0.75:
                c.rect("building", h - rng.uniform(0.1, 0.38), h + 0.02, x, x + w)
            x += w
    if c.has("tree"):
        for _ in range(int(rng.integers(1, 4))):
            x, r = rng.uniform(0.05, 0.95), rng.uniform(0.08, 0.16)
            c.rect("tree", h - 0.1, h + 0.02, x - 0.02, x + 0.02)
            c.ellipse("tree", h - 0.1 - 2 * r, h - 0.06, x - r, x + r)
    c.paint(c.y > h, c.pick(("grass", "soil")) or "sidewalk")
    if c.has("wall"):
        x0 = rng.uniform(-0.1, 0.6)
        c.rect("wall", h - rng.uniform(0.08, 0.16), h + 0.04, x0, x0 + rng.uniform(0.3, 0.6))
    if c.has("road"):
        top = rng.uniform(h + 0.08, 0.75)
        bottom = min(top + rng.uniform(0.15, 0.35), 1.0)
        c.rect("road", top, bottom, 0.0, 1.0)
        if c.has("sidewalk"):
            c.rect("sidewalk", top - rng.uniform(0.07, 0.14), top, 0.0, 1.0)
            if c.has("curb"):
                c.rect("curb", top - c.min_extent, top, 0.0, 1.0)
    if c.has("bush"):
        for _ in range(int(rng.integers(1, 4))):
            x, r = rng.uniform(0.0, 1.0), rng.uniform(0.06, 0.14)
            c.ellipse("bush", h - 0.6 * r, h + 1.2 * r, x - r, x + r)
    return h


def _salient(c: Canvas, sizes: dict[str, float], floor: float, domain: Domain) -> dict:
    """Large objects standing between ``floor`` and the bottom edge, drawn far to near."""
    rng = c.rng
    placed = []
    for name in sizes:
        placed += [(rng.uniform(floor, 1.06), name) for _ in range(c.count(name))]
    boxes: dict[str, list] = {}
    for foot, name in sorted(placed):
        depth = 0.5 + 0.5 * (foot - floor) / max(1.06 - floor, 1e-3)
        height = sizes[name] * depth * rng.uniform(0.8, 1.2) * domain.object_scale
        box = draw(c, name, rng.uniform(0.12, 0.88), foot, height, flip=bool(rng.random() < 0.5))
        boxes.setdefault(name, []).append(box)
    return boxes
