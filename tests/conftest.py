"""Shared fixtures: tiny prepared datasets written through the results contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from mdseg.io import sha256, write_json, write_split_list


def tiny_experiment(
    method: str, train: list[str], options: dict[str, Any] | None = None, **training: Any
) -> dict[str, Any]:
    """An experiment spec as ``mdseg train`` reads it: config.yaml's training settings, shortened
    to a few CPU steps on 32 px crops, then ``training`` on top."""
    codes = {"cityscapes": "C", "mapillary": "M"}
    return {
        "id": f"{method}-hrnet_w18_small_v2-{'+'.join(codes[k] for k in train)}",
        "method": method,
        "backbone": "hrnet_w18_small_v2",
        "weights": None,
        "train": train,
        "method_options": options or {},
        "evaluate": ["cityscapes"],
        "training": {**BASE_TRAINING, **TINY_TRAINING, **training},
    }


BASE_TRAINING = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())["training"]
TINY_TRAINING = {
    "iterations": 4,
    "batch_size": 2,
    "crop_size": 32,
    "scale_range": [1.0, 1.0],
    "flip": False,
    "lr": 0.001,
    "weight_decay": 0.0,
    "warmup_iterations": 0,
    "device": "cpu",
}


def make_dataset(
    root: Path, key: str, classes: list[str], n: int = 4, size: int = 32, seed: int = 0
) -> Path:
    """A dataset whose class c is a flat colour region, so tiny models can learn it."""
    rng = np.random.default_rng(seed)
    out = root / key
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    pairs = []
    for i in range(n):
        label = rng.integers(0, len(classes), size=(size // 8, size // 8)).repeat(8, 0).repeat(8, 1)
        label[0, 0] = 255
        colours = (np.arange(len(classes))[:, None] * [70, 130, 200]) % 256
        image = colours[np.where(label == 255, 0, label)].astype(np.uint8)
        Image.fromarray(image).save(out / "images" / f"{i}.png")
        Image.fromarray(label.astype(np.uint8)).save(out / "labels" / f"{i}.png")
        pairs.append((f"images/{i}.png", f"labels/{i}.png"))
    write_split_list(out / "train.lst", pairs)
    write_split_list(out / "val.lst", pairs)
    write_json(
        out / "manifest.json",
        {
            "name": key,
            "classes": classes,
            "ignore_id": 255,
            "source": "test",
            "checksums": {f"{s}.lst": sha256(out / f"{s}.lst") for s in ("train", "val")},
            "splits": {s: {"count": n, "list": f"{s}.lst"} for s in ("train", "val")},
        },
    )
    return out


@pytest.fixture
def tiny_datasets(tmp_path: Path) -> dict[str, Path]:
    return {
        "cityscapes": make_dataset(tmp_path, "cityscapes", ["road", "rider", "car"], seed=1),
        "mapillary": make_dataset(
            tmp_path, "mapillary", ["road", "bicyclist", "motorcyclist", "car"], seed=2
        ),
    }


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with MiniLM's tokenizer, saved as a local HF folder
    (the text-encoder tests: a local folder, and a hub snapshot in a fake cache)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mdseg.labels.encoders import minilm_folder

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
