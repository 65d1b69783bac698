"""Label PNG writer and reader: exact round trips, the formats they route, their errors."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from mdseg.datasets.real.png import encode_label, read_label, write_label
from mdseg.errors import DamagedFile


def label_maps() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    regions = np.kron(rng.integers(0, 40, (8, 16), dtype=np.uint8), np.ones((16, 16), np.uint8))
    return [
        np.array([[7]], np.uint8),
        np.arange(256, dtype=np.uint8).reshape(16, 16),  # every value, every difference sign
        rng.integers(0, 256, (3, 5), dtype=np.uint8),
        rng.integers(0, 256, (17, 301), dtype=np.uint8),
        regions,
        np.asfortranarray(regions),  # not C-contiguous
        regions[::2, 1::3],  # a strided view
    ]


@pytest.mark.parametrize("label", label_maps(), ids=lambda a: "x".join(map(str, a.shape)))
def test_encoded_png_decodes_exactly_in_pillow_and_opencv(label):
    data = encode_label(label)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and im.size == label.shape[::-1]
        assert (np.asarray(im) == label).all()
    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == label).all()


def test_encoded_size_matches_libpng_with_the_same_settings():
    label = label_maps()[4]
    libpng = cv2.imencode(
        ".png",
        label,
        [
            cv2.IMWRITE_PNG_COMPRESSION, 1,
            cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
        ],
    )[1]  # fmt: skip
    assert len(encode_label(label)) <= 1.05 * len(libpng)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (np.zeros((4, 4), np.int64), "int64"),
        (np.zeros((4, 4, 3), np.uint8), r"\(4, 4, 3\)"),
        (np.zeros((0, 4), np.uint8), r"\(0, 4\)"),
    ],
)
def test_encode_refuses_what_is_not_a_uint8_map(label, message):
    with pytest.raises(ValueError, match=message):
        encode_label(label)


def test_write_label_replaces_atomically(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"old")
    label = label_maps()[4]
    write_label(path, label)
    assert (read_label(path) == label).all()
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def save(path, array: np.ndarray, mode: str | None = None, palette: list[int] | None = None):
    im = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:
        im.putpalette(palette)
    im.save(path)
    return path


def test_read_greyscale_8_and_16_bit(tmp_path):
    grey = label_maps()[3]
    assert (read_label(save(tmp_path / "g.png", grey)) == grey).all()
    wide = np.array([[0, 255, 256, 40000]], np.uint16)
    read = read_label(save(tmp_path / "w.png", wide))
    assert read.dtype == np.uint16 and read.tolist() == wide.tolist()


def test_read_palette_gives_indices_and_rgb_keeps_channel_order(tmp_path):
    indices = np.array([[0, 1, 2, 1]], np.uint8)
    palette = [0, 0, 0, 128, 64, 128, 244, 35, 232] + [0] * (3 * 253)
    assert read_label(save(tmp_path / "p.png", indices, "P", palette)).tolist() == [[0, 1, 2, 1]]
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    assert read_label(save(tmp_path / "c.png", rgb, "RGB")).tolist() == rgb.tolist()


def test_read_label_names_an_unreadable_file(tmp_path):
    data = bytearray(encode_label(label_maps()[4]))
    data[60:] = bytes(len(data) - 60)  # IHDR intact, image data zeroed
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFile, match=r"broken\.png: cannot be read as a label image"):
        read_label(path)


def test_read_label_refuses_a_file_cut_inside_its_header(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(encode_label(label_maps()[0])[:20])  # signature and half of IHDR
    with pytest.raises(DamagedFile, match=r"cut\.png: .*Truncated File Read"):  # no IndexError
        read_label(path)
