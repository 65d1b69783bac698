"""The pieces every label converter shares: items, lookup-table remapping, the pool.

A converter lists ``Item``s (one labelled image each) from an extracted download and turns one
item's native label into canonical ids (uint8, 255 = ignore). Remapping is one lookup-table pass
per map (OpenCV's ``LUT`` for 8-bit maps); entries the dataset's definition does not know hold
``UNKNOWN`` so a single comparison finds stray values, which stop the conversion with the values
and files. Each converted label must cover its image pixel for pixel: the image's size comes from
its header alone (nothing decoded), and a mismatch stops the conversion naming both files. Label
PNGs are read and written by ``mdseg.datasets.real.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image

from mdseg.datasets.real.png import SOURCE_REMEDY, write_label
from mdseg.errors import DamagedFile, about
from mdseg.io import IGNORE_ID
from mdseg.progress import progress

UNKNOWN = 254  # never a canonical id (the largest label space has 150 classes)


@dataclass(frozen=True)
class Item:
    """One labelled image of an extracted download."""

    split: str  # our split name (train, val, ...)
    name: str  # output file stem, unique within the split
    image: Path
    label: Path
    group: str = ""  # what the official count counts, if not images (ScanNet scenes)
    meta: tuple = ()  # per-item facts the converter needs (panoptic segment -> class pairs)


class UnknownLabels(ValueError):
    """A label value (or class name) the dataset's definition does not contain."""

    def __init__(self, values: Iterable[int | str]):
        self.values = sorted(set(values), key=str)
        super().__init__(f"unknown label values {self.values}")


class Converter(Protocol):
    def items(self, root: Path, splits: Mapping[str, str]) -> list[Item]:
        """Items of an extracted download; ``splits`` maps our split names to official ones."""
        ...

    def convert(self, item: Item) -> np.ndarray:
        """The item's label in canonical ids (uint8, 255 = ignore)."""
        ...


def build_lut(mapping: Mapping[int, int], known: Iterable[int], size: int = 256) -> np.ndarray:
    """Lookup table: ``mapping`` keys to their ids, other ``known`` values ignored, rest UNKNOWN."""
    lut = np.full(size, UNKNOWN, dtype=np.uint8)
    lut[list(known)] = IGNORE_ID
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


def apply_lut(raw: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Remap ``raw`` through ``lut``; raise ``UnknownLabels`` naming the values it does not know."""
    if raw.dtype == np.uint8 and len(lut) < 256:
        lut = np.concatenate([lut, np.full(256 - len(lut), UNKNOWN, np.uint8)])
    elif raw.dtype != np.uint8 and raw.size and (raw.min() < 0 or raw.max() >= len(lut)):
        outside = raw[(raw < 0) | (raw >= len(lut))]
        raise UnknownLabels(int(v) for v in np.unique(outside))
    fast = raw.dtype == np.uint8 and raw.ndim == 2 and len(lut) == 256
    out = cv2.LUT(raw, lut) if fast else np.take(lut, raw)
    if (out == UNKNOWN).any():
        raise UnknownLabels(int(v) for v in np.unique(raw[out == UNKNOWN]))
    return out


def label_pairs(
    split: str, labels: Iterable[Path], image_of: Callable[[Path], Path], suffix: str = ""
) -> list[Item]:
    """Items for label files whose image path follows from the label path; ``suffix`` is cut."""
    items = []
    for label in sorted(labels):
        stem = label.name[: -len(suffix)] if suffix else label.stem
        items.append(Item(split, stem, image_of(label), label))
    return items


def first_few(what: str, names: list, few: int = 3) -> str:
    """``"<what>: a, b, c and 4 more; "``, or nothing when ``names`` is empty."""
    if not names:
        return ""
    more = f" and {len(names) - few} more" if len(names) > few else ""
    return f"{what}: {', '.join(map(str, names[:few]))}{more}; "


def locate(root: Path, relative: str) -> Path:
    """``root/relative``, or the same below one or two folder levels (archives nest differently)."""
    for pattern in (relative, f"*/{relative}", f"*/*/{relative}"):
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError(f"{root}: no {relative} here or one or two levels below")


def check_channels(path: Path, raw: np.ndarray, colour: bool) -> None:
    """Refuse a label of the wrong kind, naming its file, its mode and the kind expected:
    ``colour`` labels (RGB or RGBA) or single-channel id images."""
    channels = 1 if raw.ndim == 2 else raw.shape[-1]
    if channels in ((3, 4) if colour else (1,)):
        return
    with Image.open(path) as image:
        mode, (width, height) = image.mode, image.size
    expected = (
        "an RGB colour label"
        if colour
        else "a single-channel id image (8- or 16-bit greyscale or palette PNG)"
    )
    raise DamagedFile(
        f"{path}: a mode {mode} image ({width}x{height}, {channels} channels) where {expected} "
        "is expected; extract the dataset's own label files again (not a rendering of them) "
        "and rerun mdseg prepare"
    )


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header alone (nothing is decoded)."""
    with about(path, "an image", SOURCE_REMEDY), Image.open(path) as image:
        return image.height, image.width


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _convert_one(job: tuple[Converter, Item, Path]) -> tuple[str, str, Any] | None:
    """Convert one item; a failure to report comes back as (kind, label file, detail)."""
    converter, item, out = job
    try:
        label = converter.convert(item)
    except UnknownLabels as err:
        return "values", str(item.label), err.values
    size = image_size(item.image)
    if label.shape != size:
        detail = f"{_size(label.shape)} but its image {item.image} is {_size(size)}"
        return "size", str(item.label), detail
    write_label(out, label)
    return None


def _listed(failures: list[tuple[str, str, Any]], limit: int = 20) -> str:
    lines = "\n  ".join(f"{f}: {detail}" for _, f, detail in failures[:limit])
    more = f"\n  ... and {len(failures) - limit} more files" if len(failures) > limit else ""
    return f"{lines}{more}"


def convert_all(
    converter: Converter, items: list[Item], out_dir: Path, jobs: int = 1
) -> dict[Item, Path]:
    """Convert every item to ``out_dir/labels/<split>/<name>.png`` in ``jobs`` processes.

    Labels whose size differs from their image's, or unknown values anywhere, stop the run with
    a ``ValueError`` listing the files (and the sizes or values).
    """
    targets = {it: out_dir / "labels" / it.split / f"{it.name}.png" for it in items}
    for folder in {p.parent for p in targets.values()}:
        folder.mkdir(parents=True, exist_ok=True)
    work = [(converter, it, out) for it, out in targets.items()]
    bar = progress(len(work), "convert", unit="map")
    if jobs > 1:
        # chunks amortise the hand-over; small ones keep the workers' last chunks even
        chunk = max(1, min(16, len(work) // (16 * jobs)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = [bar.update() or r for r in pool.map(_convert_one, work, chunksize=chunk)]
    else:
        results = [bar.update() or _convert_one(job) for job in work]
    bar.close()
    failures = [r for r in results if r is not None]
    sizes = [f for f in failures if f[0] == "size"]
    if sizes:
        raise ValueError(
            f"{len(sizes)} labels differ in size from their images (a label must cover its "
            f"image pixel for pixel):\n  {_listed(sizes)}\nextract both again from the "
            "dataset's official archives and rerun mdseg prepare"
        )
    if failures:
        values = sorted({v for _, _, vs in failures for v in vs}, key=str)
        raise ValueError(
            f"label values outside the dataset's definition: {values} in "
            f"{len(failures)} files:\n  {_listed(failures)}\nextract them again from the "
            "dataset's official archives and rerun mdseg prepare"
        )
    return targets
