"""Bad inputs of ``mdseg download --extract-to``: damaged, cut-short, unsafe or unknown archives.

Each archive is handed over as an already downloaded file (``real.<ds>.archives``), so no server
is involved; the extraction must stop naming the archive and leave no ``.extracted`` marker.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

MEMBERS = {"training/semantic/000000_10.png": bytes(range(256)) * 64}


def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tarred(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


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
    given = cut(zipped(tmp_path / "data_semantics.zip", MEMBERS))
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
    given = cut(tarred(tmp_path / "idd-segmentation.tar.gz", MEMBERS))
    refused(
        argv(tmp_path, "idd", "idd-segmentation.tar.gz", given),
        given,
        "damaged or incomplete",
        absent=[tmp_path / "ex" / ".extracted"],
    )


def test_zip_member_that_escapes_the_folder(refused, tmp_path):
    given = zipped(tmp_path / "data_semantics.zip", {"../../evil.txt": b"x"})
    refused(
        argv(tmp_path, "kitti", "data_semantics.zip", given),
        given,
        "'../../evil.txt'",
        "outside",
        absent=[tmp_path / "ex" / ".extracted", tmp_path.parent / "evil.txt"],
    )


def test_tar_link_out_of_the_folder(refused, tmp_path):
    given = tarred(tmp_path / "idd-segmentation.tar.gz", MEMBERS, links={"escape": "/etc/passwd"})
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
