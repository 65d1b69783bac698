"""File helpers shared by every stage: atomic writes, JSON, manifests and split lists."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

IGNORE_ID = 255


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or an exception never leaves a half-written file that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically (byte-identical for equal inputs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a JSON file, found nothing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_split_list(path: str | Path, pairs: list[tuple[str, str]]) -> None:
    """Write ``image<TAB>label`` lines; paths are relative to the list's folder."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{img}\t{lbl}\n" for img, lbl in pairs))


def read_split_list(path: str | Path) -> list[tuple[Path, Path]]:
    """Read a split list and resolve its paths against the list's folder."""
    path = Path(path)
    root = path.parent
    pairs = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'image<TAB>label', got {line!r}")
        pairs.append((root / fields[0], root / fields[1]))
    return pairs


MANIFEST_KEYS = ("name", "classes", "ignore_id", "splits", "source", "checksums")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a dataset manifest and check the keys every stage relies on."""
    manifest = read_json(path)
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path}: manifest lacks keys {missing}")
    return manifest
