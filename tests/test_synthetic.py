"""The embedded synthetic benchmark: determinism, label validity, the papers' conflict types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.info import DATASETS
from mdseg.io import IGNORE_ID, read_json, read_manifest, read_split_list, sha256
from mdseg.synthetic import SPECS, WORLD, generate_dataset, relation_truth
from mdseg.synthetic import generate as generate_module
from mdseg.synthetic.domain import Domain
from mdseg.synthetic.generate import image_rng
from mdseg.synthetic.render import render_scene
from mdseg.synthetic.specs import SyntheticSpec

COUNTS = {"train": 3, "val": 2}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic") / "mapillary"
    manifest = generate_dataset("mapillary", out, seed=7, image_size=48, counts=COUNTS)
    return out, manifest


def test_world_and_specs_cover_every_dataset() -> None:
    assert 45 <= len(WORLD) <= 55
    assert len({f.name for f in WORLD}) == len(WORLD)
    assert set(SPECS) == set(DATASETS)
    for key, spec in SPECS.items():
        assert spec.key == key
        assert spec.scene == DATASETS[key].domain


def test_same_seed_is_byte_identical_and_another_seed_differs(tmp_path: Path, generated) -> None:
    first, _ = generated
    again = tmp_path / "again"
    generate_dataset("mapillary", again, seed=7, image_size=48, counts=COUNTS)
    assert _files(first) == _files(again)
    other = tmp_path / "other"
    generate_dataset("mapillary", other, seed=8, image_size=48, counts=COUNTS)
    assert (first / "images/train/00000.png").read_bytes() != (
        other / "images/train/00000.png"
    ).read_bytes()
    assert read_json(other / "manifest.json")["seed"] == 8


def test_images_do_not_depend_on_python_hash_seed() -> None:
    code = (
        "import hashlib; from mdseg.synthetic import SPECS; "
        "from mdseg.synthetic.generate import image_rng; "
        "from mdseg.synthetic.render import render_scene; "
        "img, fine = render_scene(SPECS['idd'], image_rng(3, 'idd', 'val', 5), 40); "
        "print(hashlib.sha256(img.tobytes() + fine.tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    }
    assert len(digests) == 1


def test_manifest_lists_and_truth(generated) -> None:
    out, manifest = generated
    assert read_manifest(out / "manifest.json") == manifest
    assert manifest["name"] == "mapillary"
    assert manifest["display"] == DATASETS["mapillary"].display
    assert manifest["source"] == "synthetic"
    assert manifest["classes"] == list(SPECS["mapillary"].labels)
    assert manifest["ignore_id"] == IGNORE_ID
    assert manifest["splits"] == {s: {"count": n, "list": f"{s}.lst"} for s, n in COUNTS.items()}
    assert manifest["checksums"] == {f"{s}.lst": sha256(out / f"{s}.lst") for s in COUNTS}
    assert manifest["domain"] == "driving"
    assert manifest["image_size"] == [48, 48]
    assert manifest["seed"] == 7
    assert isinstance(manifest["generator_version"], int)
    truth = read_json(out / "truth.json")
    assert truth["labels"]["road"] == ["road"]
    assert truth["unlabelled"] == []
    for split, n in COUNTS.items():
        pairs = read_split_list(out / f"{split}.lst")
        assert len(pairs) == n
        for image_path, label_path in pairs:
            image, label = Image.open(image_path), Image.open(label_path)
            assert (image.mode, image.size) == ("RGB", (48, 48))
            assert (label.mode, label.size) == ("L", (48, 48))
            ids = np.unique(np.asarray(label))
            assert set(ids.tolist()) <= set(range(len(manifest["classes"]))) | {IGNORE_ID}


def test_every_label_appears_in_a_modest_sample() -> None:
    for key, spec in SPECS.items():
        lut = spec.label_lut()
        seen = np.zeros(256, bool)
        for i in range(30):
            image, fine = render_scene(spec, image_rng(0, key, "val", i), 64)
            assert image.shape == (64, 64, 3) and image.dtype == np.uint8
            assert fine.shape == (64, 64)
            assert set(np.unique(fine).tolist()) <= {
                WORLD.index(f) for f in WORLD if f.name in spec.frequency
            }
            seen[lut[fine]] = True
        missing = [name for i, name in enumerate(spec.classes) if not seen[i]]
        assert not missing, f"{key}: labels never rendered in 30 images: {missing}"
        if spec.unlabelled():
            assert seen[IGNORE_ID], f"{key}: unlabelled fine classes never rendered"


def test_label_names_are_real_and_in_real_id_order() -> None:
    for key, spec in SPECS.items():
        real = load_classnames(key)
        unknown = [name for name in spec.labels if name not in real]
        assert not unknown, f"{key}: not real class names: {unknown}"
        ids = [real.index(name) for name in spec.labels]
        assert ids == sorted(ids), f"{key}: labels not in the real dataset's id order"


def _fines(key: str, label: str) -> set[str]:
    return set(SPECS[key].labels[label])


def test_conflict_types_of_the_papers_are_present() -> None:
    # superset / subset
    rider = _fines("cityscapes", "rider")
    assert rider >= _fines("mapillary", "bicyclist") | _fines("mapillary", "motorcyclist")
    assert _fines("camvid", "Bicyclist") < rider
    # same name, different granularity
    assert "lane_marking" in _fines("cityscapes", "road")
    assert "lane_marking" not in _fines("mapillary", "road")
    assert _fines("mapillary", "lane marking - general") < _fines("cityscapes", "road")
    assert _fines("cityscapes", "vegetation") == _fines("ade20k", "tree") | {"bush"}
    assert _fines("ade20k", "plant") & _fines("cityscapes", "vegetation")
    assert _fines("cityscapes", "terrain") == _fines("ade20k", "grass") | _fines("ade20k", "earth")
    assert _fines("cityscapes", "pole") == (
        _fines("mapillary", "pole")
        | _fines("mapillary", "utility pole")
        | _fines("mapillary", "street light")
    )
    # merged classes
    assert _fines("idd", "curb") == _fines("mapillary", "curb") | _fines("mapillary", "barrier")
    # one fine class under different names
    tv = _fines("sunrgbd", "television")
    assert tv == _fines("coco", "tv") == _fines("ade20k", "television receiver")
    assert tv == _fines("voc", "tvmonitor")
    assert _fines("coco", "couch") == _fines("sunrgbd", "sofa") == _fines("ade20k", "sofa")
    assert _fines("voc", "motorbike") == _fines("coco", "motorcycle")
    # classes only one dataset has
    assert [k for k, s in SPECS.items() if "autorickshaw" in s.frequency] == ["idd"]
    sign_back_only = [k for k, s in SPECS.items() for f in s.labels.values() if f == ("sign_back",)]
    assert sign_back_only == ["mapillary"]
    # broad catch-all labels
    assert SPECS["voc"].classes[0] == SPECS["context"].classes[0] == "background"
    assert {"sky", "building", "room_wall", "bed"} <= _fines("voc", "background")
    assert _fines("context", "background") == {"picture", "pillow"}
    assert not SPECS["voc"].unlabelled() and not SPECS["context"].unlabelled()
    # fine classes a dataset sees but does not label
    assert "sign_back" in SPECS["cityscapes"].unlabelled()
    assert "bicycle" in SPECS["camvid"].unlabelled()
    assert "ceiling" in SPECS["scannet"].unlabelled()


def test_relation_truth_pairs_labels_sharing_fine_classes() -> None:
    pairs = relation_truth("cityscapes", "mapillary")
    assert {
        ("rider", "bicyclist"),
        ("rider", "motorcyclist"),
        ("road", "road"),
        ("road", "lane marking - general"),
        ("sidewalk", "curb"),
    } <= pairs
    assert ("road", "sidewalk") not in pairs
    assert ("television", "tv") in relation_truth("sunrgbd", "coco")
    assert {(b, a) for a, b in pairs} == relation_truth("mapillary", "cityscapes")


def test_spec_validation_names_the_problem() -> None:
    domain = Domain()
    with pytest.raises(ValueError, match="absent from scenes"):
        SyntheticSpec("x", "driving", {"road": ("road", "crosswalk")}, domain, {"road": 1.0})
    with pytest.raises(ValueError, match="in both"):
        SyntheticSpec("x", "driving", {"a": ("road",), "b": ("road",)}, domain, {"road": 1.0})
    with pytest.raises(ValueError, match="cannot draw"):
        SyntheticSpec("x", "indoor", {"road": ("road",)}, domain, {"road": 1.0})
    with pytest.raises(ValueError, match="drawn with"):
        SyntheticSpec("x", "driving", {"rider": ("bicyclist",)}, domain, {"bicyclist": 1.0})


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown dataset"):
        generate_dataset("nope", tmp_path, seed=0, image_size=64, counts={"val": 1})
    with pytest.raises(ValueError, match="count of split"):
        generate_dataset("voc", tmp_path, seed=0, image_size=64, counts={"val": 0})
    with pytest.raises(ValueError, match="image_size"):
        generate_dataset("voc", tmp_path, seed=0, image_size=8, counts={"val": 1})


def test_failed_generation_leaves_no_manifest(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "voc"
    generate_dataset("voc", out, seed=0, image_size=40, counts={"val": 2})
    assert (out / "manifest.json").is_file()
    calls = []

    def failing(spec, rng, size):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("renderer died")
        return render_scene(spec, rng, size)

    monkeypatch.setattr(generate_module, "render_scene", failing)
    with pytest.raises(RuntimeError, match="renderer died"):
        generate_dataset("voc", out, seed=1, image_size=40, counts={"val": 3})
    assert not (out / "manifest.json").exists()


def test_wilddash_v1_twin_is_cityscapes_in_the_hardest_driving_domain():
    """UniSeg Tables 1-2's WildDash (v1): the 19 Cityscapes classes, defined as Cityscapes
    defines them, in dashcam frames chosen for their hazards."""
    wd, cs = SPECS["wilddash"], SPECS["cityscapes"]
    assert wd.labels == cs.labels == SPECS["wilddash2"].labels
    assert relation_truth("wilddash", "cityscapes") == {(c, c) for c in cs.labels}
    others = [s.domain for k, s in SPECS.items() if s.scene == "driving" and k != "wilddash"]
    assert all(wd.domain.noise > d.noise and wd.domain.blur > d.blur for d in others)
    assert wd.domain != SPECS["wilddash2"].domain
