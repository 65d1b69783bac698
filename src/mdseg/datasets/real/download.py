"""Fetch a real dataset's archives: resumable HTTP, checksum-verified, never half-done-looking.

Bytes go to ``<file>.part``; an interrupted transfer resumes from its size with an HTTP Range
request, and the file gets its final name only once complete and matching its published
checksum. How each dataset is reached (open URL, Cityscapes login, WildDash login, personal
link) is a registry of fetch functions keyed by ``RealDataset.access``.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import logging
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

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
    """Log in to wilddash.cc with ``WILDDASH_USERNAME``/``WILDDASH_PASSWORD``, then fetch."""
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
        raise DownloadError(f"wilddash2: no CSRF token on {login}; the login page changed")
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


def extract(archives: list[Path], dest: Path) -> Path:
    """Unpack every archive into ``dest`` (plain files are copied), then any zips they held.

    COCO's annotation zip holds the panoptic PNGs as zips of their own. A marker written last
    tells a complete extraction from an interrupted one.
    """
    dest = Path(dest)
    marker = dest / ".extracted"
    marker.unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for path in archives:
        if path.suffix in (".txt", ".json"):
            shutil.copy2(path, dest / path.name)
            continue
        log.info("extracting %s", path.name)
        shutil.unpack_archive(path, dest)
    for inner in sorted(dest.rglob("*.zip")):
        shutil.unpack_archive(inner, inner.parent)
        inner.unlink()
    marker.write_text("\n".join(p.name for p in archives) + "\n")
    return dest
