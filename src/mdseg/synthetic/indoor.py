"""Indoor scenes: a room box in one-point perspective, things on its walls, furniture on its floor.

The back wall is the rectangle [x0, x1] x [y0, y1]; its vanishing point (cx, cy) lies inside.
A pixel's scale ``k`` along x or y is how far it lies from the vanishing point relative to the
back wall's edge; the larger of the two decides whether it sees a side wall, ceiling or floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdseg.synthetic.canvas import Canvas
from mdseg.synthetic.domain import Domain
from mdseg.synthetic.objects import draw

# object heights as a share of the wall height at the object's depth
HEIGHTS = {
    "bed": 0.34, "sofa": 0.36, "table": 0.3, "chair": 0.38, "person": 0.68, "potted_plant": 0.3,
    "lamp": 0.6, "bottle": 0.1, "pillow": 0.08,
}  # fmt: skip
Box = tuple[float, float, float, float]  # top, foot, left, right
FLOOR_ITEMS = ("bed", "sofa", "table", "chair", "person", "potted_plant", "lamp")


@dataclass(frozen=True)
class Room:
    x0: float
    x1: float
    y0: float
    y1: float
    cx: float
    cy: float

    def wall_height(self, foot: float) -> float:
        """Height of the room at a floor point whose image row is ``foot``."""
        return (self.y1 - self.y0) * (foot - self.cy) / (self.y1 - self.cy)


def layout(c: Canvas, domain: Domain) -> None:
    """Paint one indoor scene onto ``c``."""
    room = paint_room(c)
    boxes = wall_items(c, room)
    placed = []
    for name in FLOOR_ITEMS:
        placed += [(c.rng.uniform(room.y1 + 0.04, 1.08), name) for _ in range(c.count(name))]
    for foot, name in sorted(placed):
        height = HEIGHTS[name] * room.wall_height(foot) * domain.object_scale
        box = draw(
            c, name, c.rng.uniform(0.08, 0.92), foot, height, flip=bool(c.rng.random() < 0.5)
        )
        boxes.setdefault(name, []).append(box)
    place_on_top(c, room, boxes, ("television", "pillow", "bottle"))


def paint_room(c: Canvas) -> Room:
    """Walls, floor and (if present) ceiling; with no ceiling the camera looks down at the floor."""
    rng = c.rng
    x0, x1 = rng.uniform(0.12, 0.32), rng.uniform(0.68, 0.88)
    y0 = rng.uniform(0.1, 0.28) if c.has("ceiling") else rng.uniform(-0.25, -0.02)
    y1 = rng.uniform(0.55, 0.72)
    room = Room(
        x0,
        x1,
        y0,
        y1,
        (x0 + x1) / 2 + rng.uniform(-0.05, 0.05),
        y0 + (y1 - y0) * rng.uniform(0.4, 0.6),
    )
    kx = np.where(c.x < room.cx, (room.cx - c.x) / (room.cx - x0), (c.x - room.cx) / (x1 - room.cx))
    ky = np.where(c.y < room.cy, (room.cy - c.y) / (room.cy - y0), (c.y - room.cy) / (y1 - room.cy))
    c.fill("room_wall")
    vertical = (ky > kx) & (ky > 1.0)
    c.paint(vertical & (c.y < room.cy), "ceiling")
    c.paint(vertical & (c.y > room.cy), "floor")
    return room


def _side_wall_rect(c: Canvas, room: Room, sign: int, xa: float, xb: float, ya: float, yb: float):
    """Pixels of a rectangle on a side wall: x in [xa, xb] of the wall's width share, y in
    [ya, yb] given as rows on the back wall's edge and carried along the perspective."""
    edge = room.x0 if sign < 0 else room.x1
    outer = 0.0 if sign < 0 else 1.0
    xs = (edge + (outer - edge) * xa, edge + (outer - edge) * xb)
    k = np.abs(c.x - room.cx) / abs(edge - room.cx)
    inside = (c.x >= min(xs)) & (c.x < max(xs))
    return inside & (c.y >= room.cy + (ya - room.cy) * k) & (c.y < room.cy + (yb - room.cy) * k)


def wall_items(c: Canvas, room: Room) -> dict[str, list[Box]]:
    """Bookshelves, cabinets, doors, windows with curtains, pictures: on the back or a side wall.

    Returns the boxes of what stands against the back wall, by class.
    """
    rng = c.rng
    wall_h = room.y1 - room.y0
    boxes: dict[str, list[Box]] = {}
    for name, top, bottom, width in (
        ("bookshelf", 0.2, 1.0, 0.16), ("cabinet", 0.62, 1.0, 0.2), ("door", 0.2, 1.0, 0.14),
        ("window", 0.18, 0.58, 0.2), ("picture", 0.25, 0.45, 0.1),
    ):  # fmt: skip
        for _ in range(c.count(name)):
            ya, yb = room.y0 + top * wall_h, room.y0 + bottom * wall_h
            curtain = name == "window" and c.has("curtain")
            if rng.random() < 0.6:
                w = max(width * rng.uniform(0.8, 1.3), c.min_extent)
                x = rng.uniform(room.x0 + w / 2, max(room.x1 - w / 2, room.x0 + w / 2))
                c.rect(name, ya, yb, x - w / 2, x + w / 2)
                boxes.setdefault(name, []).append((ya, yb, x - w / 2, x + w / 2))
                if curtain:
                    cw = max(0.3 * w, c.min_extent)
                    c.rect("curtain", ya - 0.03, yb + 0.05, x - w / 2 - cw / 2, x - w / 2 + cw)
                    c.rect("curtain", ya - 0.03, yb + 0.05, x + w / 2 - cw, x + w / 2 + cw / 2)
            else:
                sign = int(rng.choice([-1, 1]))
                xa = rng.uniform(0.1, 0.6)
                xb = xa + rng.uniform(0.15, 0.3)
                c.paint(_side_wall_rect(c, room, sign, xa, xb, ya, yb), name)
                if curtain:
                    c.paint(
                        _side_wall_rect(c, room, sign, xb - 0.05, xb + 0.08, ya - 0.03, yb + 0.05),
                        "curtain",
                    )
    return boxes


def place_on_top(c: Canvas, room: Room, boxes: dict[str, list[Box]], names: tuple[str, ...]):
    """Place the ``names`` among: televisions on cabinets or tables (else on the wall), pillows on
    beds and sofas, bottles on tables (else on the floor)."""
    rng = c.rng
    supports = boxes.get("cabinet", []) + boxes.get("table", [])
    for i in range(c.count("television") if "television" in names else 0):
        if i < len(supports):
            top, foot, x0, x1 = supports[i]
            w = 0.6 * (x1 - x0)
            draw(c, "television", (x0 + x1) / 2, top + 0.02 * (foot - top), w / 1.6)
        else:
            w = rng.uniform(0.1, 0.18)
            x = rng.uniform(room.x0 + w, max(room.x1 - w, room.x0 + w))
            y = room.y0 + rng.uniform(0.45, 0.6) * (room.y1 - room.y0)
            draw(c, "television", x, y, w / 1.6)
    seats = boxes.get("bed", []) + boxes.get("sofa", [])
    tables = boxes.get("table", [])
    for name, holders in (("pillow", seats), ("bottle", tables)):
        for i in range(c.count(name) if name in names else 0):
            if holders:
                top, foot, x0, x1 = holders[i % len(holders)]
                x = rng.uniform(x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0))
                base = top + (0.5 if name == "pillow" else 0.04) * (foot - top)
                draw(c, name, x, base, (0.22 if name == "pillow" else 0.5) * (foot - top))
            else:
                foot = rng.uniform(room.y1 + 0.1, 1.0)
                draw(c, name, rng.uniform(0.1, 0.9), foot, HEIGHTS[name] * room.wall_height(foot))
