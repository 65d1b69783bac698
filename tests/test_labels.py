"""Class names, label descriptions and text encoders (AutoUniSeg's label-node inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mdseg.datasets.classnames import load_aliases, load_classnames
from mdseg.datasets.info import DATASETS
from mdseg.label_space import normalise
from mdseg.labels import descriptions
from mdseg.labels.descriptions import TEMPLATE, describe, read_sentences
from mdseg.labels.encode import encode_datasets
from mdseg.labels.encoders import ENCODERS, build_encoder

COUNTS = {
    "cityscapes": 19,
    "bdd": 19,
    "kitti": 19,
    "wilddash": 19,
    "wilddash2": 19,
    "mapillary": 65,
    "idd": 26,
    "sunrgbd": 37,
    "ade20k": 150,
    "coco": 133,
    "camvid": 11,
    "scannet": 20,
    "voc": 21,
    "context": 60,
}
UNISEG_DRIVING = ("cityscapes", "bdd", "idd", "mapillary")


# ----------------------------------------------------------------------------- class names


def test_every_registered_dataset_has_class_names() -> None:
    assert set(COUNTS) == set(DATASETS)


@pytest.mark.parametrize(("key", "n"), sorted(COUNTS.items()))
def test_class_counts_and_uniqueness(key: str, n: int) -> None:
    names = load_classnames(key)
    assert len(names) == n
    assert len(set(names)) == n
    assert all(name == name.strip() and name for name in names)


def test_cityscapes_trainid_order_shared_by_bdd_kitti_wilddash() -> None:
    cs = load_classnames("cityscapes")
    assert cs[0] == "road" and cs[10] == "sky" and cs[11] == "person" and cs[18] == "bicycle"
    for key in ("bdd", "kitti", "wilddash", "wilddash2"):
        assert load_classnames(key) == cs


def test_known_id_positions() -> None:
    mapillary = load_classnames("mapillary")
    assert mapillary[0] == "bird" and mapillary[13] == "road"
    assert mapillary[49] == "traffic sign (back)" and mapillary[50] == "traffic sign"
    assert mapillary[-2:] == ["car mount", "ego vehicle"]
    ade = load_classnames("ade20k")
    assert ade[:4] == ["wall", "building", "sky", "floor"] and ade[-1] == "flag"
    coco = load_classnames("coco")
    assert coco[0] == "person" and coco[79] == "toothbrush" and coco[-1] == "rug-merged"
    assert load_classnames("voc")[0] == "background"
    context = load_classnames("context")
    assert context[:2] == ["background", "aeroplane"] and context[-1] == "wood"
    assert load_classnames("idd")[8] == "autorickshaw"
    assert load_classnames("camvid")[0] == "Sky"


def test_driving_names_are_lowercase() -> None:
    for key in (*UNISEG_DRIVING, "kitti", "wilddash", "wilddash2"):
        assert all(n == n.lower() for n in load_classnames(key)), key


def test_uniseg_union_has_70_classes() -> None:
    union = set().union(*(load_classnames(k) for k in UNISEG_DRIVING))
    assert len(union) == 70
    assert {"autorickshaw", "obs-str-bar-fallback", "traffic sign (back)", "on rails"} <= union


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(KeyError, match="cityscapes"):
        load_classnames("no-such-dataset")


def test_aliases_refer_to_real_classes() -> None:
    aliases = load_aliases()
    assert aliases["camvid"]["Pedestrian"] == ["person"]
    assert "motorcycle" in aliases["voc"]["motorbike"]
    for key, table in aliases.items():
        names = load_classnames(key)
        for name, equivalents in table.items():
            assert name in names, (key, name)
            assert equivalents and all(isinstance(e, str) and e for e in equivalents), (key, name)


def test_normalise() -> None:
    assert normalise("  Traffic Sign (Front) ") == "traffic sign (front)"


# ----------------------------------------------------------------------------- descriptions


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_descriptions_cover_every_class_with_the_template(key: str) -> None:
    names = load_classnames(key)
    texts = describe(key)
    assert len(texts) == len(names)
    display = DATASETS[key].display
    for name, text in zip(names, texts, strict=True):
        head = TEMPLATE.format(label=name, dataset=display)
        assert text.startswith(head + " ")
        sentence = text[len(head) + 1 :]
        assert len(sentence.split()) >= 5 and sentence.endswith("."), (name, sentence)


def test_template_is_the_papers() -> None:
    assert TEMPLATE == "An image of {label} from the dataset {dataset}."
    assert describe("voc")[15].startswith("An image of person from the dataset PASCAL VOC 2012. ")


def _patched_source(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(descriptions, "_descriptions_file", lambda key: path)


def test_missing_description_names_file_and_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"{n}\tA sentence about {n}." for n in load_classnames("camvid")]
    bad = tmp_path / "camvid.tsv"
    bad.write_text("\n".join(line for line in lines if not line.startswith("SignSymbol")) + "\n")
    _patched_source(monkeypatch, bad)
    with pytest.raises(ValueError, match="SignSymbol") as err:
        describe("camvid")
    assert str(bad) in str(err.value)


def test_extra_description_names_file_and_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"{n}\tA sentence about {n}." for n in load_classnames("camvid")]
    bad = tmp_path / "camvid.tsv"
    bad.write_text("\n".join([*lines, "Unicorn\tA horse with a horn."]) + "\n")
    _patched_source(monkeypatch, bad)
    with pytest.raises(ValueError, match="Unicorn") as err:
        describe("camvid")
    assert str(bad) in str(err.value)


def test_read_sentences_reorders_to_class_ids(tmp_path: Path) -> None:
    names = load_classnames("camvid")
    src = tmp_path / "camvid.tsv"
    src.write_text("".join(f"{n}\tAbout {n}.\n" for n in reversed(names)))
    assert read_sentences("camvid", src) == [f"About {n}." for n in names]


# ----------------------------------------------------------------------------- encoders


@pytest.fixture(scope="module")
def minilm():
    return build_encoder("minilm")


def test_registry_lists_encoders() -> None:
    assert {"hf", "minilm"} <= set(ENCODERS)
    with pytest.raises(KeyError, match="minilm"):
        build_encoder("word2vec")


def test_minilm_features(minilm) -> None:
    texts = describe("camvid")
    first = minilm.encode(texts, batch_size=4)
    second = minilm.encode(texts)
    assert minilm.dim == 384
    assert first.shape == (len(texts), 384) and first.dtype == torch.float32
    torch.testing.assert_close(first.norm(dim=1), torch.ones(len(texts)))
    assert torch.equal(minilm.encode(texts), second)
    torch.testing.assert_close(first, second, atol=1e-5, rtol=0)
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_is_semantically_sensible(minilm) -> None:
    person, pedestrian, sky = minilm.encode(["person", "pedestrian", "sky"])
    assert torch.dot(person, pedestrian) > torch.dot(person, sky)


def test_hf_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "llama-2-7b"
    with pytest.raises(FileNotFoundError, match="llama-2-7b"):
        build_encoder("hf", path=missing)
    with pytest.raises(ValueError, match="path"):
        build_encoder("hf")


def test_hf_encoder_mean_pools_over_the_mask(tiny_hf: Path) -> None:
    encoder = build_encoder("hf", path=tiny_hf)
    texts = ["sky", "a person riding a bicycle across the road", "road"]
    feats = encoder.encode(texts, batch_size=2)
    assert encoder.dim == 32 and feats.shape == (3, 32) and feats.dtype == torch.float32
    # padding must not leak into the mean: each text alone gives the same vector
    alone = torch.cat([encoder.encode([t]) for t in texts])
    torch.testing.assert_close(feats, alone, atol=1e-5, rtol=1e-5)
    # and the vector is the plain mean of the unpadded last hidden state
    batch = encoder.tokenizer(["road"], return_tensors="pt")
    with torch.no_grad():
        expected = encoder.model(**batch).last_hidden_state[0].mean(0)
    torch.testing.assert_close(feats[2], expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(feats.norm(dim=1), torch.ones(3))  # hf does not normalise
    torch.testing.assert_close(encoder.encode(texts), feats, atol=1e-6, rtol=0)


def test_encode_datasets_writes_features(tiny_hf: Path, tmp_path: Path) -> None:
    encoder = build_encoder("hf", path=tiny_hf)
    out = tmp_path / "labels" / "features.pt"
    encode_datasets(["camvid", "voc"], encoder, out)
    data = torch.load(out)
    assert data["encoder"] == "hf" and data["dim"] == 32 and data["source"] == str(tiny_hf)
    assert list(data["datasets"]) == ["camvid", "voc"]
    voc = data["datasets"]["voc"]
    assert voc["classes"] == load_classnames("voc")
    assert voc["descriptions"] == describe("voc")
    assert voc["features"].shape == (21, 32) and voc["features"].dtype == torch.float32
    assert [p.name for p in out.parent.iterdir()] == ["features.pt"]  # no temporary left behind
    assert not F.normalize(voc["features"], dim=1).isnan().any()
