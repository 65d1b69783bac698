"""Turn an extracted official download into the results contract (labels, lists, manifest).

Split lists point at the original images (no copy); labels are rewritten in canonical ids.
A small deterministic share of the training images becomes ``holdout`` (removed from train):
AutoUniSeg fits statistics on it. Every pair must have both files, and each label the size of its
image (checked on the image's header). ``manifest.json`` is written last, and removed first, so a
failed or interrupted run never leaves a dataset that looks complete.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path
from typing import Any

from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.info import DATASETS
from mdseg.datasets.real.colour import ColourConverter
from mdseg.datasets.real.convert import Converter, Item, convert_all, first_few
from mdseg.datasets.real.idmaps import ID_CONVERTERS
from mdseg.datasets.real.matfiles import MatConverter
from mdseg.datasets.real.panoptic import PANOPTIC_CONVERTERS
from mdseg.datasets.real.polygons import PolygonConverter
from mdseg.datasets.real.registry import RealDataset, real_dataset
from mdseg.io import IGNORE_ID, sha256, write_json, write_split_list

log = logging.getLogger(__name__)

CONVERTER_VERSION = 2  # bump whenever the labels written for the same input change
HOLDOUT_FRACTION = 0.01

CONVERTERS: dict[str, Converter] = {
    **ID_CONVERTERS,
    **PANOPTIC_CONVERTERS,
    "idd": PolygonConverter(),
    "camvid": ColourConverter(),
    "context": MatConverter(),
}


def holdout_names(names: list[str], fraction: float = HOLDOUT_FRACTION) -> set[str]:
    """A fixed ``fraction`` (at least one) of ``names``, chosen by a hash of each name."""
    if len(names) < 2:
        return set()
    n = max(1, math.floor(len(names) * fraction))
    ranked = sorted(names, key=lambda s: hashlib.blake2b(s.encode(), digest_size=8).digest())
    return set(ranked[:n])


def check_counts(ds: RealDataset, items: list[Item], allow_incomplete: bool) -> dict[str, int]:
    """Found vs official count per split; a shortfall is an error unless ``allow_incomplete``."""
    found, problems = {}, []
    for split, spec in ds.splits.items():
        units = {it.group or it.name for it in items if it.split == split}
        found[split] = len(units)
        if len(units) != spec.count:
            problems.append(
                f"{split} ({spec.official}): expected {spec.count} {spec.unit}, found {len(units)}"
            )
    excess = any(found[s] > spec.count for s, spec in ds.splits.items())
    if problems and (not allow_incomplete or excess):
        raise ValueError(
            f"{ds.key}: split sizes differ from the official ones: {'; '.join(problems)}; "
            "extract the complete download"
            + ("" if excess else " (or pass --allow-incomplete to convert this partial copy)")
        )
    for p in problems:
        log.warning("%s: incomplete copy: %s", ds.key, p)
    return found


def _gap(item: Item) -> str | None:
    """What ``item`` lacks, or None when its image and label are both there."""
    image, label = item.image.is_file(), item.label.is_file()
    if image and label:
        return None
    if image:
        return f"image {item.image} has no label {item.label}"
    if label:
        return f"label {item.label} has no image {item.image}"
    return f"neither {item.image} nor its label {item.label} exists"


def complete_pairs(key: str, items: list[Item], allow_incomplete: bool) -> list[Item]:
    """``items`` whose image and label both exist; any other stops the run, naming the first
    few, unless ``allow_incomplete`` (then they are left out, with a warning)."""
    gaps = [(it, gap) for it in items if (gap := _gap(it)) is not None]
    if not gaps:
        return items
    what = first_few(f"{len(gaps)} of {len(items)} pairs lack a file", [g for _, g in gaps])
    if not allow_incomplete:
        raise FileNotFoundError(
            f"{key}: {what}extract the missing files (or pass --allow-incomplete to leave those "
            "pairs out)"
        )
    log.warning("%s: leaving out %s", key, what.removesuffix("; "))
    left_out = {it for it, _ in gaps}
    return [it for it in items if it not in left_out]


def prepare_dataset(
    key: str, source: Path, out_dir: Path, *, allow_incomplete: bool = False, jobs: int = 1
) -> dict[str, Any]:
    """Convert the extracted download of ``key`` under ``source`` into ``out_dir``."""
    ds = real_dataset(key)
    source, out_dir = Path(source).resolve(), Path(out_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: expected the extracted {key} download, found no folder")
    (out_dir / "manifest.json").unlink(missing_ok=True)
    converter = CONVERTERS[ds.converter]
    listed = converter.items(source, {s: spec.official for s, spec in ds.splits.items()})
    items = complete_pairs(key, listed, allow_incomplete)
    found = check_counts(ds, items, allow_incomplete)
    if not items:
        raise ValueError(f"{key}: no labelled images found under {source}")
    labels = convert_all(converter, items, out_dir, jobs=jobs)
    held = holdout_names([it.name for it in items if it.split == "train"])
    lists: dict[str, list[tuple[str, str]]] = {}
    for it in items:
        split = "holdout" if it.split == "train" and it.name in held else it.split
        pair = (os.path.relpath(it.image, out_dir), os.path.relpath(labels[it], out_dir))
        lists.setdefault(split, []).append(pair)
    splits, checksums = {}, {}
    for split, pairs in lists.items():
        name = f"{split}.lst"
        write_split_list(out_dir / name, pairs)
        splits[split] = {"count": len(pairs), "list": name}
        checksums[name] = sha256(out_dir / name)
    manifest = {
        "name": key,
        "display": DATASETS[key].display,
        "source": "real",
        "classes": load_classnames(key),
        "ignore_id": IGNORE_ID,
        "splits": splits,
        "checksums": checksums,
        "domain": DATASETS[key].domain,
        "holdout": {"from": "train", "fraction": HOLDOUT_FRACTION, "count": len(held)},
        "official": {
            "splits": {s: {"from": v.official, v.unit: v.count} for s, v in ds.splits.items()},
            "found": found,
            "complete": all(found[s] == v.count for s, v in ds.splits.items())
            and len(items) == len(listed),
            "archives": [a.name for a in ds.archives],
            "label_format": ds.label_format,
            "homepage": ds.homepage,
            "licence": ds.licence,
            "notes": list(ds.notes),
        },
        "converter_version": CONVERTER_VERSION,
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
