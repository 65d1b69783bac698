import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdseg.data import PAD_COLOUR, Augment, SplitDataset, normalise_images
from mdseg.io import IGNORE_ID
from mdseg.loader import RankBatches


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


def blocks(size: int, block: int) -> np.ndarray:
    """A label map of ``block``-pixel squares with distinct ids."""
    cells = np.arange((size // block) ** 2, dtype=np.uint8).reshape(size // block, size // block)
    return cells.repeat(block, 0).repeat(block, 1)


def test_augment_keeps_pixels_aligned():
    label = np.arange(16, dtype=np.uint8).reshape(4, 4)
    image = np.repeat(label[:, :, None], 3, axis=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        img, lbl = Augment(crop=4, scale=(1.0, 1.0))(image, label, rng)
        assert img.dtype == np.uint8 and img.shape == (4, 4, 3)
        assert np.array_equal(img[..., 0], lbl) and np.array_equal(img[..., 2], lbl)


def test_augment_pads_with_ignore_and_the_mean_colour():
    image, label = np.full((4, 4, 3), 9, np.uint8), np.zeros((4, 4), np.uint8)
    img, lbl = Augment(crop=8, scale=(1.0, 1.0), flip=False)(image, label, np.random.default_rng(0))
    assert lbl.shape == (8, 8) and img.shape == (8, 8, 3)
    assert (lbl[4:, :] == IGNORE_ID).all() and (lbl[:, 4:] == IGNORE_ID).all()
    assert (lbl[:4, :4] == 0).all() and (img[:4, :4] == 9).all()
    assert (img[4:, 4:] == PAD_COLOUR).all()
    # the pad colour normalises to (nearly) zero, what the float pipeline padded with
    assert normalise_images(torch.tensor(PAD_COLOUR).view(3, 1, 1)).abs().max() < 0.01


def test_augment_scale_two_repeats_each_pixel():
    label = np.arange(16, dtype=np.uint8).reshape(4, 4)
    image = np.repeat(label[:, :, None] * 8, 3, axis=2)
    img, lbl = Augment(crop=8, scale=(2.0, 2.0), flip=False)(image, label, np.random.default_rng(0))
    assert np.array_equal(lbl, label.repeat(2, 0).repeat(2, 1))
    # bilinear, half-pixel centres: output 1 samples the source at 0.25, output 3 at 1.25, and
    # output 0 at -0.25, which repeats the edge pixel
    assert img[0, 0, 0] == 0 and img[0, 1, 0] == 0.25 * 8
    row1, row2 = 0.75 * 5 * 8 + 0.25 * 6 * 8, 0.75 * 9 * 8 + 0.25 * 10 * 8
    assert img[3, 3, 0] == 0.75 * row1 + 0.25 * row2


def test_augment_flips_image_and_label_together():
    label = blocks(16, 4)
    image = np.stack([label * 3, label, label * 2], axis=2)
    kept = flipped = 0
    for seed in range(12):
        plain = Augment(8, (0.7, 1.5), flip=False)(image, label, np.random.default_rng(seed))
        img, lbl = Augment(8, (0.7, 1.5), flip=True)(image, label, np.random.default_rng(seed))
        if np.array_equal(lbl, plain[1]) and np.array_equal(img, plain[0]):
            kept += 1
        else:
            assert np.array_equal(lbl, plain[1][:, ::-1]) and np.array_equal(img, plain[0][:, ::-1])
            flipped += 1
    assert kept and flipped


def test_augment_matches_rescaling_the_whole_image_then_cropping():
    """Crop-first equals the former path (whole image rescaled by F.interpolate, then cropped)
    up to uint8 rounding and OpenCV's 1/32-pixel interpolation grid; labels follow the
    centre-aligned nearest rule exactly, so image and label stay aligned at every scale."""
    h, w, crop = 40, 56, 32
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2).astype(np.uint8)
    label = blocks(64, 8)[:h, :w]
    augment = Augment(crop, (0.5, 2.0), flip=False)
    for seed in range(10):
        img, lbl = augment(image, label, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        s = rng.uniform(0.5, 2.0)
        rows, cols = max(1, round(h * s)), max(1, round(w * s))
        top = int(rng.integers(0, max(rows, crop) - crop + 1))
        left = int(rng.integers(0, max(cols, crop) - crop + 1))
        whole = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        scaled = F.interpolate(whole, size=(rows, cols), mode="bilinear", align_corners=False)[0]
        scaled_label = F.interpolate(
            torch.from_numpy(label)[None, None].float(), size=(rows, cols), mode="nearest-exact"
        )[0, 0]
        vh, vw = min(crop, rows - top), min(crop, cols - left)
        want = scaled[:, top : top + vh, left : left + vw].permute(1, 2, 0)
        assert (torch.from_numpy(img[:vh, :vw]).float() - want).abs().max() <= 1.0, seed
        assert np.array_equal(lbl[:vh, :vw], scaled_label[top : top + vh, left : left + vw])
        assert (lbl[vh:] == IGNORE_ID).all() and (lbl[:, vw:] == IGNORE_ID).all()


def test_batches_are_balanced_and_a_function_of_step(tiny_datasets):
    splits = [SplitDataset(p, "train") for p in tiny_datasets.values()]
    stream = RankBatches(splits, 4, Augment(crop=16), "balanced", seed=3)
    images, labels, owners = stream[7]
    assert images.shape == (4, 16, 16, 3) and images.dtype == torch.uint8
    assert labels.shape == (4, 16, 16) and labels.dtype == torch.uint8
    assert owners.tolist() == [0, 0, 1, 1]
    again = RankBatches(splits, 4, Augment(crop=16), "balanced", seed=3)[7]
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert not torch.equal(images, stream[8][0])


def test_balanced_needs_divisible_batch(tiny_datasets):
    splits = [SplitDataset(p, "train") for p in tiny_datasets.values()]
    with pytest.raises(ValueError, match="divisible"):
        RankBatches(splits, 3, Augment(crop=16), "balanced")


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
