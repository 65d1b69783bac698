"""A fine-class map painted back to front with simple vectorised primitives.

Coordinates are normalised: ``x`` and ``y`` run over [0, 1] across the image, ``y`` downwards.
"""

from __future__ import annotations

import math

import numpy as np

from mdseg.synthetic.world import FINE_INDEX

MIN_PIXELS = 6  # smallest extent of an object, so it survives a stride-4 network


class Canvas:
    """The fine-class map of one scene, plus the pixel grid and the scene's random generator."""

    def __init__(self, size: int, rng: np.random.Generator, frequency: dict[str, float]):
        self.size = size
        self.rng = rng
        self.frequency = frequency
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.y = centres[:, None]
        self.x = centres[None, :]
        self.fine = np.zeros((size, size), np.uint8)
        self.min_extent = MIN_PIXELS / size

    # --- sampling driven by the dataset's fine-class frequencies -----------------------------

    def has(self, name: str) -> bool:
        """Whether a region of ``name`` appears: its frequency read as a probability."""
        return self.rng.random() < min(self.frequency.get(name, 0.0), 1.0)

    def count(self, name: str) -> int:
        """How many instances of ``name`` appear: its frequency read as an expected count."""
        mean = self.frequency.get(name, 0.0)
        whole = int(mean)
        return whole + int(self.rng.random() < mean - whole)

    def pick(self, names: tuple[str, ...]) -> str | None:
        """One of ``names``, chosen in proportion to their frequencies (None if all are absent)."""
        weights = np.array([self.frequency.get(n, 0.0) for n in names])
        if weights.sum() <= 0:
            return None
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]

    # --- painting ------------------------------------------------------------------------------

    def fill(self, name: str) -> None:
        self.fine[:] = FINE_INDEX[name]

    def paint(self, mask: np.ndarray, name: str) -> None:
        """Paint ``name`` where the full-image boolean ``mask`` holds."""
        self.fine[np.broadcast_to(mask, self.fine.shape)] = FINE_INDEX[name]

    def _window(self, y0: float, y1: float, x0: float, x1: float) -> tuple[int, int, int, int]:
        s = self.size
        i0, i1, j0, j1 = (math.floor(v * s + 0.5) for v in (y0, y1, x0, x1))
        return max(i0, 0), min(i1, s), max(j0, 0), min(j1, s)

    def rect(self, name: str, y0: float, y1: float, x0: float, x1: float) -> None:
        i0, i1, j0, j1 = self._window(y0, y1, x0, x1)
        if i1 > i0 and j1 > j0:
            self.fine[i0:i1, j0:j1] = FINE_INDEX[name]

    def ellipse(self, name: str, y0: float, y1: float, x0: float, x1: float) -> None:
        """An ellipse inscribed in the box."""
        i0, i1, j0, j1 = self._window(y0, y1, x0, x1)
        if i1 <= i0 or j1 <= j0:
            return
        cy, cx, ry, rx = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2
        ys = (self.y[i0:i1] - cy) / ry
        xs = (self.x[:, j0:j1] - cx) / rx
        window = self.fine[i0:i1, j0:j1]
        window[ys**2 + xs**2 <= 1.0] = FINE_INDEX[name]

    def trapezoid(
        self, name: str, y0: float, y1: float, x0: float, x1: float, top: float = 0.5
    ) -> None:
        """A trapezoid in the box whose top edge is ``top`` times as wide as its bottom edge."""
        i0, i1, j0, j1 = self._window(y0, y1, x0, x1)
        if i1 <= i0 or j1 <= j0:
            return
        cx, half = (x0 + x1) / 2, (x1 - x0) / 2
        frac = (self.y[i0:i1] - y0) / max(y1 - y0, 1e-6)
        width = half * (top + (1.0 - top) * frac)
        window = self.fine[i0:i1, j0:j1]
        window[np.abs(self.x[:, j0:j1] - cx) <= width] = FINE_INDEX[name]
