"""Extracting downloaded archives: exact contents, nested zips, unsafe members, damage, reruns."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from mdseg.datasets.real.download import DownloadError, extract

MARKER = ".extracted"


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A tar (gzipped when ``path`` says so) of ``files`` plus symlinks ``name -> target``."""
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the marker, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != MARKER
    }


def everything(root: Path) -> set[Path]:
    return set(root.rglob("*"))


ZIPPED = {"images/a.jpg": b"jpeg" * 1000, "images/b.jpg": b"\x00\xff" * 3000}
TARRED = {"labels/a.png": b"png-a" * 500, "labels/deep/b.png": bytes(range(256)) * 40}


def test_zip_tar_gz_and_text_give_exactly_their_files(tmp_path: Path) -> None:
    archives = [
        write_zip(tmp_path / "images.zip", ZIPPED),
        write_tar(tmp_path / "labels.tar.gz", TARRED),
        write_tar(tmp_path / "more.tgz", {"more/c.png": b"c"}),
        write_tar(tmp_path / "plain.tar", {"plain/d.png": b"d"}),
    ]
    (tmp_path / "train.txt").write_text("a\nb\n")
    archives.append(tmp_path / "train.txt")
    dest = tmp_path / "out"
    assert extract(archives, dest) == dest
    assert tree(dest) == {
        **ZIPPED,
        **TARRED,
        "more/c.png": b"c",
        "plain/d.png": b"d",
        "train.txt": b"a\nb\n",
    }
    listed = (dest / MARKER).read_text().split()
    assert listed == ["images.zip", "labels.tar.gz", "more.tgz", "plain.tar", "train.txt"]


def test_zip_inside_a_zip_is_unpacked_next_to_itself_and_removed(tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "panoptic_val2017.zip", {"panoptic_val2017/1.png": b"one"})
    outer = write_zip(
        tmp_path / "annotations.zip",
        {"annotations/panoptic_val2017.zip": inner.read_bytes(), "annotations/p.json": b"{}"},
    )
    dest = extract([outer], tmp_path / "out")
    assert tree(dest) == {
        "annotations/panoptic_val2017/1.png": b"one",
        "annotations/p.json": b"{}",
    }


def test_zip_inside_a_tar_is_unpacked_too(tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", {"x.txt": b"x"})
    outer = write_tar(tmp_path / "outer.tar.gz", {"d/inner.zip": inner.read_bytes()})
    assert tree(extract([outer], tmp_path / "out")) == {"d/x.txt": b"x"}


def test_archives_lying_in_dest_are_left_alone(tmp_path: Path) -> None:
    """Extracting into the download folder must not unpack or delete the downloads."""
    inner = write_zip(tmp_path / "inner.zip", {"x.txt": b"x"})
    archive = write_zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()})
    other = write_zip(tmp_path / "unlisted.zip", {"y.txt": b"y"})
    extract([archive], tmp_path)
    assert archive.is_file() and other.is_file()
    assert (tmp_path / "x.txt").read_bytes() == b"x"
    assert not (tmp_path / "y.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "ABSOLUTE"])
def test_zip_member_leaving_dest_is_refused_before_anything_is_written(
    tmp_path: Path, name: str
) -> None:
    name = str(tmp_path / "evil.txt") if name == "ABSOLUTE" else name
    # The unsafe member comes last: nothing at all may be written, not even the safe ones.
    archive = write_zip(tmp_path / "bad.zip", {"ok.txt": b"ok", name: b"pwned"})
    dest = tmp_path / "out"
    before = everything(tmp_path)
    with pytest.raises(ValueError, match=re.escape("bad.zip")) as err:
        extract([archive], dest)
    assert name in str(err.value)
    assert not (tmp_path / "evil.txt").exists()
    assert everything(tmp_path) - before <= {dest}
    assert not (dest / MARKER).exists()


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "ABSOLUTE"])
def test_tar_member_leaving_dest_is_refused(tmp_path: Path, name: str) -> None:
    name = str(tmp_path / "evil.txt") if name == "ABSOLUTE" else name
    archive = write_tar(tmp_path / "bad.tar.gz", {"ok.txt": b"ok", name: b"pwned"})
    dest = tmp_path / "out"
    with pytest.raises(ValueError, match=re.escape("bad.tar.gz")) as err:
        extract([archive], dest)
    assert name in str(err.value)
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "evil.txt").exists()
    assert not (dest / MARKER).exists()


def test_tar_link_out_of_dest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    archive = write_tar(
        tmp_path / "bad.tar", {"link/evil.txt": b"pwned"}, links={"link": "../outside"}
    )
    # Symlinks are added after files by write_tar; put the link first to try writing through it.
    with tarfile.open(archive) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]
    with tarfile.open(archive, "w") as tf:
        for member, data in reversed(members):
            tf.addfile(member, io.BytesIO(data) if data is not None else None)
    dest = tmp_path / "out"
    with pytest.raises(ValueError, match=re.escape("bad.tar")):
        extract([archive], dest)
    assert not any((tmp_path / "outside").iterdir())


def test_without_tar_data_filter_links_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pythons before 3.11.4 have no tarfile data filter; extract then refuses every link."""
    monkeypatch.delattr(tarfile, "data_filter")
    archive = write_tar(tmp_path / "links.tar", {"a.txt": b"a"}, links={"b.txt": "a.txt"})
    with pytest.raises(ValueError, match=r"links\.tar.*'b\.txt'"):
        extract([archive], tmp_path / "out")
    safe = write_tar(tmp_path / "safe.tar", TARRED)
    assert tree(extract([safe], tmp_path / "out2")) == TARRED


def test_truncated_zip_raises_naming_it_and_a_rerun_succeeds(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "images.zip", ZIPPED)
    archive = write_zip(tmp_path / "labels.zip", {"labels/a.png": b"a" * 5000})
    dest = extract([good, archive], tmp_path / "out")
    assert (dest / MARKER).is_file()

    complete = archive.read_bytes()
    archive.write_bytes(complete[: len(complete) // 2])
    with pytest.raises(DownloadError, match=re.escape("labels.zip")):
        extract([good, archive], dest)
    assert not (dest / MARKER).exists()  # the earlier run's marker is gone too

    archive.write_bytes(complete)
    extract([good, archive], dest)
    assert tree(dest) == {**ZIPPED, "labels/a.png": b"a" * 5000}
    assert (dest / MARKER).read_text().split() == ["images.zip", "labels.zip"]


def test_zip_with_corrupted_member_data_raises(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "flip.zip", {"x.bin": bytes(range(256)) * 100})
    data = bytearray(archive.read_bytes())
    at = data.index(b"x.bin") + len("x.bin") + 40  # inside the first member's compressed data
    data[at] ^= 0xFF
    archive.write_bytes(data)
    with pytest.raises(DownloadError, match=re.escape("flip.zip")):
        extract([archive], tmp_path / "out")
    assert not (tmp_path / "out" / MARKER).exists()


MEMBER = 512 + 3072  # a header block and 3000 bytes of data padded to whole blocks
DAMAGE = {
    # (archive name, what is done to its bytes)
    "gz cut in a member": ("labels.tar.gz", lambda b: b[: len(b) // 2]),
    "gz cut in its trailer": ("labels.tar.gz", lambda b: b[:-4]),
    "gz garbled": (
        "labels.tar.gz",
        lambda b: b[:100] + bytes(x ^ 0xFF for x in b[100:110]) + b[110:],
    ),
    "tar cut in a member": ("labels.tar", lambda b: b[: MEMBER + 600]),
    "tar cut at a member boundary": ("labels.tar", lambda b: b[: 2 * MEMBER]),
    "tar with a garbled header": ("labels.tar", lambda b: b[:MEMBER] + b"?" * 8 + b[MEMBER + 8 :]),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_tar_raises_naming_it(tmp_path: Path, damage: str) -> None:
    """tarfile alone stops quietly at a cut or garbled header and never checks the gzip CRC."""
    name, spoil = DAMAGE[damage]
    archive = write_tar(tmp_path / name, {f"labels/{i}.png": bytes([i]) * 3000 for i in range(4)})
    archive.write_bytes(spoil(archive.read_bytes()))
    with pytest.raises(DownloadError, match=re.escape(name)):
        extract([archive], tmp_path / "out")
    assert not (tmp_path / "out" / MARKER).exists()


def test_unknown_suffix_raises_naming_file_and_supported_types(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "images.zip", ZIPPED)
    odd = tmp_path / "labels.rar"
    odd.write_bytes(b"Rar!")
    with pytest.raises(ValueError, match=r"labels\.rar") as err:
        extract([good, odd], tmp_path / "out")
    for suffix in (".zip", ".tar", ".tar.gz", ".tgz", ".txt", ".json"):
        assert suffix in str(err.value)
    assert not (tmp_path / "out").exists()  # refused before any work
