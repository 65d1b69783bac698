"""Pixel colours from a fine-class map: per-class colour and texture, then the domain's camera."""

from __future__ import annotations

import numpy as np

from mdseg.synthetic.domain import Domain
from mdseg.synthetic.world import TEXTURES, WORLD

COLOR = np.array([f.color for f in WORLD], np.float32) / 255.0
ACCENT = np.array([f.accent for f in WORLD], np.float32) / 255.0
KIND = np.array([TEXTURES.index(f.texture) for f in WORLD])
PERIOD = np.array([f.period for f in WORLD], np.float32)
ANGLE = np.radians(np.array([f.angle for f in WORLD], np.float32))
AMPLITUDE = np.array([f.amplitude for f in WORLD], np.float32)
BLOBS = TEXTURES.index("blobs")


def shade(fine: np.ndarray, domain: Domain, rng: np.random.Generator) -> np.ndarray:
    """The uint8 RGB image of fine-class map ``fine`` as seen in ``domain``."""
    size = fine.shape[0]
    n = len(WORLD)
    tone = 1.0 + 0.07 * rng.standard_normal((n, 1)) + 0.035 * rng.standard_normal((n, 3))
    period = PERIOD * domain.texture_scale * rng.uniform(0.9, 1.1, n)
    angle = ANGLE + rng.normal(0.0, 0.1, n)
    phase = rng.uniform(0.0, 1.0, n)

    t = _texture(fine, period, angle, phase, rng)
    base = (COLOR * tone).astype(np.float32)[fine]
    accent = (ACCENT * tone).astype(np.float32)[fine]
    img = base + (accent - base) * (AMPLITUDE[fine] * t)[..., None]

    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    img *= (
        1.0
        + 0.16
        * (rng.uniform(-1, 1) * ramp[:, None] + rng.uniform(-1, 1) * ramp[None, :])[..., None]
    )
    for _ in range(domain.blur):
        img = _binomial_blur(img)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * domain.saturation
    contrast = domain.contrast * (1.0 + 0.05 * rng.standard_normal())
    brightness = domain.brightness + 0.03 * rng.standard_normal()
    img = ((img - 0.5) * contrast + 0.5 + brightness) * np.asarray(domain.gain, np.float32)
    img += domain.noise * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _texture(
    fine: np.ndarray,
    period: np.ndarray,
    angle: np.ndarray,
    phase: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per-pixel texture value in [0, 1], each pixel following its own class's texture."""
    size = fine.shape[0]
    coords = np.arange(size, dtype=np.float32)
    yy, xx = coords[:, None], coords[None, :]
    a, p, ph = angle[fine], period[fine], phase[fine]
    cos, sin = np.cos(a), np.sin(a)
    u = (xx * cos + yy * sin) / p + ph
    v = (yy * cos - xx * sin) / p + ph
    kind = KIND[fine]
    flat = np.clip(0.5 + 0.35 * rng.standard_normal(fine.shape, dtype=np.float32), 0.0, 1.0)
    stripes = 0.5 + 0.5 * np.sin(2.0 * np.pi * u)
    checker = (np.floor(u) + np.floor(v)) % 2.0
    dots = (((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < 0.1).astype(np.float32)
    t = np.select([kind == 1, kind == 2, kind == 3], [stripes, checker, dots], default=flat)
    for k in np.unique(fine[kind == BLOBS]):
        where = fine == k
        t[where] = _smooth_noise(rng, size, float(period[k]))[where]
    return t.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, period: float) -> np.ndarray:
    """Bilinearly interpolated lattice noise with features about ``period`` pixels across,
    pushed towards 0 and 1 so it reads as blobs."""
    cells = int(size / period) + 2
    grid = rng.random((cells, cells), dtype=np.float32)
    g = np.arange(size, dtype=np.float32) / period
    i = g.astype(int)
    f = g - i
    f = f * f * (3.0 - 2.0 * f)
    rows = grid[i] * (1.0 - f)[:, None] + grid[i + 1] * f[:, None]
    field = rows[:, i] * (1.0 - f)[None, :] + rows[:, i + 1] * f[None, :]
    return np.clip((field - 0.5) * 2.5 + 0.5, 0.0, 1.0)


def _binomial_blur(img: np.ndarray) -> np.ndarray:
    """One pass of a separable [1, 2, 1] / 4 blur with edge padding."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]
