"""Driving scenes: a street in one-point perspective seen from a car.

Below the horizon ``h`` a ground point at depth ``D`` (its image row is ``h + D``) and lateral
offset ``u`` (in camera heights) projects to ``x = vx + (cu + u) * D``. Road, parking lane, curb,
sidewalk and terrain are bands of ``u``; walls, fences, buildings and trees stand on vertical
planes of constant ``u``; road users and street furniture are drawn far to near.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdseg.synthetic.canvas import Canvas
from mdseg.synthetic.domain import Domain
from mdseg.synthetic.objects import TEMPLATES, draw

# object heights in camera heights
HEIGHTS = {
    "car": 0.65, "truck": 1.5, "bus": 1.8, "train": 2.0, "other_vehicle": 1.3,
    "autorickshaw": 1.0, "bicyclist": 1.1, "motorcyclist": 1.0, "person": 1.1,
    "motorcycle": 0.7, "bicycle": 0.6,
}  # fmt: skip
ON_ROAD = ("car", "truck", "bus", "train", "other_vehicle", "autorickshaw", "bicyclist",
           "motorcyclist")  # fmt: skip
ROADSIDE = ("person", "bicycle", "motorcycle", "pole", "traffic_light", "sign_front", "sign_back",
            "street_light", "utility_pole", "tree")  # fmt: skip
CURB, PARKING = 0.2, 0.5  # band widths in camera heights
MAX_HEIGHT, MAX_WIDTH = 0.5, 0.6  # no road user fills the view


@dataclass(frozen=True)
class Side:
    """One side of the street; offsets are lateral distances from the road's centre line."""

    sign: int  # -1 left, +1 right
    road_edge: float  # where the road (and parking lane, if any) ends
    parking: float  # width of the parking lane, 0 if none
    edge: str | None  # curb, barrier or guard_rail along the road edge
    outer: float  # width from the road edge to the sidewalk's outer edge (CURB if no sidewalk)

    @property
    def walk(self) -> float:
        """Inner edge of the walkable sidewalk."""
        return self.road_edge + CURB


@dataclass(frozen=True)
class Street:
    h: float
    vx: float
    cu: float
    road: float  # half width of the road
    sides: tuple[Side, Side]

    def x_of(self, u: float, depth: float) -> float:
        return self.vx + (self.cu + u) * depth


def layout(c: Canvas, domain: Domain) -> None:
    """Paint one driving scene onto ``c``."""
    rng = c.rng
    h = float(np.clip(domain.horizon + domain.horizon_jitter * rng.standard_normal(), 0.28, 0.62))
    road = rng.uniform(0.7, 1.3)
    street = Street(
        h,
        0.5 + rng.uniform(-0.12, 0.12),
        rng.uniform(-0.3, 0.3),
        road,
        (_side(c, -1, road), _side(c, 1, road)),
    )
    c.fill("sky")
    _skyline(c, street)
    _ground(c, street)
    for side in street.sides:
        _facades(c, street, side)
    _furniture_and_users(c, street, domain)


def _side(c: Canvas, sign: int, road: float) -> Side:
    parking = PARKING if c.has("parking") else 0.0
    edge = None  # barriers and guard rails: half their frequency per side, so about it per scene
    for kind in ("barrier", "guard_rail"):
        if edge is None and c.rng.random() < c.frequency.get(kind, 0.0) / 2:
            edge = kind
    if edge is None and c.has("curb"):
        edge = "curb"
    outer = CURB + c.rng.uniform(0.5, 1.1) if c.has("sidewalk") else CURB
    return Side(sign, road + parking, parking, edge, outer)


def _skyline(c: Canvas, st: Street) -> None:
    """Distant blocks and tree tops around the vanishing point."""
    names = tuple(n for n in ("building", "tree") if c.frequency.get(n, 0.0) > 0)
    for _ in range(int(c.rng.integers(2, 6))):
        if not names:
            return
        name = names[int(c.rng.integers(len(names)))]
        x = st.vx + c.rng.uniform(-0.4, 0.4)
        w, top = c.rng.uniform(0.06, 0.2), c.rng.uniform(0.04, 0.16)
        shape = c.rect if name == "building" else c.ellipse
        shape(name, st.h - top, st.h + 0.02, x - w / 2, x + w / 2)


def _ground(c: Canvas, st: Street) -> None:
    depth = np.maximum(c.y - st.h, 1e-3)
    below = c.y > st.h
    u = (c.x - st.vx) / depth - st.cu
    for side in st.sides:
        lat = side.sign * u
        here = below & (lat >= 0)
        terrain = c.pick(("grass", "soil")) or "road"
        c.paint(here, terrain)
        if side.outer > CURB:
            c.paint(here & (lat < side.road_edge + side.outer), "sidewalk")
        if side.edge == "curb":
            c.paint(here & (lat >= side.road_edge) & (lat < side.walk), "curb")
        if side.parking:
            c.paint(here & (lat >= st.road) & (lat < side.road_edge), "parking")
    c.paint(below & (np.abs(u) < st.road), "road")
    near = depth > 0.1
    if c.has("lane_marking"):
        lanes = [0.0] + ([-st.road / 2, st.road / 2] if st.road > 0.95 else [])
        solid = c.rng.random() < 0.3
        dashes = (0.7 / depth + c.rng.random()) % 1.0 < 0.55
        for m in lanes:
            line = below & near & (np.abs(u - m) < 0.09)
            c.paint(line if solid and m == 0.0 else line & dashes, "lane_marking")
        for side in st.sides:
            if side.parking:
                c.paint(
                    below & near & (np.abs(side.sign * u - st.road - 0.05) < 0.06), "lane_marking"
                )
    if c.has("crosswalk"):
        d0 = c.rng.uniform(0.12, 0.4)
        band = below & (depth > d0) & (depth < d0 * 1.45) & (np.abs(u) < st.road)
        c.paint(band & ((u / 0.42) % 1.0 < 0.5), "crosswalk")


def _plane(
    c: Canvas, st: Street, u: float, d0: float, d1: float, r0: float, r1: np.ndarray | float
) -> np.ndarray:
    """Pixels of the vertical plane at lateral ``u`` with depth in [d0, d1) and relative height
    (0 at the foot, 1 at camera height) in [r0, r1)."""
    coef = st.cu + u
    depth = (c.x - st.vx) / coef
    rel = (st.h + depth - c.y) / np.maximum(depth, 1e-3)
    return (depth >= d0) & (depth < d1) & (rel >= r0) & (rel < r1)


def _segments(c: Canvas, kinds: list[str]) -> list[tuple[str | None, float, float]]:
    """Consecutive depth ranges along a plane, each one of ``kinds`` or a gap (None)."""
    out, d = [], 0.03
    while d < 4.0 and kinds:
        d1 = d * c.rng.uniform(1.4, 2.4)
        kind = None if c.rng.random() < 0.2 else kinds[int(c.rng.integers(len(kinds)))]
        out.append((kind, d, d1))
        d = d1
    return out


def _facades(c: Canvas, st: Street, side: Side) -> None:
    """Buildings and tree rows behind the sidewalk; walls, fences, hedges and rails on its edges."""
    rng = c.rng
    outer_u = side.sign * (side.road_edge + side.outer + rng.uniform(0.0, 0.5))
    billboard = c.has("billboard")
    for kind, d0, d1 in _segments(c, [k for k in ("building", "tree") if c.has(k)]):
        if kind == "building":
            top = rng.uniform(1.4, 4.5)
            c.paint(_plane(c, st, outer_u, d0, d1, -0.05, top), "building")
            if billboard and d1 - d0 > 0.08:
                inset = 0.2 * (d1 - d0)
                sign = _plane(c, st, outer_u, d0 + inset, d1 - inset, 0.7, min(top, 1.5))
                c.paint(sign, "billboard")
                billboard = False
        elif kind == "tree":
            depth = (c.x - st.vx) / (st.cu + outer_u)
            crown = rng.uniform(1.5, 2.8) * (1.0 + 0.15 * np.sin(np.log(np.abs(depth) + 1e-3) * 9))
            c.paint(_plane(c, st, outer_u, d0, d1, 0.4, crown), "tree")
            trunks = (np.log(np.abs(depth) + 1e-3) * 5) % 1.0 < 0.3
            c.paint(_plane(c, st, outer_u, d0, d1, -0.05, 0.45) & trunks, "tree")
    if billboard:
        d = rng.uniform(0.1, 0.5)
        c.paint(_plane(c, st, outer_u, d, d * 1.4, 0.9, 1.6), "billboard")
    inner_u = side.sign * (side.road_edge + side.outer)
    tops = {"wall": (0.4, 0.9), "fence": (0.3, 0.7), "bush": (0.25, 0.5)}
    for kind, d0, d1 in _segments(c, [k for k in tops if c.has(k)]):
        if kind is not None:
            c.paint(_plane(c, st, inner_u, d0, d1, -0.05, rng.uniform(*tops[kind])), kind)
    if side.edge in ("barrier", "guard_rail"):
        r0, r1 = (-0.02, 0.45) if side.edge == "barrier" else (0.12, 0.45)
        c.paint(_plane(c, st, side.sign * side.road_edge, 0.0, 4.0, r0, r1), side.edge)


def _furniture_and_users(c: Canvas, st: Street, domain: Domain) -> None:
    """Poles, signs, lights, street trees, people and vehicles, drawn far to near."""
    rng = c.rng
    span = 1.0 - st.h + 0.05
    items: list[tuple[float, str, float]] = []  # depth, kind, lateral offset
    for kind in ON_ROAD:
        for _ in range(c.count(kind)):
            edge = kind in ("bicyclist", "motorcyclist") and rng.random() < 0.6
            u = rng.uniform(0.55, 0.9) * rng.choice([-1, 1]) if edge else rng.uniform(-0.8, 0.8)
            items.append((span * rng.uniform(0.12, 0.75), kind, u * st.road))
    for kind in ROADSIDE:
        for _ in range(c.count(kind)):
            side = st.sides[int(rng.integers(2))]
            if kind == "person" and rng.random() < 0.2:
                u = rng.uniform(-0.8, 0.8) * st.road
            elif kind in ("person", "bicycle", "motorcycle"):
                u = side.sign * (side.walk + rng.uniform(0.1, 0.9) * max(side.outer - CURB, 0.2))
            else:
                u = side.sign * (side.walk + rng.uniform(0.05, 0.3))
            items.append((span * rng.uniform(0.12, 0.85), kind, u))
    for depth, kind, u in sorted(items, key=lambda item: item[0]):
        x, foot = st.x_of(u, depth), st.h + depth
        if kind in HEIGHTS:
            height = HEIGHTS[kind] * depth * domain.object_scale
            height = min(height, MAX_HEIGHT, MAX_WIDTH / TEMPLATES[kind].aspect)
            draw(c, kind, x, foot, height, flip=bool(rng.random() < 0.5))
        else:
            _street_furniture(c, kind, x, foot, depth, -1.0 if u > 0 else 1.0)


def _street_furniture(c: Canvas, kind: str, x: float, foot: float, depth: float, inward: float):
    """Pole-mounted things; ``inward`` is the x direction towards the road."""
    w = max(0.04 * depth, c.min_extent)
    if kind == "tree":
        top = foot - 2.2 * depth
        c.rect("tree", foot - 1.0 * depth, foot, x - w / 2, x + w / 2)
        c.ellipse("tree", top, foot - 0.9 * depth, x - 0.6 * depth, x + 0.6 * depth)
        return
    heights = {"utility_pole": 3.2, "street_light": 2.6, "traffic_light": 2.0, "pole": 1.5}
    top = foot - heights.get(kind, 1.4) * depth
    pole = kind if kind in ("utility_pole", "street_light") else "pole"
    pw = 1.5 * w if kind == "utility_pole" else w
    c.rect(pole, top, foot, x - pw / 2, x + pw / 2)
    if kind == "utility_pole":
        c.rect(pole, top + 0.2 * depth, top + 0.2 * depth + w, x - 0.5 * depth, x + 0.5 * depth)
    elif kind == "street_light":
        arm_end = x + inward * max(0.6 * depth, 2 * c.min_extent)
        c.rect(pole, top, top + w, min(x, arm_end), max(x, arm_end))
        c.ellipse(
            pole, top, top + max(0.15 * depth, c.min_extent), arm_end - 1.5 * w, arm_end + 1.5 * w
        )
    elif kind == "traffic_light":
        bw = max(0.2 * depth, c.min_extent)
        c.rect(kind, top, top + max(0.55 * depth, 2 * c.min_extent), x - bw / 2, x + bw / 2)
    elif kind.startswith("sign"):
        s = max(0.5 * depth, c.min_extent)
        shape = c.ellipse if kind == "sign_front" and c.rng.random() < 0.5 else c.rect
        shape(kind, top, top + s, x - s / 2, x + s / 2)
