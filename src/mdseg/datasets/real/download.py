"""Fetch a real dataset's archives: resumable HTTP, verified, never half-done-looking.

Bytes go to ``<file>.part``; an interrupted transfer resumes from its size with an HTTP Range
request. The file gets its final name only once complete, not an HTML page or an empty body, and
matching its published md5; where none is published, a record ``<file>.sha256`` (size and
sha256) is written beside it at completion. A file found under its final name is trusted only
if it matches one of the two. How each dataset is reached (open URL, Cityscapes login, WildDash
login, personal link) is a registry of fetch functions keyed by ``RealDataset.access``.

Secrets never pass through arguments or logs: personal links come from a ``links_file``,
passwords from a credentials file or the environment, and every URL in a message is redacted
(:mod:`mdseg.secrets`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import http.cookiejar
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import yaml
from tqdm.utils import CallbackIOWrapper

from mdseg.datasets.real.registry import Archive, RealDataset, real_dataset
from mdseg.errors import MdsegError
from mdseg.io import atomic_path, sha256, write_json
from mdseg.progress import progress
from mdseg.secrets import host, redact, redact_url

CHUNK = 1 << 20
TIMEOUT = 60  # seconds without an answer before a request fails
WILDDASH_LOGIN = "https://wilddash.cc/accounts/login"
RECORD = ".sha256"  # suffix of the record of a completed download without a published md5
log = logging.getLogger(__name__)

# the keys of config real.<ds> (and of --options) each way of access reads
OPTIONS: dict[str, tuple[str, ...]] = {
    "open": ("archives", "links_file"),
    "link": ("archives", "links_file"),
    "cityscapes": ("archives", "credentials_file"),
    "wilddash": ("archives",),
}


class DownloadError(MdsegError):
    """A download that cannot complete (bad checksum, server error, missing credentials)."""


def md5sum(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def parse_options(text: str, key: str) -> dict[str, Any]:
    """``--options`` of dataset ``key``: a JSON object (config ``real.<key>``)."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        raise DownloadError(
            f"--options: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            f"give config real.{key} as a JSON object, e.g. "
            '\'{"archives": {"<archive name>": "<path>"}}\''
        ) from None
    if not isinstance(options, dict):
        raise DownloadError(
            f"--options: expected a JSON object (config real.{key}), got a {type(options).__name__}"
        )
    return options


def record_path(dest: Path) -> Path:
    """Where the size and sha256 of the completed download ``dest`` are recorded."""
    return dest.with_name(dest.name + RECORD)


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    opener: urllib.request.OpenerDirector | None = None,
    dataset: str = "<dataset>",
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part``; verify before renaming.

    A file already under ``dest`` is verified (:func:`trusted`), never fetched again. A size
    short of Content-Length keeps ``dest.part`` for the next try; an HTML page, an empty body
    or a checksum mismatch deletes it, and none of them ever produces ``dest``.
    """
    dest = Path(dest)
    if dest.is_file():
        return trusted(dest, md5, dataset)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s from %s", dest.name, redact_url(url))
    _transfer(url, part, (opener or urllib.request.build_opener()).open)
    try:
        _check_body(part, url)
        if md5 is not None and (got := md5sum(part)) != md5:
            raise DownloadError(
                f"{redact_url(url)}: {dest.name} has md5 {got}, not the published {md5} (the "
                "server sent another file or damaged it); nothing was kept, rerun to download "
                "it again"
            )
    except DownloadError:
        part.unlink()
        raise
    if md5 is None:
        write_json(record_path(dest), {"name": dest.name, **_fingerprint(part)})
    os.replace(part, dest)
    return dest


def _fingerprint(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": sha256(path)}


def trusted(dest: Path, md5: str | None, dataset: str = "<dataset>") -> Path:
    """``dest`` if it matches its published ``md5``, or else the record of its download.

    A file without either cannot be told from a login page saved by an earlier version or a
    copy cut short, so it is refused with the two ways out.
    """
    if md5 is not None:
        if (got := md5sum(dest)) != md5:
            raise DownloadError(
                f"{dest}: md5 {got} does not match the published {md5} (damaged, cut short or "
                "another version); delete it and rerun to download it again"
            )
        return dest
    record = record_path(dest)
    if not record.is_file():
        raise DownloadError(
            f"{dest}: no checksum is published and no record {record.name} shows that mdseg "
            "completed this download, so it is not trusted; delete it to download it again, or "
            f"set real.{dataset}.archives.{dest.name} to its path to use it as it is"
        )
    try:
        want = json.loads(record.read_text(encoding="utf-8"))
        size, digest = int(want["size"]), str(want["sha256"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise DownloadError(
            f"{record}: not a download record ({type(err).__name__}); delete it and {dest.name} "
            "and rerun to download it again"
        ) from None
    got = _fingerprint(dest) if dest.stat().st_size == size else {"size": dest.stat().st_size}
    if got != {"size": size, "sha256": digest}:
        what = "sha256" if got["size"] == size else f"size {got['size']} bytes"
        raise DownloadError(
            f"{dest}: its {what} differs from {record.name}, recorded when the download "
            f"completed (the file was changed or cut short); delete both and rerun to download "
            "it again"
        )
    return dest


def _transfer(url: str, part: Path, open_url: Callable[..., Any]) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request when ``part`` has bytes)."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    response = _open(open_url, request, resumed=have > 0)
    if response is None:  # 416: the .part already holds every byte
        return
    with response:
        if response.headers.get_content_type() == "text/html":
            raise DownloadError(_html(url, "Content-Type text/html"))
        if have and response.status != 206:  # server ignored Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if have else "wb") as out,
            progress(total, part.name, unit="B", unit_scale=True, initial=have) as bar,
        ):
            while chunk := _read(response, url, part):
                try:
                    out.write(chunk)
                except OSError as err:
                    raise OSError(
                        err.errno, f"{part}: {err.strerror}; free space and rerun to resume"
                    ) from err
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(
            f"{redact_url(url)}: transfer ended at {size} of {total} bytes; rerun to resume {part}"
        )


def _read(response: Any, url: str, part: Path) -> bytes:
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(
            f"transfer from {host(url)} stopped ({type(err).__name__}: {redact(str(err))}) for "
            f"{redact_url(url)}; rerun to resume {part}"
        ) from None


def _open(open_url: Callable[..., Any], request: urllib.request.Request, resumed: bool) -> Any:
    """``open_url(request)``, its failures as ``DownloadError`` naming the host and the URL."""
    url = request.full_url
    try:
        return open_url(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if resumed and err.code == 416:
            return None
        raise DownloadError(_refusal(url, err.code, err.reason)) from None
    except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"cannot reach {host(url)} ({redact(str(reason))}) to fetch {redact_url(url)}; check "
            "the network (proxy, firewall; compute nodes often have none) and the host name"
        ) from None


def _refusal(url: str, code: int, reason: str) -> str:
    if code in (401, 403):
        advice = "access denied: the link expired or needs a login; request a new link or check "
        advice += "the credentials, then rerun"
    elif code in (404, 410):
        advice = "no such file: check the link (real.<dataset>.links_file) or the URL"
    else:
        advice = "the server failed; rerun later"
    return f"HTTP {code} {reason} from {redact_url(url)}: {advice}"


def _html(url: str, sign: str) -> str:
    return (
        f"{redact_url(url)}: the server sent an HTML page ({sign}), not the archive: a login "
        "page, an error page or an expired link; check the credentials or request a new link, "
        "then rerun (nothing was kept)"
    )


def _not_an_archive(path: Path) -> str | None:
    """``"empty"`` or ``"html"`` when ``path`` is no archive by its first bytes, else None."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return "html" if start.startswith((b"<!doctype html", b"<html")) else None


def _check_body(path: Path, url: str) -> None:
    """Refuse an empty body or an HTML page (by its first bytes) fetched from ``url``."""
    problem = _not_an_archive(path)
    if problem == "empty":
        raise DownloadError(
            f"{redact_url(url)}: the server sent an empty body (0 bytes) for {path.name}; "
            "check the link and rerun (nothing was kept)"
        )
    if problem == "html":
        raise DownloadError(_html(url, "it starts with <html"))


def _local(path: Path, archive: Archive, ds: RealDataset) -> Path:
    """An archive the user downloaded (``real.<ds>.archives``), verified as far as possible."""
    key = f"real.{ds.key}.archives.{archive.name}"
    if not path.is_file():
        raise DownloadError(f"{key}: no file at {path}")
    if archive.md5 is not None and (got := md5sum(path)) != archive.md5:
        raise DownloadError(
            f"{path} ({key}): md5 {got} does not match the published {archive.md5}; "
            "download it again"
        )
    problem = _not_an_archive(path)
    if problem is not None:
        what = "empty" if problem == "empty" else "an HTML page (a login or error page)"
        raise DownloadError(f"{path} ({key}): the file is {what}, not {archive.name}")
    return path


def _needs(ds: RealDataset, what: str, key: str) -> DownloadError:
    return DownloadError(
        f"{ds.key}: {what}. Register at {ds.register or ds.homepage}, then set "
        f"config key {key} (see config.yaml, section real:)"
    )


def _known_names(ds: RealDataset, names: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(names) - {a.name for a in ds.archives})
    if unknown:
        raise DownloadError(
            f"{where}: {ds.key} has no archive {', '.join(map(repr, unknown))}; its archives: "
            f"{', '.join(a.name for a in ds.archives)}"
        )


def checked_options(ds: RealDataset, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (config ``real.<ds>``) with every key and archive name known, or refused.

    A misspelled key or archive name would otherwise be ignored and the public URL fetched.
    Inline ``links`` are refused: a secret in the options shows in the shell command and logs.
    """
    if "links" in options:
        raise DownloadError(
            f"real.{ds.key}.links: personal links are secrets and would show in the workflow's "
            "shell commands and logs; move them to a file outside the repository (one "
            f"`<archive name>: <URL>` per line) and set real.{ds.key}.links_file to its path"
        )
    known = OPTIONS[ds.access]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DownloadError(
            f"real.{ds.key} (--options): unknown key {', '.join(map(repr, unknown))}; known "
            f"for {ds.key}: {', '.join(known)}"
        )
    for key in ("links_file", "credentials_file"):
        if key in options and not isinstance(options[key], str):
            raise DownloadError(f"real.{ds.key}.{key}: expected a file path")
    archives = options.get("archives") or {}
    if not isinstance(archives, dict) or not all(isinstance(v, str) for v in archives.values()):
        raise DownloadError(f"real.{ds.key}.archives: expected archive name: file path pairs")
    _known_names(ds, archives, f"real.{ds.key}.archives")
    return dict(options)


def _links(ds: RealDataset, options: Mapping[str, Any]) -> dict[str, str]:
    """The personal links of ``real.<ds>.links_file``: a YAML (or JSON) archive name -> URL."""
    if "links_file" not in options:
        return {}
    path = Path(options["links_file"]).expanduser()
    form = "write one `<archive name>: <URL>` per line"
    if not path.is_file():
        raise DownloadError(f"real.{ds.key}.links_file: no file at {path}; {form}")
    try:
        links = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DownloadError(f"{path}: not UTF-8 text; {form}") from None
    except yaml.YAMLError as err:  # its message quotes the line, which holds a secret
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DownloadError(f"{path}: not valid YAML{where}; {form}") from None
    if not isinstance(links, dict) or not all(isinstance(v, str) for v in links.values()):
        raise DownloadError(f"{path}: expected archive name: URL pairs; {form}")
    _known_names(ds, links, str(path))
    return links


def _linked_archives(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Each archive from disk (``archives``), a personal link (``links_file``) or its URL."""
    paths = []
    links, local = _links(ds, options), options.get("archives") or {}
    for archive in ds.archives:
        if archive.name in local:
            paths.append(_local(Path(local[archive.name]).expanduser(), archive, ds))
        elif url := links.get(archive.name, archive.url):
            paths.append(fetch(url, dest / archive.name, md5=archive.md5, dataset=ds.key))
        else:
            raise _needs(
                ds,
                f"{archive.name} comes from a personal download link",
                f"real.{ds.key}.links_file (a file with the line `{archive.name}: <URL>`) or "
                f"real.{ds.key}.archives.{archive.name} (a downloaded file)",
            )
    return paths


def _credentials(ds: RealDataset, options: Mapping[str, Any]) -> Path | None:
    """``real.cityscapes.credentials_file``, checked for its two fields (never shown)."""
    if not options.get("credentials_file"):
        return None
    creds = Path(options["credentials_file"]).expanduser().resolve()
    key = f"real.{ds.key}.credentials_file"
    if not creds.is_file():
        raise DownloadError(f'{key}: no file at {creds}; write {{"username": …, "password": …}}')
    try:
        fields = json.loads(creds.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        fields = None
    if not isinstance(fields, dict) or not {"username", "password"} <= set(fields):
        raise DownloadError(f"{creds} ({key}): expected a JSON object with username and password")
    return creds


def _cityscapes(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Cityscapes packages via the ``csDownload`` tool of the ``cityscapesscripts`` package.

    ``csDownload`` reads a credentials file (``credentials_file``: JSON with username and
    password) or prompts; the password never passes through our arguments or logs. What it
    leaves under a final name is trusted only if it matches the published md5.
    """
    local = options.get("archives") or {}
    needed = [a.name for a in ds.archives if a.name not in local and not (dest / a.name).is_file()]
    if needed:
        creds = _credentials(ds, options)
        tool = shutil.which("csDownload")
        if tool is None:
            raise DownloadError(
                "cityscapes: the csDownload tool is missing; install it with "
                "`pip install cityscapesscripts` (or set real.cityscapes.archives to the zips)"
            )
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ)
            if creds is not None:
                # csDownload looks for $XDG_DATA_HOME/cityscapesscripts/credentials.json
                (Path(home) / "cityscapesscripts").mkdir()
                (Path(home) / "cityscapesscripts" / "credentials.json").symlink_to(creds)
                env["XDG_DATA_HOME"] = home
            done = subprocess.run([tool, "-d", str(dest), "-r", *needed], env=env, check=False)
        if done.returncode != 0:
            raise DownloadError(
                f"cityscapes: csDownload exited with status {done.returncode} (its output is "
                "above); check the username and password in real.cityscapes.credentials_file "
                f"(an account from {ds.register}) and the network, then rerun"
            )
    return [
        _local(Path(local[a.name]).expanduser(), a, ds)
        if a.name in local
        else trusted(dest / a.name, a.md5, ds.key)
        for a in ds.archives
    ]


def _wilddash_login(ds: RealDataset) -> urllib.request.OpenerDirector:
    """An opener logged in to wilddash.cc with ``WILDDASH_USERNAME``/``WILDDASH_PASSWORD``.

    A refused login answers with the login form again (status 200), so the answer is checked
    for a password field.
    """
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
    login = WILDDASH_LOGIN
    with _open(opener.open, urllib.request.Request(login), resumed=False) as page:
        token = re.search(rb"csrfmiddlewaretoken['\"]? value=['\"]([^'\"]+)", page.read())
    if token is None:
        raise DownloadError(f"{ds.key}: no CSRF token on {login}; the login page changed")
    form = urllib.parse.urlencode(
        {"username": user, "password": password, "csrfmiddlewaretoken": token.group(1).decode()}
    ).encode()
    post = urllib.request.Request(login, data=form, headers={"Referer": login})
    with _open(opener.open, post, resumed=False) as answer:
        refused = re.search(rb"<input[^>]+name=['\"]?password\b", answer.read(), re.IGNORECASE)
    if refused:
        raise DownloadError(
            f"{ds.key}: the login at {redact_url(login)} was refused (the site answered with its "
            "login form again); check WILDDASH_USERNAME and WILDDASH_PASSWORD (an account from "
            f"{ds.register}) and rerun"
        )
    return opener


def _wilddash(ds: RealDataset, dest: Path, options: dict[str, Any]) -> list[Path]:
    """Log in to wilddash.cc (only if an archive is missing), then fetch.

    Both WildDash versions: v1's ``wd_both_01.zip`` and ``wd_val_01.zip``, v2's public archive.
    """
    local = options.get("archives") or {}
    needed = [a for a in ds.archives if a.name not in local and not (dest / a.name).is_file()]
    opener = _wilddash_login(ds) if needed else None
    return [
        _local(Path(local[a.name]).expanduser(), a, ds)
        if a.name in local
        else fetch(str(a.url), dest / a.name, md5=a.md5, opener=opener, dataset=ds.key)
        for a in ds.archives
    ]


ACCESS: dict[str, Callable[[RealDataset, Path, dict[str, Any]], list[Path]]] = {
    "open": _linked_archives,
    "link": _linked_archives,
    "cityscapes": _cityscapes,
    "wilddash": _wilddash,
}


def download_dataset(key: str, dest: Path, options: Mapping[str, Any] | None = None) -> list[Path]:
    """Fetch every archive of ``key`` into ``dest``; ``options`` is ``config.real.<key>``."""
    ds = real_dataset(key)
    return ACCESS[ds.access](ds, Path(dest), checked_options(ds, options or {}))


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
    with atomic_path(marker) as tmp:
        tmp.write_text("\n".join(p.name for p in archives) + "\n")
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


def _bar(name: str, total: int) -> Any:
    """Byte progress like ``fetch``'s: a bar on a terminal, periodic lines in a job's log."""
    return progress(total, name, unit="B", unit_scale=True)


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
