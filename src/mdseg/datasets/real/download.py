"""Fetch a real dataset's archives: resumable HTTP, checksum-verified, never half-done-looking.

Bytes go to ``<file>.part``; an interrupted transfer resumes from its size with an HTTP Range
request, and the file gets its final name only once complete and matching its published
checksum. How each dataset is reached (open URL, Cityscapes login, WildDash login, personal
link) is a registry of fetch functions keyed by ``RealDataset.access``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.cookiejar
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

from mdseg.datasets.real.registry import Archive, RealDataset, real_dataset

CHUNK = 1 << 20
log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download that cannot complete (bad checksum, server error, missing credentials)."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part``; verify ``md5`` before renaming.

    A complete ``dest`` is kept as is. A size short of Content-Length, or a checksum mismatch,
    raises ``DownloadError`` and never produces ``dest`` (a bad ``.part`` is deleted so the next
    try starts clean).
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    open_url = (opener or urllib.request.build_opener()).open
    try:
        response = open_url(request, timeout=60)
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: the .part already holds every byte
            raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
        response = None
    except OSError as err:
        raise DownloadError(f"{url}: {err}") from None
    if response is not None:
        with response:
            if have and response.status != 206:  # server ignored Range: start over
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            mode = "ab" if have else "wb"
            with (
                open(part, mode) as out,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=None,
                ) as bar,
            ):
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            size = part.stat().st_size
            if total is not None and size < total:
                raise DownloadError(
                    f"{url}: transfer ended at {size} of {total} bytes; rerun to resume {part}"
                )
    if md5 is not None and (got := md5sum(part)) != md5:
        part.unlink()
        raise DownloadError(f"{dest.name}: md5 {got} does not match the published {md5}")
    os.replace(part, dest)
    return dest


def _needs(ds: RealDataset, what: str, key: str) -> DownloadError:
    return DownloadError(
        f"{ds.key}: {what}. Register at {ds.register or ds.homepage}, then set "
        f"config key {key} (see config.yaml, section real:)"
    )


def _linked_archives(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Each archive from disk (``archives``), a personal link (``links``) or its public URL."""
    paths = []
    links, local = options.get("links") or {}, options.get("archives") or {}
    for archive in ds.archives:
        if archive.name in local:
            path = Path(local[archive.name])
            if not path.is_file():
                raise DownloadError(f"real.{ds.key}.archives.{archive.name}: no file at {path}")
            paths.append(_verified(path, archive))
        elif archive.name in links:
            paths.append(fetch(links[archive.name], dest / archive.name, md5=archive.md5))
        elif archive.url:
            paths.append(fetch(archive.url, dest / archive.name, md5=archive.md5))
        else:
            raise _needs(
                ds,
                f"{archive.name} comes from a personal download link",
                f"real.{ds.key}.links.{archive.name} (a URL) or "
                f"real.{ds.key}.archives.{archive.name} (a downloaded file)",
            )
    return paths


def _verified(path: Path, archive: Archive) -> Path:
    if archive.md5 is not None and (got := md5sum(path)) != archive.md5:
        raise DownloadError(f"{path}: md5 {got} does not match the published {archive.md5}")
    return path


def _cityscapes(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Cityscapes packages via the ``csDownload`` tool of the ``cityscapesscripts`` package.

    ``csDownload`` reads a credentials file (``credentials_file``: JSON with username and
    password) or prompts; the password never passes through our arguments or logs.
    """
    local = options.get("archives") or {}
    if all(a.name in local for a in ds.archives):
        return [_verified(Path(local[a.name]), a) for a in ds.archives]
    tool = shutil.which("csDownload")
    if tool is None:
        raise DownloadError(
            "cityscapes: the csDownload tool is missing; install it with "
            "`pip install cityscapesscripts` (or set real.cityscapes.archives to the zips)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    names = [a.name for a in ds.archives if not (dest / a.name).is_file()]
    if names:
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ)
            if options.get("credentials_file"):
                # csDownload looks for $XDG_DATA_HOME/cityscapesscripts/credentials.json
                creds = Path(options["credentials_file"]).expanduser().resolve()
                if not creds.is_file():
                    raise DownloadError(f"real.cityscapes.credentials_file: no file at {creds}")
                (Path(home) / "cityscapesscripts").mkdir()
                (Path(home) / "cityscapesscripts" / "credentials.json").symlink_to(creds)
                env["XDG_DATA_HOME"] = home
            subprocess.run([tool, "-d", str(dest), "-r", *names], check=True, env=env)
    return [_verified(dest / a.name, a) for a in ds.archives]


def _wilddash(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Log in to wilddash.cc with ``WILDDASH_USERNAME``/``WILDDASH_PASSWORD``, then fetch.

    Both WildDash versions: v1's ``wd_both_01.zip`` and ``wd_val_01.zip``, v2's public archive.
    """
    local = options.get("archives") or {}
    if all(a.name in local for a in ds.archives):
        return [_verified(Path(local[a.name]), a) for a in ds.archives]
    user, password = os.environ.get("WILDDASH_USERNAME"), os.environ.get("WILDDASH_PASSWORD")
    if not user or not password:
        raise _needs(
            ds,
            "downloads need an account: environment variables WILDDASH_USERNAME and "
            "WILDDASH_PASSWORD are not set",
            f"real.{ds.key}.archives.<name> to skip the login",
        )
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login = "https://wilddash.cc/accounts/login"
    with opener.open(login, timeout=60) as page:
        token = re.search(rb"csrfmiddlewaretoken['\"]? value=['\"]([^'\"]+)", page.read())
    if token is None:
        raise DownloadError(f"{ds.key}: no CSRF token on {login}; the login page changed")
    form = urllib.parse.urlencode(
        {"username": user, "password": password, "csrfmiddlewaretoken": token.group(1).decode()}
    ).encode()
    opener.open(urllib.request.Request(login, data=form, headers={"Referer": login}), timeout=60)
    return [fetch(a.url, dest / a.name, md5=a.md5, opener=opener) for a in ds.archives if a.url]


ACCESS: dict[str, Callable[[RealDataset, Path, dict[str, Any]], list[Path]]] = {
    "open": _linked_archives,
    "link": _linked_archives,
    "cityscapes": _cityscapes,
    "wilddash": _wilddash,
}


def download_dataset(key: str, dest: Path, options: dict[str, Any] | None = None) -> list[Path]:
    """Fetch every archive of ``key`` into ``dest``; ``options`` is ``config.real.<key>``."""
    ds = real_dataset(key)
    return ACCESS[ds.access](ds, Path(dest), options or {})


_TARS = (".tar", ".tar.gz", ".tgz")
_COPIED = (".txt", ".json")
# What a damaged or cut-short zip, tar or gzip stream raises while being read.
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error)


def extract(archives: list[Path], dest: Path) -> Path:
    """Unpack every archive into ``dest`` (plain files are copied), then the zips they held.

    COCO's annotation zip holds the panoptic PNGs as zips of their own; those are unpacked next
    to themselves and removed. Members that would land outside ``dest`` are refused, and a
    damaged archive raises ``DownloadError``. A marker written last, listing the archives, tells
    a complete extraction from an interrupted or failed one.
    """
    plan = [(path, _kind(path)) for path in archives]  # refuse unknown types before any work
    dest = Path(dest)
    marker = dest / ".extracted"
    marker.unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for path, kind in plan:
        if kind == "copy":
            shutil.copy2(path, dest / path.name)
            continue
        log.info("extracting %s", path.name)
        for inner in _unpack(path, dest):
            _unpack(inner, inner.parent)
            inner.unlink()
    marker.write_text("\n".join(p.name for p in archives) + "\n")
    return dest


def _kind(path: Path) -> str:
    """``"zip"``, ``"tar"`` or ``"copy"``, judged by the file name; ``ValueError`` otherwise."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TARS):
        return "tar"
    if name.endswith(_COPIED):
        return "copy"
    raise ValueError(
        f"{path}: not an archive extract knows; it unpacks {', '.join(('.zip', *_TARS))} "
        f"and copies {', '.join(_COPIED)}"
    )


def _unpack(path: Path, dest: Path) -> list[Path]:
    """Unpack the zip or tar ``path`` into ``dest``; return the zips it held."""
    try:
        return _unzip(path, dest) if _kind(path) == "zip" else _untar(path, dest)
    except _DAMAGED as err:
        raise DownloadError(
            f"{path}: cannot extract, the archive is damaged or incomplete ({err}); "
            "download it again"
        ) from err


def _bar(name: str, total: int) -> tqdm:
    """A byte progress bar like ``fetch``'s; hidden when stderr is not a terminal."""
    return tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None)


def _inside(root: Path, name: str, archive: Path) -> Path:
    """Where member ``name`` of ``archive`` lands under ``root``; ``ValueError`` if outside."""
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise ValueError(
            f"{archive}: member {name!r} would be written outside {root}; refusing to extract"
        )
    return target


def _unzip(path: Path, dest: Path) -> list[Path]:
    """Check every member name of the zip ``path``, then stream the members into ``dest``.

    Each member's CRC is checked as it is read. The bar counts uncompressed bytes.
    """
    root = dest.resolve()
    with zipfile.ZipFile(path) as zf:
        members = [(m, _inside(root, m.filename, path)) for m in zf.infolist()]
        with _bar(path.name, sum(m.file_size for m, _ in members)) as bar:
            for member, target in members:
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, CallbackIOWrapper(bar.update, out, "write"), CHUNK)
    return [t for m, t in members if not m.is_dir() and t.name.lower().endswith(".zip")]


def _untar(path: Path, dest: Path) -> list[Path]:
    """Stream the tar (or gzipped tar) ``path`` into ``dest`` through tarfile's ``data`` filter.

    One front-to-back pass, so a multi-GB .tar.gz is decompressed once; the bar therefore counts
    archive bytes read (the unpacked total is unknown until the end). Absolute and ``..`` names
    are refused here; the filter refuses links out of ``dest`` and special files. A Python
    without the filter (before 3.11.4) gets every link refused instead.
    """
    root = dest.resolve()
    filtered = hasattr(tarfile, "data_filter")
    zips: list[Path] = []

    def members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
        for member in tf:
            target = _inside(root, member.name, path)
            if not filtered and (member.issym() or member.islnk()):
                raise ValueError(f"{path}: member {member.name!r} is a link; refusing to extract")
            if member.isfile() and target.name.lower().endswith(".zip"):
                zips.append(target)
            yield member

    with open(path, "rb") as raw, _bar(path.name, path.stat().st_size) as bar:
        counted = CallbackIOWrapper(bar.update, raw, "read")
        # gzip.GzipFile checks the CRC at the end of the stream; tarfile's own "r|gz" does not.
        plain = path.name.lower().endswith(".tar")
        with (
            contextlib.nullcontext(counted) if plain else gzip.GzipFile(fileobj=counted) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tf,
        ):
            if not filtered:
                tf.extractall(dest, members=members(tf))
            else:
                try:
                    tf.extractall(dest, members=members(tf), filter="data")
                except tarfile.FilterError as err:
                    raise ValueError(f"{path}: member {err.tarinfo.name!r} refused: {err}") from err
            _check_tar_end(tf.fileobj)
    return zips


def _check_tar_end(stream: IO[bytes]) -> None:
    """Read what follows the last member: it must be the zero blocks that end a tar.

    tarfile stops quietly at a garbled header after the first, or at end of file, so without
    this a damaged or cut-short tar would look complete. Reading to the end also makes gzip
    check its CRC.
    """
    rest = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError("a damaged header stopped the tar before its end")
        rest += len(chunk)
    if not rest:
        raise tarfile.ReadError("the tar is cut short: no end-of-archive blocks")
