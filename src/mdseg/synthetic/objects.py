"""Object silhouettes: each fine-class object is a few primitives inside its bounding box.

A part's box is given in object coordinates: ``y`` from 0 (top) to 1 (foot), ``x`` from -0.5 to
0.5 of the object's width. A part names its fine class, or ``None`` for the object's own class
(riders carry their vehicle as parts of another class).
"""

from __future__ import annotations

from dataclasses import dataclass

from mdseg.synthetic.canvas import Canvas

Part = tuple[str | None, str, float, float, float, float]  # class, shape, y0, y1, x0, x1


@dataclass(frozen=True)
class Template:
    aspect: float  # width / height
    parts: tuple[Part, ...]


def _wheels(y0: float, cls: str | None = None, inner: float = 0.15, outer: float = 0.45):
    return ((cls, "ellipse", y0, 1.0, -outer, -inner), (cls, "ellipse", y0, 1.0, inner, outer))


TEMPLATES: dict[str, Template] = {
    "person": Template(0.4, (
        (None, "ellipse", 0.0, 0.2, -0.24, 0.24),
        (None, "rect", 0.17, 0.58, -0.5, 0.5),
        (None, "rect", 0.56, 1.0, -0.4, -0.04),
        (None, "rect", 0.56, 1.0, 0.04, 0.4),
    )),
    "bicyclist": Template(0.95, (
        *_wheels(0.62, "bicycle", 0.08, 0.5),
        ("bicycle", "rect", 0.62, 0.76, -0.3, 0.3),
        ("bicycle", "rect", 0.42, 0.66, 0.2, 0.3),
        (None, "ellipse", 0.0, 0.17, 0.02, 0.26),
        (None, "rect", 0.14, 0.52, -0.2, 0.2),
        (None, "rect", 0.48, 0.8, -0.12, 0.06),
    )),
    "motorcyclist": Template(1.0, (
        *_wheels(0.68, "motorcycle", 0.12, 0.5),
        ("motorcycle", "ellipse", 0.48, 0.86, -0.46, 0.46),
        (None, "ellipse", 0.0, 0.2, -0.04, 0.22),
        (None, "rect", 0.16, 0.56, -0.22, 0.2),
        (None, "rect", 0.5, 0.74, -0.16, 0.16),
    )),
    "motorcycle": Template(1.5, (
        *_wheels(0.5, None, 0.1, 0.5),
        (None, "ellipse", 0.25, 0.75, -0.4, 0.4),
        (None, "rect", 0.0, 0.3, 0.28, 0.36),
    )),
    "bicycle": Template(1.6, (
        *_wheels(0.45, None, 0.05, 0.5),
        (None, "rect", 0.45, 0.62, -0.3, 0.3),
        (None, "rect", 0.28, 0.46, -0.18, -0.04),
        (None, "rect", 0.2, 0.5, 0.2, 0.3),
    )),
    "car": Template(1.8, (
        (None, "rect", 0.4, 0.86, -0.5, 0.5),
        (None, "trapezoid", 0.04, 0.42, -0.34, 0.34),
        *_wheels(0.66, None, 0.16, 0.42),
    )),
    "truck": Template(1.5, (
        (None, "rect", 0.0, 0.86, -0.5, 0.16),
        (None, "rect", 0.3, 0.86, 0.16, 0.5),
        *_wheels(0.72, None, 0.2, 0.42),
    )),
    "bus": Template(2.3, (
        (None, "rect", 0.0, 0.9, -0.5, 0.5),
        *_wheels(0.75, None, 0.22, 0.4),
    )),
    "train": Template(3.0, (
        (None, "rect", 0.08, 0.94, -0.5, 0.5),
        (None, "trapezoid", 0.0, 0.1, -0.12, 0.12),
    )),
    "autorickshaw": Template(1.0, (
        (None, "ellipse", 0.0, 0.6, -0.46, 0.46),
        (None, "rect", 0.3, 0.86, -0.5, 0.5),
        *_wheels(0.76, None, 0.2, 0.44),
    )),
    "other_vehicle": Template(1.4, (
        (None, "rect", 0.35, 0.75, -0.5, 0.1),
        (None, "rect", 0.0, 0.55, -0.14, 0.3),
        (None, "ellipse", 0.42, 1.0, 0.04, 0.5),
        (None, "ellipse", 0.68, 1.0, -0.46, -0.18),
    )),
    "dog": Template(1.4, (
        (None, "ellipse", 0.25, 0.72, -0.42, 0.3),
        (None, "ellipse", 0.02, 0.42, 0.16, 0.5),
        (None, "rect", 0.6, 1.0, -0.36, -0.24),
        (None, "rect", 0.6, 1.0, 0.08, 0.2),
        (None, "rect", 0.24, 0.36, -0.5, -0.36),
    )),
    "cat": Template(1.1, (
        (None, "ellipse", 0.4, 0.86, -0.4, 0.3),
        (None, "ellipse", 0.14, 0.52, 0.08, 0.5),
        (None, "trapezoid", 0.0, 0.22, 0.1, 0.26),
        (None, "trapezoid", 0.0, 0.22, 0.32, 0.48),
        (None, "rect", 0.74, 1.0, -0.32, -0.2),
        (None, "rect", 0.74, 1.0, 0.08, 0.2),
        (None, "rect", 0.18, 0.62, -0.5, -0.4),
    )),
    "bottle": Template(0.36, (
        (None, "rect", 0.34, 1.0, -0.5, 0.5),
        (None, "trapezoid", 0.18, 0.36, -0.5, 0.5),
        (None, "rect", 0.0, 0.22, -0.18, 0.18),
    )),
    "potted_plant": Template(0.8, (
        (None, "ellipse", 0.0, 0.66, -0.5, 0.5),
        (None, "trapezoid", 0.58, 1.0, -0.32, 0.32),
    )),
    "airplane": Template(2.5, (
        (None, "ellipse", 0.36, 0.66, -0.5, 0.5),
        (None, "trapezoid", 0.3, 0.8, -0.18, 0.12),
        (None, "trapezoid", 0.0, 0.46, -0.5, -0.34),
    )),
    "chair": Template(0.6, (
        (None, "rect", 0.0, 0.56, -0.5, -0.26),
        (None, "rect", 0.44, 0.6, -0.5, 0.5),
        (None, "rect", 0.6, 1.0, -0.5, -0.34),
        (None, "rect", 0.6, 1.0, 0.34, 0.5),
    )),
    "sofa": Template(2.0, (
        (None, "rect", 0.0, 0.56, -0.5, 0.5),
        (None, "rect", 0.44, 0.86, -0.5, 0.5),
        (None, "rect", 0.24, 0.86, -0.5, -0.4),
        (None, "rect", 0.24, 0.86, 0.4, 0.5),
        (None, "rect", 0.86, 1.0, -0.46, -0.38),
        (None, "rect", 0.86, 1.0, 0.38, 0.46),
    )),
    "table": Template(1.6, (
        (None, "rect", 0.0, 0.3, -0.5, 0.5),
        (None, "rect", 0.3, 1.0, -0.46, -0.34),
        (None, "rect", 0.3, 1.0, 0.34, 0.46),
    )),
    "bed": Template(2.2, (
        (None, "rect", 0.0, 0.62, -0.5, -0.4),
        (None, "rect", 0.32, 0.8, -0.5, 0.5),
        (None, "rect", 0.8, 1.0, -0.48, 0.48),
    )),
    "cabinet": Template(0.9, ((None, "rect", 0.0, 1.0, -0.5, 0.5),)),
    "bookshelf": Template(0.6, ((None, "rect", 0.0, 1.0, -0.5, 0.5),)),
    "lamp": Template(0.36, (
        (None, "trapezoid", 0.0, 0.32, -0.5, 0.5),
        (None, "rect", 0.3, 0.96, -0.12, 0.12),
        (None, "rect", 0.94, 1.0, -0.34, 0.34),
    )),
    "television": Template(1.6, (
        (None, "rect", 0.0, 0.84, -0.5, 0.5),
        (None, "trapezoid", 0.84, 1.0, -0.22, 0.22),
    )),
    "pillow": Template(1.6, ((None, "ellipse", 0.0, 1.0, -0.5, 0.5),)),
}  # fmt: skip


def draw(
    canvas: Canvas, name: str, x: float, foot: float, height: float, flip: bool = False
) -> tuple[float, float, float, float]:
    """Draw object ``name`` centred at ``x`` standing on ``foot``; return its box (y0, y1, x0, x1).

    The object is scaled up if needed so that neither side is under the canvas's minimum extent.
    """
    template = TEMPLATES[name]
    width = height * template.aspect
    scale = max(1.0, canvas.min_extent / min(width, height))
    width, height = width * scale, height * scale
    top = foot - height
    for cls, shape, py0, py1, px0, px1 in template.parts:
        if flip:
            px0, px1 = -px1, -px0
        box = (top + py0 * height, top + py1 * height, x + px0 * width, x + px1 * width)
        getattr(canvas, shape)(cls or name, *box)
    return top, foot, x - width / 2, x + width / 2
