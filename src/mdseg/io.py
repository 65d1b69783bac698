"""File helpers shared by every stage: atomic writes, JSON, manifests and split lists."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mdseg.errors import DamagedFile, NoRoom, SplitMismatch, about, cause_of

IGNORE_ID = 255
# errnos of a write that found no room: full disk, file-size limit, quota
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash, a ``kill -9`` or an exception never leaves a half-written file that looks complete:
    the previous file under ``path``, if any, stays as it was. A write that fails for lack of
    room (a full disk, a file-size limit, a quota) is reported with ``path``, which the OS error
    of the write itself does not name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as err:
        # torch reports a failed write as a RuntimeError around the OSError
        full = cause_of(err, lambda e: isinstance(e, OSError) and e.errno in _NO_ROOM)
        if full is None:
            raise
        raise NoRoom(
            f"{path}: not written, {os.strerror(full.errno)}; free space (or raise the limit) "
            "and rerun. Nothing was left under that name"
        ) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def save_torch(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically, through a file object so that a full disk is reported as such."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)


def load_torch(path: str | Path, what: str, remedy: str, map_location: Any = "cpu") -> Any:
    """``torch.load`` a file this project wrote; a damaged one is refused naming it and ``remedy``.

    ``what`` says what the file should be ("a training checkpoint"), ``remedy`` what to do,
    e.g. delete it so that its rule runs again.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected {what}, found nothing")
    with about(path, what, remedy):
        return torch.load(path, map_location=map_location, weights_only=False)


def read_table(path: str | Path, remedy: str) -> Any:
    """A CSV this project wrote, as a pandas frame; a damaged one is refused naming ``remedy``."""
    import pandas as pd

    with about(path, "a CSV table", remedy):
        return pd.read_csv(path)


def stale_parts(path: str | Path) -> list[Path]:
    """Temporary files ``atomic_path`` left beside ``path`` when a process was killed mid-write."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.part"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically (byte-identical for equal inputs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a JSON file, found nothing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_split_list(path: str | Path, pairs: list[tuple[str, str]]) -> None:
    """Write ``image<TAB>label`` lines; paths are relative to the list's folder."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{img}\t{lbl}\n" for img, lbl in pairs))


# what to do about a prepared dataset that disagrees with itself
REBUILD = (
    "rebuild it: rerun mdseg prepare (or mdseg synth), or delete {folder} and rerun the workflow"
)


def read_split_list(
    path: str | Path, count: int | None = None, checksum: str | None = None
) -> list[tuple[Path, Path]]:
    """Read a split list and resolve its paths against the list's folder.

    ``count`` and ``checksum`` (sha256), when given, are what the dataset's manifest records for
    the list. A list that is not UTF-8 text, has a malformed line, holds no pair or differs from
    those is refused, naming the file and what to do.
    """
    path = Path(path)
    data = path.read_bytes()
    remedy = REBUILD.format(folder=path.parent)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DamagedFile(f"{path}: not UTF-8 text (byte {err.start}); {remedy}") from None
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise DamagedFile(
                f"{path}:{lineno}: expected 'image<TAB>label', got {line!r}; {remedy}"
            )
        pairs.append((path.parent / fields[0], path.parent / fields[1]))
    if not pairs:
        raise SplitMismatch(f"{path}: an empty split list (no image<TAB>label line); {remedy}")
    if checksum is not None and (found := hashlib.sha256(data).hexdigest()) != checksum:
        raise SplitMismatch(
            f"{path}: sha256 {found}, but the manifest records {checksum} (the list changed "
            f"after the dataset was written); {remedy}"
        )
    if count is not None and len(pairs) != count:
        raise SplitMismatch(
            f"{path}: {len(pairs)} pairs, but the manifest records {count}; {remedy}"
        )
    return pairs


MANIFEST_KEYS = ("name", "classes", "ignore_id", "splits", "source", "checksums")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a dataset manifest and check the keys every stage relies on: each split's list,
    count and the list's checksum."""
    manifest = read_json(path)
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path}: manifest lacks keys {missing}")
    remedy = REBUILD.format(folder=Path(path).parent)
    for split, entry in manifest["splits"].items():
        lacks = [k for k in ("list", "count") if k not in entry]
        if lacks:
            raise ValueError(f"{path}: split {split!r} lacks {lacks}; {remedy}")
        if entry["list"] not in manifest["checksums"]:
            raise SplitMismatch(
                f"{path}: records no checksum for {entry['list']}, so the list cannot be "
                f"checked; {remedy}"
            )
    return manifest
