"""Render one synthetic scene: a layout paints the fine-class map, appearance turns it to pixels."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mdseg.synthetic import driving, everyday, indoor
from mdseg.synthetic.appearance import shade
from mdseg.synthetic.canvas import Canvas
from mdseg.synthetic.domain import Domain

if TYPE_CHECKING:
    from mdseg.synthetic.specs import SyntheticSpec

LAYOUTS: dict[str, Callable[[Canvas, Domain], None]] = {
    "driving": driving.layout,
    "indoor": indoor.layout,
    "everyday": everyday.layout,
}


def render_scene(
    spec: SyntheticSpec, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` scene of ``spec``'s dataset: (uint8 RGB image, uint8 fine-class map).

    The output depends only on ``spec``, ``size`` and the state of ``rng``.
    """
    canvas = Canvas(size, rng, spec.frequency)
    LAYOUTS[spec.scene](canvas, spec.domain)
    return shade(canvas.fine, spec.domain, rng), canvas.fine
