"""CamVid colour label images: 32 annotation colours grouped into the 11 evaluated classes.

The grouping is the one of the 11-class CamVid benchmark (SegNet's 367/101/233 split), as
MathWorks' CamVid example spells it out: ``Building`` absorbs archway, bridge, tunnel and wall;
``Sidewalk`` (pavement) absorbs parking blocks and road shoulders; ``Road`` absorbs lane
markings; ``Car`` absorbs SUVs, trucks, buses, trains and other moving vehicles. ``Void``
(black) is ignored; any other colour is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.real.convert import Item, UnknownLabels, check_channels, locate
from mdseg.datasets.real.png import read_label
from mdseg.io import IGNORE_ID

# CamVid colour -> (CamVid class, the 11-class name it counts as; None = ignore)
CAMVID_COLOURS: dict[tuple[int, int, int], tuple[str, str | None]] = {
    (64, 128, 64): ("Animal", "Pedestrian"),
    (192, 0, 128): ("Archway", "Building"),
    (0, 128, 192): ("Bicyclist", "Bicyclist"),
    (0, 128, 64): ("Bridge", "Building"),
    (128, 0, 0): ("Building", "Building"),
    (64, 0, 128): ("Car", "Car"),
    (64, 0, 192): ("CartLuggagePram", "Pedestrian"),
    (192, 128, 64): ("Child", "Pedestrian"),
    (192, 192, 128): ("Column_Pole", "Pole"),
    (64, 64, 128): ("Fence", "Fence"),
    (128, 0, 192): ("LaneMkgsDriv", "Road"),
    (192, 0, 64): ("LaneMkgsNonDriv", "Road"),
    (128, 128, 64): ("Misc_Text", "SignSymbol"),
    (192, 0, 192): ("MotorcycleScooter", "Bicyclist"),
    (128, 64, 64): ("OtherMoving", "Car"),
    (64, 192, 128): ("ParkingBlock", "Sidewalk"),
    (64, 64, 0): ("Pedestrian", "Pedestrian"),
    (128, 64, 128): ("Road", "Road"),
    (128, 128, 192): ("RoadShoulder", "Sidewalk"),
    (0, 0, 192): ("Sidewalk", "Sidewalk"),
    (192, 128, 128): ("SignSymbol", "SignSymbol"),
    (128, 128, 128): ("Sky", "Sky"),
    (64, 128, 192): ("SUVPickupTruck", "Car"),
    (0, 0, 64): ("TrafficCone", "Pole"),
    (0, 64, 64): ("TrafficLight", "SignSymbol"),
    (192, 64, 128): ("Train", "Car"),
    (128, 128, 0): ("Tree", "Tree"),
    (192, 128, 192): ("Truck_Bus", "Car"),
    (64, 0, 64): ("Tunnel", "Building"),
    (192, 192, 0): ("VegetationMisc", "Tree"),
    (0, 0, 0): ("Void", None),
    (64, 192, 0): ("Wall", "Building"),
}


def _codes() -> tuple[np.ndarray, np.ndarray]:
    index = {name: i for i, name in enumerate(load_classnames("camvid"))}
    items = sorted(
        ((r << 16) | (g << 8) | b, group) for (r, g, b), (_, group) in CAMVID_COLOURS.items()
    )
    codes = np.array([c for c, _ in items], dtype=np.uint32)
    ids = np.array([IGNORE_ID if g is None else index[g] for _, g in items], dtype=np.uint8)
    return codes, ids


def camvid_layout(root: Path, splits: Mapping[str, str]) -> list[Item]:
    """Names from SegNet's ``<split>.txt``; ``LabeledApproved_full/<name>_L.png`` labels."""
    labels = locate(root, "LabeledApproved_full")
    images = locate(root, "701_StillsRaw_full")
    items = []
    for ours, official in splits.items():
        listing = locate(root, f"{official}.txt")
        names = [Path(line.split()[0]).stem for line in listing.read_text().splitlines() if line]
        items += [Item(ours, n, images / f"{n}.png", labels / f"{n}_L.png") for n in names]
    return items


@dataclass(frozen=True)
class ColourConverter:
    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        return camvid_layout(root, splits)

    def convert(self, item: Item) -> np.ndarray:
        raw = read_label(item.label)
        check_channels(item.label, raw, colour=True)
        rgb = raw[..., :3].astype(np.uint32)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        codes, ids = _codes()
        pos = np.minimum(np.searchsorted(codes, code), len(codes) - 1)
        hit = codes[pos] == code
        if not hit.all():
            stray = np.unique(code[~hit])
            raise UnknownLabels(f"rgb({v >> 16},{(v >> 8) & 255},{v & 255})" for v in stray)
        return ids[pos]
