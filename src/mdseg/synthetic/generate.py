"""Write one synthetic dataset through the results contract (images, labels, lists, manifest)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mdseg.datasets.info import DATASETS
from mdseg.io import IGNORE_ID, sha256, write_json, write_split_list
from mdseg.synthetic.render import render_scene
from mdseg.synthetic.specs import spec_of

GENERATOR_VERSION = 1  # bump whenever the pixels or labels written for the same inputs change
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def image_rng(seed: int, key: str, split: str, index: int) -> np.random.Generator:
    """The generator of one image, derived only from (seed, dataset key, split, index)."""
    words = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
        for s in (key, split)
    ]
    return np.random.default_rng(np.random.SeedSequence([seed, *words, index]))


def _check_args(key: str, seed: int, image_size: int, counts: dict[str, int]) -> None:
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {key!r}; known: {', '.join(DATASETS)}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"synthetic {key}: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(
            f"synthetic {key}: image_size must be an integer >= 32, got {image_size!r}"
        )
    if not counts:
        raise ValueError(
            f"synthetic {key}: counts must name at least one split, e.g. {{'val': 40}}"
        )
    for split, n in counts.items():
        if not SPLIT_NAME.match(split):
            raise ValueError(
                f"synthetic {key}: split name {split!r} must match {SPLIT_NAME.pattern}"
            )
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"synthetic {key}: count of split {split!r} must be >= 1, got {n!r}")


def generate_dataset(
    key: str, out_dir: Path, *, seed: int, image_size: int, counts: dict[str, int]
) -> dict:
    """Render dataset ``key`` into ``out_dir`` and return its manifest.

    Writes ``images/<split>/<i>.png`` (RGB), ``labels/<split>/<i>.png`` (canonical ids, 255 =
    ignore), ``<split>.lst``, ``truth.json`` (the hidden label definitions) and, last,
    ``manifest.json``: a crash never leaves a dataset that looks complete. Output is
    byte-identical for equal arguments.
    """
    _check_args(key, seed, image_size, counts)
    spec = spec_of(key)
    out_dir = Path(out_dir)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    lut = spec.label_lut()
    splits, checksums = {}, {}
    with tqdm(total=sum(counts.values()), desc=f"synthetic {key}", unit="img", disable=None) as bar:
        for split, n in counts.items():
            for sub in ("images", "labels"):
                (out_dir / sub / split).mkdir(parents=True, exist_ok=True)
            pairs = []
            for i in range(n):
                image, fine = render_scene(spec, image_rng(seed, key, split, i), image_size)
                img_rel, lbl_rel = f"images/{split}/{i:05d}.png", f"labels/{split}/{i:05d}.png"
                Image.fromarray(image, "RGB").save(out_dir / img_rel)
                Image.fromarray(lut[fine], "L").save(out_dir / lbl_rel)
                pairs.append((img_rel, lbl_rel))
                bar.update()
            list_name = f"{split}.lst"
            write_split_list(out_dir / list_name, pairs)
            splits[split] = {"count": n, "list": list_name}
            checksums[list_name] = sha256(out_dir / list_name)
    write_json(out_dir / "truth.json", spec.truth())
    manifest = {
        "name": key,
        "display": DATASETS[key].display,
        "source": "synthetic",
        "classes": spec.classes,
        "ignore_id": IGNORE_ID,
        "splits": splits,
        "checksums": checksums,
        "domain": DATASETS[key].domain,
        "image_size": [image_size, image_size],
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
