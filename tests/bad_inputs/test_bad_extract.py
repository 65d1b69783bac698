"""Bad inputs of ``mdseg download --extract-to``: damaged, cut-short, unsafe or unknown archives.

Each archive is handed over as an already downloaded file (``real.<ds>.archives``), so no server
is involved; the extraction must stop naming the archive and leave no ``.extracted`` marker.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from test_extract import write_tar, write_zip

MEMBERS = {"training/semantic/000000_10.png": bytes(range(256)) * 64}


def cut(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def argv(tmp_path: Path, key: str, name: str, given: Path) -> list[object]:
    """``mdseg download key`` with archive ``name`` given as ``given``, extracted to ``ex``."""
    return [
        "download",
        key,
        "--out",
        tmp_path / "dl",
        "--extract-to",
        tmp_path / "ex",
        "--options",
        json.dumps({"archives": {name: str(given)}}),
    ]


def test_zip_cut_short(refused, tmp_path):
    given = cut(write_zip(tmp_path / "data_semantics.zip", MEMBERS))
    refused(
        argv(tmp_path, "kitti", "data_semantics.zip", given),
        given,
        "damaged or incomplete",
        absent=[tmp_path / "ex" / ".extracted"],
        untouched=[given],
    )


def test_zip_member_with_a_bad_crc(refused, tmp_path):
    given = tmp_path / "data_semantics.zip"
    with zipfile.ZipFile(given, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("training/semantic/000000_10.png", b"A" * 4096)
    given.write_bytes(given.read_bytes().replace(b"A" * 16, b"B" * 16, 1))
    refused(
        argv(tmp_path, "kitti", "data_semantics.zip", given),
        given,
        "CRC",
        absent=[tmp_path / "ex" / ".extracted"],
    )


def test_tar_gz_cut_short(refused, tmp_path):
    given = cut(write_tar(tmp_path / "idd-segmentation.tar.gz", MEMBERS))
    refused(
        argv(tmp_path, "idd", "idd-segmentation.tar.gz", given),
        given,
        "damaged or incomplete",
        absent=[tmp_path / "ex" / ".extracted"],
    )


def test_zip_member_that_escapes_the_folder(refused, tmp_path):
    given = write_zip(tmp_path / "data_semantics.zip", {"../../evil.txt": b"x"})
    refused(
        argv(tmp_path, "kitti", "data_semantics.zip", given),
        given,
        "'../../evil.txt'",
        "outside",
        absent=[tmp_path / "ex" / ".extracted", tmp_path.parent / "evil.txt"],
    )


def test_tar_link_out_of_the_folder(refused, tmp_path):
    escape = {"escape": "/etc/passwd"}
    given = write_tar(tmp_path / "idd-segmentation.tar.gz", MEMBERS, links=escape)
    refused(
        argv(tmp_path, "idd", "idd-segmentation.tar.gz", given),
        given,
        "'escape'",
        absent=[tmp_path / "ex" / ".extracted", tmp_path / "ex" / "escape"],
    )


def test_archive_of_an_unknown_type(refused, tmp_path):
    given = tmp_path / "data_semantics.rar"
    given.write_bytes(b"Rar!\x1a\x07\x00" + bytes(100))
    refused(
        argv(tmp_path, "kitti", "data_semantics.zip", given),
        given,
        "not an archive extract knows",
        absent=[tmp_path / "ex"],
    )
