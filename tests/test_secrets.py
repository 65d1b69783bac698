"""No secret reaches a command line, a log or ``.snakemake``: a credentials run of the workflow.

Mapillary's archive comes from a local server through a signed personal link (CloudFront's
``Expires``/``Signature``/``Key-Pair-Id``) kept in a ``links_file`` outside the run's folder.
Snakemake runs the fetch job with ``-p`` (echoing its shell command); afterwards every file of
the run's folder (logs/, .snakemake/, the data) and the captured output are searched for the
secret values.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from test_workflow import run_tiny

SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZQ-4f1d"
KEY_PAIR = "APKA5ECRETKEYPAIR77"
SECRETS = (SIGNATURE, KEY_PAIR)
ARCHIVE = "mapillary-vistas-dataset_public_v1.2.zip"


def archive_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("config_v1.2.json", b'{"labels": []}')
        zf.writestr("validation/v1.2/labels/a.png", b"not needed here")
    return buffer.getvalue()


class SignedLinks(BaseHTTPRequestHandler):
    """Serves the archive only to a request that carries the right signature (else 403)."""

    body = archive_bytes()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        ok = query.get("Signature") == [SIGNATURE] and query.get("Key-Pair-Id") == [KEY_PAIR]
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "binary/octet-stream")
        self.send_header("Content-Length", str(len(self.body) if ok else 0))
        self.end_headers()
        if ok:
            self.wfile.write(self.body)


@pytest.fixture
def signed_link() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SignedLinks)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    yield (
        f"http://127.0.0.1:{port}/vistas/{ARCHIVE}"
        f"?Expires=2000000000&Signature={SIGNATURE}&Key-Pair-Id={KEY_PAIR}"
    )
    httpd.shutdown()


def overlay(workdir: Path, mapillary: dict[str, object]) -> Path:
    path = workdir / "real.yaml"
    real = {"benchmark": "real", "data_root": str(workdir / "data"), "real": {}}
    real["real"] = {"mapillary": mapillary}
    path.write_text(yaml.safe_dump(real))
    return path


def leaks(workdir: Path, *outputs: str) -> list[str]:
    """Where any secret appears: the names of files under ``workdir`` and of ``outputs``."""
    found = [f"output {i}" for i, text in enumerate(outputs) if any(s in text for s in SECRETS)]
    for path in workdir.rglob("*"):
        if path.is_file() and any(s.encode() in path.read_bytes() for s in SECRETS):
            found.append(str(path.relative_to(workdir)))
    return found


@pytest.mark.workflow
def test_a_signed_link_never_reaches_a_command_a_log_or_snakemake(tmp_path, signed_link):
    private = tmp_path / "private"  # the user's secrets, outside the run's folder
    private.mkdir()
    links = private / "links.yaml"
    links.write_text(yaml.safe_dump({ARCHIVE: signed_link}))
    workdir = tmp_path / "run"
    workdir.mkdir()
    marker = workdir / "data" / "extracted" / "mapillary" / ".extracted"
    config = overlay(workdir, {"links_file": str(links)})
    proc = run_tiny(workdir, str(marker), "-p", overlays=(config,))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert marker.read_text().split() == [ARCHIVE]
    downloaded = workdir / "data" / "downloads" / "mapillary" / ARCHIVE
    assert downloaded.read_bytes() == SignedLinks.body
    record = json.loads(downloaded.with_name(ARCHIVE + ".sha256").read_text())
    assert record["size"] == len(SignedLinks.body)
    # the scan below is meaningful: the command was echoed, the job logged the link, and
    # Snakemake kept its records
    assert "mdseg download mapillary" in proc.stdout + proc.stderr
    fetch_log = (workdir / "logs" / "datasets" / "mapillary.fetch.log").read_text()
    assert f"/vistas/{ARCHIVE}?<redacted>" in fetch_log
    assert any((workdir / ".snakemake" / "metadata").iterdir())
    assert any((workdir / ".snakemake" / "log").iterdir())
    assert leaks(workdir, proc.stdout, proc.stderr) == []


@pytest.mark.workflow
def test_inline_links_stop_the_workflow_without_showing_them(tmp_path, signed_link):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = overlay(workdir, {"links": {ARCHIVE: signed_link}})
    proc = run_tiny(workdir, "-n", overlays=(config,))
    assert proc.returncode != 0
    assert "real.mapillary.links_file" in proc.stdout + proc.stderr
    config.unlink()  # the user's own file holds them; nothing else may
    assert leaks(workdir, proc.stdout, proc.stderr) == []
