"""Bad inputs of ``mdseg prepare``: damaged or mismatched native files, gaps, short copies.

Most cases use a tiny ADE20K download (one training and one validation pair, so
``--allow-incomplete``) with one file spoilt. Each refusal must leave no ``manifest.json`` (the
prepared copy is not complete) and must not touch the download itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mdseg.cli import main


def png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


@dataclass
class Download:
    """An extracted ADE20K download and where ``prepare`` writes it."""

    source: Path
    out: Path
    label: Path  # the validation label
    image: Path  # its image

    def argv(self, *extra: str | Path) -> list[str | Path]:
        return ["prepare", "ade20k", "--source", self.source, "--out", self.out, *extra]

    @property
    def manifest(self) -> Path:
        return self.out / "manifest.json"

    def files(self) -> list[Path]:
        return sorted(p for p in self.source.rglob("*") if p.is_file())


@pytest.fixture
def ade(tmp_path: Path) -> Download:
    src = tmp_path / "ADEChallengeData2016"
    for split, name in (("training", "ADE_train_00000001"), ("validation", "ADE_val_00000001")):
        png(
            src / "annotations" / split / f"{name}.png",
            np.array([[1, 2, 3], [0, 150, 7]], np.uint8),
        )
        png(src / "images" / split / f"{name}.jpg", np.zeros((2, 3, 3), np.uint8))
    label = src / "annotations/validation/ADE_val_00000001.png"
    image = src / "images/validation/ADE_val_00000001.jpg"
    return Download(src, tmp_path / "ade20k", label, image)


def test_the_good_download_prepares(ade):
    """The cases below spoil one file of this download, which prepares as it is."""
    assert main([str(a) for a in ade.argv("--allow-incomplete")]) == 0
    assert ade.manifest.is_file()


def test_label_that_is_not_an_image(refused, ade):
    ade.label.write_text("<html>Sign in</html>")
    refused(
        ade.argv("--allow-incomplete"),
        ade.label,
        "cannot be read as a label image",
        "no image format recognised",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_png_label_cut_inside_its_header(refused, ade):
    ade.label.write_bytes(ade.label.read_bytes()[:20])  # the signature and half of IHDR
    refused(
        ade.argv("--allow-incomplete"),
        ade.label,
        "Truncated File Read",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_rgb_label_where_an_id_image_belongs(refused, ade):
    png(ade.label, np.zeros((2, 3, 3), np.uint8), "RGB")
    refused(
        ade.argv("--allow-incomplete"),
        ade.label,
        "a mode RGB image (3x2, 3 channels)",
        "single-channel id image",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_image_that_is_not_an_image(refused, ade):
    ade.image.write_bytes(b"")
    refused(
        ade.argv("--allow-incomplete"),
        ade.image,
        "cannot be read as an image",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_label_and_image_of_different_sizes(refused, ade):
    png(ade.image, np.zeros((2, 4, 3), np.uint8))
    refused(
        ade.argv("--allow-incomplete"),
        ade.label,
        ade.image,
        "3x2 but its image",
        "is 4x2",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_label_values_outside_the_id_table(refused, ade):
    png(ade.label, np.array([[1, 2, 3], [0, 151, 200]], np.uint8))
    refused(
        ade.argv("--allow-incomplete"),
        ade.label,
        "[151, 200]",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_label_without_its_image(refused, ade):
    ade.image.unlink()
    refused(
        ade.argv(),
        f"label {ade.label} has no image {ade.image}",
        "--allow-incomplete",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_split_short_without_allow_incomplete(refused, ade):
    refused(
        ade.argv(),
        "ade20k",
        "expected 2000 images, found 1",
        absent=[ade.manifest],
        untouched=ade.files(),
    )


def test_missing_source_folder(refused, ade):
    """Nothing starts: the dataset prepared before keeps its manifest."""
    assert main([str(a) for a in ade.argv("--allow-incomplete")]) == 0
    gone = ade.source.parent / "not-extracted"
    argv = ["prepare", "ade20k", "--source", gone, "--out", ade.out, "--allow-incomplete"]
    refused(argv, gone, "found no folder", untouched=[ade.manifest, *ade.out.glob("*.lst")])


def test_unknown_dataset_key(refused, ade):
    argv = ["prepare", "ade20", "--source", ade.source, "--out", ade.out]
    refused(argv, "'ade20'", "known: cityscapes", absent=[ade.out], untouched=ade.files())


def test_voc_image_without_a_label(refused, tmp_path):
    """The split file lists the image, its label is not there: both are named."""
    voc = tmp_path / "VOCdevkit/VOC2012"
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000032\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("2007_000033\n2007_000039\n")
    for name in ("2007_000032", "2007_000033", "2007_000039"):
        png(voc / "JPEGImages" / f"{name}.jpg", np.zeros((2, 2, 3), np.uint8))
    for name in ("2007_000032", "2007_000033"):
        png(voc / "SegmentationClass" / f"{name}.png", np.zeros((2, 2), np.uint8))
    out = tmp_path / "voc"
    before = sorted(p for p in voc.rglob("*") if p.is_file())
    refused(
        ["prepare", "voc", "--source", tmp_path / "VOCdevkit", "--out", out],
        "voc: 1 of 3 pairs lack a file",
        f"image {voc / 'JPEGImages/2007_000039.jpg'} has no label",
        voc / "SegmentationClass/2007_000039.png",
        absent=[out / "manifest.json"],
        untouched=before,
    )


def test_sunrgbd_images_without_labels_are_named(refused, tmp_path):
    """A. Handa's layout pairs labels with images by number: the unpaired images are named."""
    src = tmp_path / "dl"
    for split, n in (("test", 2), ("train", 2)):
        for k in range(1, n + 1):
            png(src / f"SUNRGBD-{split}_images/img-{k:06d}.jpg", np.zeros((1, 2, 3), np.uint8))
    for i in (1, 2, 3):  # img-000004.png, the second training image's, is missing
        png(src / "labels" / f"img-{i:06d}.png", np.array([[0, 1]], np.uint8))
    out = tmp_path / "sunrgbd"
    refused(
        ["prepare", "sunrgbd", "--source", src, "--out", out, "--allow-incomplete"],
        "images without a label",
        f"{src / 'SUNRGBD-train_images/img-000002.jpg'} (no img-000004.png)",
        absent=[out / "manifest.json"],
        untouched=sorted(p for p in src.rglob("*") if p.is_file()),
    )
