"""Converters from every native label format, checked value by value on files made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from mdseg.cli import main
from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.real.convert import Item, UnknownLabels
from mdseg.datasets.real.panoptic import WD2_EVAL_CLASSES, wilddash2_eval
from mdseg.datasets.real.prepare import CONVERTERS, holdout_names, prepare_dataset
from mdseg.datasets.real.registry import REAL_DATASETS
from mdseg.io import read_manifest, read_split_list


def png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def convert(key: str, label: Path, meta: tuple = ()) -> np.ndarray:
    return CONVERTERS[key].convert(Item("val", label.stem, label, label, meta=meta))


def test_registry_covers_every_dataset_with_its_class_list():
    assert set(REAL_DATASETS) == set(CONVERTERS) == {
        "cityscapes", "mapillary", "bdd", "idd", "sunrgbd", "ade20k", "coco", "wilddash",
        "wilddash2", "kitti", "camvid", "scannet", "voc", "context",
    }  # fmt: skip
    for key in REAL_DATASETS:
        assert load_classnames(key)
    assert len(load_classnames("mapillary")) == 65 and len(load_classnames("idd")) == 26


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("cityscapes", [0, 7, 8, 26, 33, 14, 1], [255, 0, 1, 13, 18, 255, 255]),
        ("kitti", [7, 24, 25, 31, 3, 21], [0, 11, 12, 16, 255, 8]),
        ("bdd", [0, 18, 255, 5], [0, 18, 255, 5]),
        ("mapillary", [0, 64, 65, 13], [0, 64, 255, 13]),
        ("ade20k", [0, 1, 150, 13], [255, 0, 149, 12]),
        ("scannet", [0, 1, 14, 39, 40, 13], [255, 0, 12, 19, 255, 255]),
    ],
)
def test_id_images(tmp_path, key, raw, expected):
    label = png(tmp_path / "l.png", np.array([raw], dtype=np.uint8))
    assert convert(key, label).tolist() == [expected]


@pytest.mark.parametrize(
    ("layout", "raw", "expected", "bad"),
    [
        ("semseg-label37", [0, 36, 255, 4], [0, 36, 255, 4], 37),
        ("SUNRGBD-train_images", [0, 1, 37, 5], [255, 0, 36, 4], 38),
    ],
)
def test_sunrgbd_lookup_table_follows_the_layout(tmp_path, layout, raw, expected, bad):
    label = png(tmp_path / "l.png", np.array([raw], dtype=np.uint8))
    assert convert("sunrgbd", label, (layout,)).tolist() == [expected]
    with pytest.raises(UnknownLabels) as err:
        convert("sunrgbd", png(tmp_path / "b.png", np.array([[bad, 1]], np.uint8)), (layout,))
    assert err.value.values == [bad]


def make_sunrgbd_handa(root: Path, n_test: int, n_train: int) -> None:
    """Handa's three archives extracted; label i holds [0, 1, 37, i] (its number last)."""
    for split, n in (("test", n_test), ("train", n_train)):
        for k in range(1, n + 1):
            image = root / f"SUNRGBD-{split}_images" / f"img-{k:06d}.jpg"
            png(image, np.zeros((1, 4, 3), np.uint8))
    for i in range(1, n_test + n_train + 1):
        label = root / "labels" / f"img-{i:06d}.png"
        png(label, np.array([[0, 1, 37, i]], np.uint8))


def test_prepare_sunrgbd_handa_layout(tmp_path):
    src = tmp_path / "dl"
    make_sunrgbd_handa(src, n_test=3, n_train=4)
    out = tmp_path / "sunrgbd"
    args = ["prepare", "sunrgbd", "--source", str(src), "--out", str(out)]
    assert main(args) == 1
    assert main([*args, "--allow-incomplete"]) == 0
    manifest = read_manifest(out / "manifest.json")
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {
        "train": 3,
        "holdout": 1,
        "val": 3,
    }
    val = read_split_list(out / "val.lst")
    train = read_split_list(out / "train.lst") + read_split_list(out / "holdout.lst")
    for pairs, folder, first in (
        (val, "SUNRGBD-test_images", 1),
        (train, "SUNRGBD-train_images", 4),
    ):
        assert len(pairs) == len({image for image, _ in pairs})
        for image, label in pairs:
            assert image.parent.resolve() == (src / folder).resolve() and image.is_file()
            k = int(image.stem.removeprefix("img-"))
            assert label.stem == image.stem  # output named after the image
            # label number first + k - 1 becomes id first + k - 2
            assert np.asarray(Image.open(label)).tolist() == [[255, 0, 36, first + k - 2]]


def test_sunrgbd_handa_labels_must_match_the_images(tmp_path):
    src = tmp_path / "dl"
    make_sunrgbd_handa(src, n_test=2, n_train=2)
    (src / "labels/img-000004.png").unlink()
    splits = {"train": "train", "val": "test"}
    with pytest.raises(
        ValueError,
        match=r"3 labels in .*labels, expected img-000001.png "
        r"\.\.\. img-000004.png for 2 images in .*test_images; 2 images in",
    ):
        CONVERTERS["sunrgbd"].items(src, splits)


def test_prepare_sunrgbd_mseg_layout(tmp_path):
    src = tmp_path / "mseg" / "sunrgbd"
    for split in ("train", "test"):
        png(src / "semseg-label37" / split / "00000002.png", np.array([[0, 36, 255]], np.uint8))
        png(src / "image" / split / "img-000002.jpg", np.zeros((1, 3, 3), np.uint8))
    out = tmp_path / "out"
    args = ["prepare", "sunrgbd", "--source", str(tmp_path / "mseg"), "--out", str(out)]
    assert main([*args, "--allow-incomplete"]) == 0
    ((image, label),) = read_split_list(out / "val.lst")
    assert image.resolve() == (src / "image/test/img-000002.jpg").resolve()
    assert np.asarray(Image.open(label)).tolist() == [[0, 36, 255]]
    with pytest.raises(FileNotFoundError, match=r"semseg-label37.*SUNRGBD-train_images"):
        CONVERTERS["sunrgbd"].items(tmp_path / "out", {"val": "test"})


def test_voc_palette_png_keeps_border_ignored(tmp_path):
    image = Image.fromarray(np.array([[0, 1, 20, 255]], dtype=np.uint8), "P")
    image.putpalette([0, 0, 0, 128, 0, 0] * 128)
    image.save(tmp_path / "v.png")
    assert convert("voc", tmp_path / "v.png").tolist() == [[0, 1, 20, 255]]


@pytest.mark.parametrize(("key", "raw", "bad"), [("ade20k", [151, 3], 151), ("voc", [21], 21)])
def test_unknown_value_is_an_error(tmp_path, key, raw, bad):
    label = png(tmp_path / "l.png", np.array([raw], dtype=np.uint8))
    with pytest.raises(UnknownLabels) as err:
        convert(key, label)
    assert err.value.values == [bad]


def test_unknown_values_stop_prepare_naming_files(tmp_path):
    src = tmp_path / "ADEChallengeData2016"
    png(src / "annotations/validation/a.png", np.array([[1, 200]], dtype=np.uint8))
    png(src / "images/validation/a.jpg", np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[200\] in 1 files:\n  .*a.png"):
        prepare_dataset("ade20k", src, tmp_path / "out", allow_incomplete=True)
    assert not (tmp_path / "out/manifest.json").exists()


def panoptic_png(path: Path, ids: np.ndarray) -> Path:
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)
    return png(path, rgb, "RGB")


def test_coco_panoptic(tmp_path):
    label = panoptic_png(tmp_path / "p.png", np.array([[0, 70000, 300, 5]]))
    meta = ((70000, 0), (300, 80), (5, 132))
    assert convert("coco", label, meta).tolist() == [[255, 0, 80, 132]]
    with pytest.raises(UnknownLabels, match="300"):
        convert("coco", label, ((70000, 0), (5, 1)))


def test_wilddash2_to_cityscapes_and_eval_classes(tmp_path):
    cats = [
        {"id": 7, "name": "road"},
        {"id": 35, "name": "van"},
        {"id": 34, "name": "pickup"},
        {"id": 4, "name": "static"},
        {"id": 38, "name": "road marking"},
    ]
    root = tmp_path / "wd_public_v2p0"
    panoptic_png(root / "panoptic/f.png", np.array([[0, 10, 11, 12, 13, 14]]))
    png(root / "images/f.jpg", np.zeros((1, 6, 3), np.uint8))
    segs = [
        {"id": i, "category_id": c} for i, c in zip(range(10, 15), (7, 35, 34, 4, 38), strict=True)
    ]
    data = {"categories": cats, "images": [{"id": 1, "file_name": "f.jpg"}]}
    data["annotations"] = [{"image_id": 1, "file_name": "f.png", "segments_info": segs}]
    (root / "panoptic.json").write_text(json.dumps(data))
    (item,) = CONVERTERS["wilddash2"].items(tmp_path, {"val": "public"})
    cs = load_classnames("cityscapes")
    road, car, truck = cs.index("road"), cs.index("car"), cs.index("truck")
    assert CONVERTERS["wilddash2"].convert(item).tolist() == [[255, road, car, truck, 255, road]]
    ev = wilddash2_eval(cats)
    assert [WD2_EVAL_CLASSES[ev[c]] for c in (7, 35, 34, 38)] == [
        "road",
        "van",
        "pickup",
        "roadmarking",
    ]
    assert ev[4] == 255 and len(WD2_EVAL_CLASSES) == 26


def make_wilddash(root: Path, labels: dict[str, list[int]]) -> None:
    """WildDash v1 extracted as MSeg does (wd_both_01.zip, then wd_val_01.zip): labelled frames
    ``wd_val_01/<frame>_100000.png`` + ``_labelIds.png``, benchmark frames without labels."""
    for frame, raw in labels.items():
        png(root / "wd_val_01" / f"{frame}_100000.png", np.zeros((1, len(raw), 3), np.uint8))
        png(root / "wd_val_01" / f"{frame}_100000_labelIds.png", np.array([raw], np.uint8))
    png(root / "wd_both_01" / "zz0000_100000.png", np.zeros((1, 2, 3), np.uint8))


def test_prepare_wilddash_v1_native_layout(tmp_path):
    src = tmp_path / "extracted"
    # label ids: unlabeled, road, sidewalk, car, bicycle, person, rider, ego vehicle, guard rail
    make_wilddash(src, {"au0000": [0, 7, 8, 26, 33, 24, 25, 1, 14], "zm0003": [23, 11, 31, 32]})
    out = tmp_path / "wilddash"
    args = ["prepare", "wilddash", "--source", str(src), "--out", str(out)]
    assert main(args) == 1  # 2 of the 70 labelled frames
    assert main([*args, "--allow-incomplete"]) == 0
    manifest = read_manifest(out / "manifest.json")
    assert (
        manifest["classes"] == load_classnames("cityscapes") and manifest["display"] == "WildDash"
    )
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"val": 2}
    pairs = {
        image.name: np.asarray(Image.open(label)).tolist()
        for image, label in read_split_list(out / "val.lst")
    }
    assert pairs == {
        "au0000_100000.png": [[255, 0, 1, 13, 18, 11, 12, 255, 255]],
        "zm0003_100000.png": [[10, 2, 16, 17]],
    }
    for image, _ in read_split_list(out / "val.lst"):
        assert image.parent.resolve() == (src / "wd_val_01").resolve() and image.is_file()


def test_wilddash_v1_unknown_label_id_stops_naming_the_file(tmp_path):
    src = tmp_path / "extracted"
    make_wilddash(src, {"au0000": [7, 8], "cn0001": [7, 34, 255]})
    with pytest.raises(
        ValueError, match=r"\[255, 34\] in 1 files:\n  .*cn0001_100000_labelIds.png"
    ):
        prepare_dataset("wilddash", src, tmp_path / "out", allow_incomplete=True)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_idd_polygons_level3(tmp_path):
    ann = {
        "imgHeight": 4,
        "imgWidth": 4,
        "objects": [
            {"label": "drivable fallback", "polygon": [[0, 0], [3, 0], [3, 3], [0, 3]]},
            {"label": "autorickshaw", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},
            {"label": "polegroup", "polygon": [[3, 3], [3, 3], [3, 3]]},
            {"label": "cargroup", "polygon": [[2, 0], [3, 0], [3, 0]]},
            {"label": "ego vehicle", "polygon": [[0, 3], [1, 3], [1, 3]]},
            {"label": "sky", "polygon": [[0, 2], [3, 2], [3, 2]], "deleted": 1},
        ],
    }
    label = tmp_path / "x_gtFine_polygons.json"
    label.write_text(json.dumps(ann))
    out = convert("idd", label)
    assert out.tolist() == [[8, 8, 9, 9], [8, 8, 1, 1], [1, 1, 1, 1], [255, 255, 1, 20]]
    ann["objects"].append({"label": "spaceship", "polygon": [[0, 0], [1, 1], [1, 0]]})
    label.write_text(json.dumps(ann))
    with pytest.raises(UnknownLabels, match="spaceship"):
        convert("idd", label)


def test_camvid_colours(tmp_path):
    colours = {
        (128, 128, 128): "Sky",
        (192, 0, 128): "Building",  # archway
        (64, 0, 64): "Building",  # tunnel
        (64, 192, 0): "Building",  # wall
        (128, 0, 192): "Road",  # driving lane marking
        (128, 128, 192): "Sidewalk",  # road shoulder
        (64, 192, 128): "Sidewalk",  # parking block
        (0, 64, 64): "SignSymbol",  # traffic light
        (0, 0, 64): "Pole",  # traffic cone
        (64, 128, 192): "Car",  # SUV / pickup truck
        (192, 128, 64): "Pedestrian",  # child
        (192, 0, 192): "Bicyclist",  # motorcycle / scooter
        (192, 192, 0): "Tree",  # misc. vegetation
        (0, 0, 0): None,  # void
    }
    rgb = np.array([list(colours)], np.uint8)
    names = load_classnames("camvid")
    expected = [255 if n is None else names.index(n) for n in colours.values()]
    assert convert("camvid", png(tmp_path / "c_L.png", rgb, "RGB")).tolist() == [expected]
    bad = png(tmp_path / "b_L.png", np.array([[[1, 2, 3]]], np.uint8), "RGB")
    with pytest.raises(UnknownLabels, match=r"rgb\(1,2,3\)"):
        convert("camvid", bad)


def test_pascal_context_mat(tmp_path):
    labels = np.array([[0, 2, 458, 1, 284, 459]], dtype=np.uint16)
    savemat(tmp_path / "2008_000002.mat", {"LabelMap": labels})
    names = load_classnames("context")
    expected = [0, names.index("aeroplane"), names.index("wood"), 0, names.index("person"), 0]
    assert convert("context", tmp_path / "2008_000002.mat").tolist() == [expected]
    savemat(tmp_path / "bad.mat", {"LabelMap": np.array([[460]], dtype=np.uint16)})
    with pytest.raises(UnknownLabels, match="460"):
        convert("context", tmp_path / "bad.mat")


def make_ade20k(root: Path, n_train: int, n_val: int) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("training", n_train), ("validation", n_val)):
        for i in range(n):
            name = f"ADE_{split}_{i:08d}"
            png(
                root / "annotations" / split / f"{name}.png", rng.integers(0, 151, (6, 8), np.uint8)
            )
            png(root / "images" / split / f"{name}.jpg", np.zeros((6, 8, 3), np.uint8))


def test_prepare_ade20k_end_to_end(tmp_path):
    src = tmp_path / "dl" / "ADEChallengeData2016"
    make_ade20k(src, 120, 3)
    out = tmp_path / "ade20k"
    assert main(["prepare", "ade20k", "--source", str(tmp_path / "dl"), "--out", str(out)]) == 1
    assert not (out / "manifest.json").exists()
    args = ["prepare", "ade20k", "--source", str(src), "--out", str(out), "--allow-incomplete"]
    assert main([*args, "--jobs", "2"]) == 0
    manifest = read_manifest(out / "manifest.json")
    assert manifest["source"] == "real" and len(manifest["classes"]) == 150
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {
        "train": 119,
        "holdout": 1,
        "val": 3,
    }
    assert manifest["official"]["complete"] is False
    pairs = read_split_list(out / "val.lst")
    for image, label in pairs:
        raw = np.asarray(Image.open(src / "annotations/validation" / label.name))
        assert image.is_file()
        assert (np.asarray(Image.open(label)) == np.where(raw == 0, 255, raw - 1)).all()
    held = {p[1].stem for p in read_split_list(out / "holdout.lst")}
    train = {p[1].stem for p in read_split_list(out / "train.lst")}
    assert held == holdout_names(sorted(held | train)) and not held & train


def test_prepare_coco_panoptic_end_to_end(tmp_path, capsys):
    ann = tmp_path / "coco" / "annotations"
    cats = [{"id": i, "name": n} for i, n in enumerate(load_classnames("coco"), start=1)]
    for split in ("train2017", "val2017"):
        panoptic_png(ann / f"panoptic_{split}/000001.png", np.array([[0, 1, 2], [2, 2, 1]]))
        png(tmp_path / "coco" / split / "000001.jpg", np.zeros((2, 3, 3), np.uint8))
        segs = [{"id": 1, "category_id": 133}, {"id": 2, "category_id": 3}]
        data = {"categories": cats, "images": [{"id": 9, "file_name": "000001.jpg"}]}
        data["annotations"] = [{"image_id": 9, "file_name": "000001.png", "segments_info": segs}]
        (ann / f"panoptic_{split}.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    args = ["prepare", "coco", "--source", str(tmp_path / "coco"), "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "expected 118287 images, found 1" in err and "expected 5000 images, found 1" in err
    assert main([*args, "--allow-incomplete"]) == 0
    ((_, label),) = read_split_list(out / "val.lst")
    assert np.asarray(Image.open(label)).tolist() == [[255, 132, 2], [2, 2, 132]]


def test_allow_incomplete_leaves_out_pairs_that_lack_a_file(tmp_path):
    src = tmp_path / "ADEChallengeData2016"
    make_ade20k(src, 2, 3)
    (src / "images/validation/ADE_validation_00000001.jpg").unlink()
    out = tmp_path / "ade20k"
    prepare_dataset("ade20k", src, out, allow_incomplete=True)
    manifest = read_manifest(out / "manifest.json")
    assert manifest["splits"]["val"]["count"] == manifest["official"]["found"]["val"] == 2
    assert manifest["official"]["complete"] is False
    names = [image.name for image, _ in read_split_list(out / "val.lst")]
    assert names == ["ADE_validation_00000000.jpg", "ADE_validation_00000002.jpg"]
