"""Bad inputs of ``mdseg download``: login pages, HTML and empty bodies, untrusted files on disk,
bad options, unreachable or refusing servers, a failing ``csDownload``, missing credentials.

A local HTTP server stands in for the dataset sites (see :class:`Site`). Every case that involves
a personal link or a password also checks that the secret is not in the error line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mdseg.datasets.real import download, registry
from mdseg.datasets.real.download import record_path

SECRET = "Sig-5ecret-7a1e"  # the signature of a personal link
PASSWORD = "pw-5ecret-93c1"  # the right WildDash password
PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 40
LOGIN_PAGE = (
    b"<!DOCTYPE html><html><body><form method='post'>"
    b"<input type='hidden' name='csrfmiddlewaretoken' value='tok123'>"
    b"<input name='username'><input type='password' name='password'></form></body></html>"
)


class Site(BaseHTTPRequestHandler):
    """``/file/<name>`` the payload, ``/html/…`` a login page, ``/sneaky/…`` one sent as bytes,
    ``/empty/…`` nothing, ``/status/<code>/…`` that error, ``/accounts/login`` a Django login
    that accepts only ``PASSWORD``."""

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, code: int, body: bytes = b"", kind: str = "application/zip") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        route = path.split("/")[1]
        if route == "file":
            self.reply(200, PAYLOAD)
        elif route in ("html", "accounts"):
            self.reply(200, LOGIN_PAGE, "text/html; charset=utf-8")
        elif route == "sneaky":
            self.reply(200, b"\n  " + LOGIN_PAGE.replace(b"<!DOCTYPE html>", b""))
        elif route == "empty":
            self.reply(200)
        elif route == "status":
            self.reply(int(path.split("/")[2]), b"<html>no</html>", "text/html")
        else:
            self.reply(200, b"<html>welcome</html>", "text/html")

    def do_POST(self) -> None:
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        if form.get("password") == [PASSWORD]:
            self.send_response(302)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:  # Django re-renders the form with status 200
            self.reply(200, LOGIN_PAGE, "text/html; charset=utf-8")


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def linked(tmp_path: Path, url: str, name: str = "data_semantics.zip") -> list[str]:
    """``mdseg download kitti`` argv with ``name`` fetched from ``url`` through a links file."""
    links = tmp_path / "links.yaml"
    links.write_text(json.dumps({name: url}))
    return ["download", "kitti", "--out", tmp_path / "dl", "--options", options(links_file=links)]


def options(**values: object) -> str:
    """``--options`` JSON of ``values`` (paths as strings)."""
    return json.dumps(values, default=str)


def kitti_archive(tmp_path: Path) -> Path:
    return tmp_path / "dl" / "data_semantics.zip"


@pytest.fixture
def wilddash_site(site: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(download, "WILDDASH_LOGIN", f"{site}/accounts/login")
    monkeypatch.setenv("WILDDASH_USERNAME", "someone")
    monkeypatch.setenv("WILDDASH_PASSWORD", PASSWORD)
    return site


def test_wrong_wilddash_password_gets_the_login_page_again(
    refused, wilddash_site, monkeypatch, tmp_path
):
    monkeypatch.setenv("WILDDASH_PASSWORD", "wrong-5ecret")
    dl = tmp_path / "dl"
    line = refused(
        ["download", "wilddash2", "--out", dl],
        "login",
        "127.0.0.1",
        "WILDDASH_PASSWORD",
        absent=[dl / "wd_public_v2p0.zip", dl / "wd_public_v2p0.zip.part"],
    )
    assert "wrong-5ecret" not in line


def test_wilddash_archive_answered_with_the_login_page(
    refused, wilddash_site, monkeypatch, tmp_path
):
    ds = registry.REAL_DATASETS["wilddash2"]
    archive = dataclasses.replace(ds.archives[0], url=f"{wilddash_site}/html/wd_public_v2p0.zip")
    monkeypatch.setitem(
        registry.REAL_DATASETS, "wilddash2", dataclasses.replace(ds, archives=(archive,))
    )
    dl = tmp_path / "dl"
    line = refused(
        ["download", "wilddash2", "--out", dl, "--extract-to", tmp_path / "ex"],
        "HTML page",
        f"{wilddash_site}/html/wd_public_v2p0.zip",
        absent=[dl / "wd_public_v2p0.zip", dl / "wd_public_v2p0.zip.part", tmp_path / "ex"],
    )
    assert PASSWORD not in line


def test_html_error_page_instead_of_an_archive(refused, site, tmp_path):
    line = refused(
        linked(tmp_path, f"{site}/html/data_semantics.zip?Signature={SECRET}"),
        "HTML page",
        f"{site}/html/data_semantics.zip?<redacted>",
        absent=[kitti_archive(tmp_path), record_path(kitti_archive(tmp_path))],
    )
    assert SECRET not in line


def test_login_page_sent_as_an_archive(refused, site, tmp_path):
    archive = kitti_archive(tmp_path)
    refused(
        linked(tmp_path, f"{site}/sneaky/data_semantics.zip"),
        "HTML page",
        "<html",
        absent=[archive, archive.with_name(archive.name + ".part"), record_path(archive)],
    )


def test_zero_length_body(refused, site, tmp_path):
    archive = kitti_archive(tmp_path)
    refused(
        linked(tmp_path, f"{site}/empty/data_semantics.zip"),
        "empty body",
        f"{site}/empty/data_semantics.zip",
        absent=[archive, archive.with_name(archive.name + ".part"), record_path(archive)],
    )


def test_file_already_there_with_a_wrong_published_md5(refused, tmp_path):
    archive = tmp_path / "dl" / "VOCtrainval_11-May-2012.tar"
    archive.parent.mkdir()
    archive.write_bytes(PAYLOAD)
    refused(
        ["download", "voc", "--out", archive.parent, "--extract-to", tmp_path / "ex"],
        archive,
        "6cd6e144f989b92b3379bac3b3de84fd",
        "delete it",
        absent=[tmp_path / "ex"],
        untouched=[archive],
    )


def test_file_already_there_without_checksum_or_record(refused, tmp_path):
    archive = tmp_path / "dl" / "ADEChallengeData2016.zip"
    archive.parent.mkdir()
    archive.write_bytes(LOGIN_PAGE)
    refused(
        ["download", "ade20k", "--out", archive.parent, "--extract-to", tmp_path / "ex"],
        archive,
        "no record",
        "real.ade20k.archives.ADEChallengeData2016.zip",
        absent=[tmp_path / "ex"],
        untouched=[archive],
    )


def recorded(tmp_path: Path, data: bytes) -> Path:
    """A kitti archive under its final name whose record describes ``PAYLOAD``, holding ``data``."""
    archive = kitti_archive(tmp_path)
    archive.parent.mkdir()
    archive.write_bytes(data)
    record = {"name": archive.name, "size": len(PAYLOAD)}
    record_path(archive).write_text(
        json.dumps({**record, "sha256": hashlib.sha256(PAYLOAD).hexdigest()})
    )
    return archive


def test_file_already_there_cut_short_of_its_record(refused, site, tmp_path):
    archive = recorded(tmp_path, PAYLOAD[:100])
    refused(
        linked(tmp_path, f"{site}/file/data_semantics.zip"),
        archive,
        "size 100 bytes",
        record_path(archive).name,
        untouched=[archive, record_path(archive)],
    )


def test_file_already_there_with_another_sha256_than_its_record(refused, site, tmp_path):
    archive = recorded(tmp_path, PAYLOAD[::-1])
    refused(
        linked(tmp_path, f"{site}/file/data_semantics.zip"),
        archive,
        "sha256",
        "delete both",
        untouched=[archive, record_path(archive)],
    )


def test_unknown_options_key(refused, tmp_path):
    refused(
        ["download", "voc", "--out", tmp_path, "--options", options(archive={})],
        "'archive'",
        "--options",
        "archives, links_file",
    )


def test_misspelled_archive_name_in_options(refused, tmp_path):
    given = tmp_path / "voc.tar"
    given.write_bytes(PAYLOAD)
    name = "VOCtrainval_11-May-2012.tr"
    refused(
        ["download", "voc", "--out", tmp_path / "dl", "--options", options(archives={name: given})],
        repr(name),
        "real.voc.archives",
        "VOCtrainval_11-May-2012.tar",
        absent=[tmp_path / "dl"],
    )


def test_malformed_options_json(refused, tmp_path):
    refused(
        ["download", "voc", "--out", tmp_path, "--options", '{"archives": '],
        "--options",
        "not valid JSON",
        "line 1, column 14",
    )


def test_options_that_are_not_an_object(refused, tmp_path):
    refused(["download", "voc", "--out", tmp_path, "--options", "[1]"], "--options", "list")


def test_inline_personal_links(refused, tmp_path):
    links = {"data_semantics.zip": f"https://s3.example/x.zip?Signature={SECRET}"}
    line = refused(
        ["download", "kitti", "--out", tmp_path / "dl", "--options", json.dumps({"links": links})],
        "real.kitti.links",
        "real.kitti.links_file",
        absent=[tmp_path / "dl"],
    )
    assert SECRET not in line


def test_unreachable_host(refused, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/data_semantics.zip?Signature={SECRET}"
    line = refused(
        linked(tmp_path, url),
        f"cannot reach 127.0.0.1:{port}",
        f"http://127.0.0.1:{port}/v1/data_semantics.zip?<redacted>",
        absent=[kitti_archive(tmp_path)],
    )
    assert SECRET not in line


def test_http_404_names_the_redacted_url(refused, site, tmp_path):
    line = refused(
        linked(tmp_path, f"{site}/status/404/data_semantics.zip?Signature={SECRET}"),
        "HTTP 404",
        f"{site}/status/404/data_semantics.zip?<redacted>",
        absent=[kitti_archive(tmp_path)],
    )
    assert SECRET not in line


def test_http_403_of_an_expired_link(refused, site, tmp_path):
    line = refused(
        linked(tmp_path, f"{site}/status/403/data_semantics.zip?Expires=1&Signature={SECRET}"),
        "HTTP 403",
        "expired",
        f"{site}/status/403/data_semantics.zip?<redacted>",
        absent=[kitti_archive(tmp_path)],
    )
    assert SECRET not in line


def test_failing_csdownload(refused, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "csDownload"
    tool.write_text("#!/bin/sh\nexit 1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    creds = tmp_path / "cs.json"
    creds.write_text(json.dumps({"username": "someone", "password": PASSWORD}))
    dl = tmp_path / "dl"
    line = refused(
        ["download", "cityscapes", "--out", dl, "--options", options(credentials_file=creds)],
        "csDownload exited with status 1",
        "real.cityscapes.credentials_file",
        absent=[dl / "gtFine_trainvaltest.zip", dl / "leftImg8bit_trainvaltest.zip"],
    )
    assert PASSWORD not in line


def test_missing_cityscapes_credentials_file(refused, tmp_path):
    creds = tmp_path / "nowhere.json"
    refused(
        ["download", "cityscapes", "--out", tmp_path, "--options", options(credentials_file=creds)],
        "real.cityscapes.credentials_file",
        creds,
    )


def test_cityscapes_credentials_file_without_a_password(refused, tmp_path):
    creds = tmp_path / "cs.json"
    creds.write_text(json.dumps({"username": "someone"}))
    refused(
        ["download", "cityscapes", "--out", tmp_path, "--options", options(credentials_file=creds)],
        creds,
        "username and password",
    )


def test_missing_links_file(refused, tmp_path):
    links = tmp_path / "links.yaml"
    refused(
        ["download", "kitti", "--out", tmp_path, "--options", options(links_file=links)],
        "real.kitti.links_file",
        links,
    )


def test_links_file_naming_an_unknown_archive(refused, site, tmp_path):
    links = tmp_path / "links.yaml"
    refused(
        linked(tmp_path, f"{site}/file/x.zip?Signature={SECRET}", name="data_semantic.zip"),
        links,
        "'data_semantic.zip'",
        "data_semantics.zip",
        absent=[tmp_path / "dl"],
    )


def test_links_file_that_is_not_yaml(refused, tmp_path):
    links = tmp_path / "links.yaml"
    links.write_text(f'data_semantics.zip: "https://s3.example/x.zip?Signature={SECRET}\n')
    line = refused(
        ["download", "kitti", "--out", tmp_path, "--options", options(links_file=links)],
        links,
        "not valid YAML",
    )
    assert SECRET not in line


def test_local_archive_that_is_missing(refused, tmp_path):
    given = tmp_path / "data_semantics.zip"
    refused(
        [
            "download",
            "kitti",
            "--out",
            tmp_path / "dl",
            "--options",
            options(archives={"data_semantics.zip": given}),
        ],
        "real.kitti.archives.data_semantics.zip",
        given,
    )


def test_local_archive_with_a_wrong_published_md5(refused, tmp_path):
    given = tmp_path / "voc.tar"
    given.write_bytes(PAYLOAD)
    refused(
        [
            "download",
            "voc",
            "--out",
            tmp_path / "dl",
            "--options",
            options(archives={"VOCtrainval_11-May-2012.tar": given}),
        ],
        given,
        "6cd6e144f989b92b3379bac3b3de84fd",
        untouched=[given],
    )


@pytest.mark.parametrize(
    ("body", "what"), [(LOGIN_PAGE, "an HTML page"), (b"", "empty")], ids=["html", "empty"]
)
def test_local_archive_that_is_a_saved_login_page_or_empty(refused, tmp_path, body, what):
    given = tmp_path / "data_semantics.zip"
    given.write_bytes(body)
    refused(
        [
            "download",
            "kitti",
            "--out",
            tmp_path / "dl",
            "--extract-to",
            tmp_path / "ex",
            "--options",
            options(archives={"data_semantics.zip": given}),
        ],
        given,
        what,
        absent=[tmp_path / "ex"],
        untouched=[given],
    )
