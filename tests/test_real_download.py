"""Downloads against a local HTTP server: resume, checksum, records, redaction, credentials."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mdseg.datasets.real.download import DownloadError, download_dataset, fetch, record_path
from mdseg.secrets import redact, redact_url

PAYLOAD = bytes(range(256)) * 4000  # 1 MB


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files with Range support; ``/cut/<name>`` announces the full size, sends half."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        cut = self.path.startswith("/cut/")
        data = (Path(self.directory) / self.path.removeprefix("/cut").lstrip("/")).read_bytes()
        start = int(self.headers.get("Range", "bytes=0-")[6:].split("-")[0])
        self.server.ranges.append(start)
        if start >= len(data):
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        self.wfile.write(body[: len(body) // 2] if cut else body)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)

    def handler(*args: object) -> RangeHandler:
        return RangeHandler(*args, directory=str(root))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.ranges = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()


def test_fetch_resumes_a_partial_file(server, tmp_path):
    url, httpd = server
    dest = tmp_path / "dl" / "data.bin"
    dest.parent.mkdir()
    dest.with_name("data.bin.part").write_bytes(PAYLOAD[:1000])
    fetch(f"{url}/data.bin", dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert httpd.ranges == [1000]
    assert not dest.with_name("data.bin.part").exists()


def test_checksum_mismatch_is_an_error_and_leaves_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="not the published"):
        fetch(f"{url}/data.bin", dest, md5="0" * 32)
    assert not dest.exists() and not dest.with_name("data.bin.part").exists()


def test_interrupted_download_is_not_complete_then_resumes(server, tmp_path):
    url, httpd = server
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="rerun to resume"):
        fetch(f"{url}/cut/data.bin", dest)
    assert not dest.exists()
    assert dest.with_name("data.bin.part").stat().st_size == len(PAYLOAD) // 2
    fetch(f"{url}/data.bin", dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD and httpd.ranges[-1] == len(PAYLOAD) // 2


def test_personal_link_datasets_name_registration_and_config_key(tmp_path):
    with pytest.raises(DownloadError) as err:
        download_dataset("mapillary", tmp_path)
    message = str(err.value)
    assert "mapillary.com" in message
    assert "real.mapillary.links_file" in message
    assert "real.mapillary.archives.mapillary-vistas-dataset_public_v1.2.zip" in message


def test_personal_link_from_the_links_file_is_used_and_recorded(server, tmp_path):
    url, _ = server
    links = tmp_path / "links.yaml"
    links.write_text(f"data_semantics.zip: {url}/data.bin\n")
    (path,) = download_dataset("kitti", tmp_path / "dl", {"links_file": str(links)})
    assert path.name == "data_semantics.zip" and path.read_bytes() == PAYLOAD
    record = json.loads(record_path(path).read_text())
    assert record == {
        "name": "data_semantics.zip",
        "size": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }


def test_a_recorded_download_is_trusted_without_a_request(server, tmp_path):
    url, httpd = server
    dest = tmp_path / "data.bin"
    fetch(f"{url}/data.bin", dest)
    requests = len(httpd.ranges)
    assert fetch(f"{url}/data.bin", dest) == dest
    assert len(httpd.ranges) == requests


def test_a_published_md5_is_checked_on_a_file_already_there(tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD)
    assert fetch("http://unused.invalid/x", dest, md5=hashlib.md5(PAYLOAD).hexdigest()) == dest
    assert not record_path(dest).exists()


def test_urls_are_redacted_but_keep_host_and_path():
    url = "https://user:pw@cdn.example.org/v1.2/a.zip?Expires=1&Signature=abc&Key-Pair-Id=k#f"
    assert redact_url(url) == "https://<redacted>@cdn.example.org/v1.2/a.zip?<redacted>#<redacted>"
    assert redact(f"failed: {url} (x)") == f"failed: {redact_url(url)} (x)"
    assert redact_url("http://host/plain.zip") == "http://host/plain.zip"
    once = redact(f"failed: {url} (x)")
    assert redact(once) == once  # the command boundary redacts messages made redacted


@pytest.mark.parametrize("key", ["wilddash", "wilddash2"])
def test_wilddash_without_credentials(tmp_path, monkeypatch, key):
    monkeypatch.delenv("WILDDASH_USERNAME", raising=False)
    monkeypatch.delenv("WILDDASH_PASSWORD", raising=False)
    with pytest.raises(DownloadError, match="WILDDASH_USERNAME and WILDDASH_PASSWORD"):
        download_dataset(key, tmp_path)


def test_wilddash_v1_archives_from_disk_skip_the_login(tmp_path, monkeypatch):
    monkeypatch.delenv("WILDDASH_USERNAME", raising=False)
    local = {}
    for name in ("wd_both_01.zip", "wd_val_01.zip"):
        (tmp_path / name).write_bytes(PAYLOAD)
        local[name] = str(tmp_path / name)
    paths = download_dataset("wilddash", tmp_path / "dl", {"archives": local})
    assert [p.name for p in paths] == ["wd_both_01.zip", "wd_val_01.zip"]


def test_cityscapes_without_tool(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(DownloadError, match="pip install cityscapesscripts"):
        download_dataset("cityscapes", tmp_path)
