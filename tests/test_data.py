import numpy as np
import pytest
import torch

from mdseg.data import Augment, MultiDatasetBatches, SplitDataset, normalise_images
from mdseg.io import IGNORE_ID


def test_split_dataset_reads_contract(tiny_datasets):
    data = SplitDataset(tiny_datasets["cityscapes"], "train")
    image, label = data[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert label.shape == (32, 32) and label.dtype == torch.int64
    assert set(label.unique().tolist()) <= {0, 1, 2, IGNORE_ID}
    with pytest.raises(KeyError, match="no split 'test'"):
        SplitDataset(tiny_datasets["cityscapes"], "test")


def test_normalise_uses_imagenet_statistics():
    image = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    out = normalise_images(image)
    expected = (torch.tensor([0, 128, 255]) / 255.0 - torch.tensor([0.485, 0.456, 0.406])) / (
        torch.tensor([0.229, 0.224, 0.225])
    )
    assert out.dtype == torch.float32 and out.shape == (2, 3, 2, 2)
    assert torch.allclose(out[1, :, 1, 1], expected)
    assert normalise_images(image, torch.bfloat16).dtype == torch.bfloat16


def test_out_of_range_label_names_the_file(tiny_datasets):
    from PIL import Image

    path = tiny_datasets["cityscapes"] / "labels" / "0.png"
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"0\.png: ids \[7\]"):
        SplitDataset(tiny_datasets["cityscapes"], "train")[0]


def test_augment_keeps_pixels_aligned():
    image = torch.arange(16.0).view(1, 4, 4).repeat(3, 1, 1)
    label = torch.arange(16).view(4, 4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        img, lbl = Augment(crop=4, scale=(1.0, 1.0))(image, label, rng)
        assert torch.equal(img[0].long(), lbl)


def test_augment_pads_with_ignore():
    image, label = torch.zeros(3, 4, 4), torch.zeros(4, 4, dtype=torch.long)
    _, lbl = Augment(crop=8, scale=(1.0, 1.0), flip=False)(image, label, np.random.default_rng(0))
    assert lbl.shape == (8, 8)
    assert (lbl[4:, :] == IGNORE_ID).all() and (lbl[:4, :4] == 0).all()


def test_batches_are_balanced_and_a_function_of_step(tiny_datasets):
    splits = [SplitDataset(p, "train") for p in tiny_datasets.values()]
    stream = MultiDatasetBatches(splits, 4, Augment(crop=16), "balanced", seed=3)
    images, labels, owners = stream.batch(7)
    assert images.shape == (4, 3, 16, 16) and labels.shape == (4, 16, 16)
    assert owners.tolist() == [0, 0, 1, 1]
    again = MultiDatasetBatches(splits, 4, Augment(crop=16), "balanced", seed=3).batch(7)
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert not torch.equal(images, stream.batch(8)[0])


def test_balanced_needs_divisible_batch(tiny_datasets):
    splits = [SplitDataset(p, "train") for p in tiny_datasets.values()]
    with pytest.raises(ValueError, match="divisible"):
        MultiDatasetBatches(splits, 3, Augment(crop=16), "balanced")


def test_evaluation_batches_split_on_size_change(tiny_datasets, tmp_path):
    from conftest import make_dataset

    from mdseg.data import same_size_batches

    data = SplitDataset(tiny_datasets["cityscapes"], "val")
    sizes = [len(labels) for _, labels in same_size_batches(data, 3)]
    assert sizes == [3, 1]
    picked = [labels for _, labels in same_size_batches(data, 8, [3, 0])]
    assert len(picked) == 1 and torch.equal(picked[0][0], data[3][1])
    mixed = SplitDataset(make_dataset(tmp_path / "m", "mixed", ["a", "b"], n=2, size=16), "val")
    mixed.pairs = [data.pairs[0], mixed.pairs[0], data.pairs[1]]
    mixed.classes = data.classes
    shapes = [tuple(labels.shape) for _, labels in same_size_batches(mixed, 8)]
    assert shapes == [(1, 32, 32), (1, 16, 16), (1, 32, 32)]
