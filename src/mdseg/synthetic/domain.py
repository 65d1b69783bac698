"""A dataset's domain: its camera and layout statistics, which shift every pixel it renders."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """Photometric and layout statistics of one synthetic dataset."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel colour cast
    brightness: float = 0.0  # added after contrast, in [0, 1] intensity units
    contrast: float = 1.0
    saturation: float = 1.0
    noise: float = 0.02  # sensor noise sigma, intensity units
    blur: int = 0  # passes of a 3-tap binomial blur
    texture_scale: float = 1.0  # multiplies every texture period
    horizon: float = 0.45  # mean horizon height (fraction of the image from the top)
    horizon_jitter: float = 0.04
    object_scale: float = 1.0  # multiplies object sizes
    outdoor: float = 1.0  # share of outdoor backdrops in everyday scenes

    def __post_init__(self) -> None:
        if len(self.gain) != 3 or min(self.gain) <= 0:
            raise ValueError(f"domain gain must be three positive numbers, got {self.gain}")
        if not 0.2 <= self.horizon <= 0.7:
            raise ValueError(f"domain horizon must lie in [0.2, 0.7], got {self.horizon}")
        if not 0.0 <= self.outdoor <= 1.0:
            raise ValueError(f"domain outdoor share must lie in [0, 1], got {self.outdoor}")
        if self.blur < 0 or self.noise < 0 or self.texture_scale <= 0 or self.object_scale <= 0:
            raise ValueError("domain blur and noise must be >= 0, texture and object scale > 0")
