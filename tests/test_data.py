import hashlib

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdseg.data import PAD_COLOUR, ROTATE_FILL, Augment, Draw, SplitDataset, normalise_images
from mdseg.errors import DamagedFile, SplitMismatch
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


def test_every_split_is_checked_against_the_manifest(tiny_datasets):
    """Training and statistics passes read splits here too: a list that changed is refused."""
    train = tiny_datasets["cityscapes"] / "train.lst"
    train.write_text(train.read_text().splitlines(keepends=True)[0])
    with pytest.raises(SplitMismatch, match=r"train\.lst: sha256 .*, but the manifest records"):
        SplitDataset(tiny_datasets["cityscapes"], "train")
    assert len(SplitDataset(tiny_datasets["cityscapes"], "val")) == 4


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
    with pytest.raises(DamagedFile, match=r"0\.png: ids \[7\].*rerun mdseg prepare"):
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


def golden_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    return image, rng.integers(0, 5, (37, 53)).astype(np.uint8)


@pytest.mark.parametrize("off", [{}, {"rotate_degrees": 0, "blur_probability": 0}])
def test_rotation_and_blur_off_give_the_former_crops_byte_for_byte(off):
    """SHA-256 of 40 crops made by the pipeline before rotation and blur existed (commit
    1dd6e79): with both off the draws and the arithmetic are unchanged."""
    image, label = golden_inputs()
    digest = hashlib.sha256()
    for augment in (Augment(24, (0.5, 2.0), **off), Augment(48, (0.5, 2.0), short_side=40, **off)):
        for seed in range(20):
            img, lbl = augment(image, label, np.random.default_rng(seed))
            digest.update(img.tobytes())
            digest.update(lbl.tobytes())
    assert digest.hexdigest() == "ae36f6b9a11bd03498458573641a135bcf478271633abd717861a3d9bf4d3862"


@pytest.mark.parametrize("fit", [{}, {"crop_fit": "pad"}])
def test_crop_fit_pad_gives_the_former_crops_byte_for_byte(fit):
    """SHA-256 of 40 crops with rotation and blur on, made before ``crop_fit`` existed (commit
    07d33cb): ``pad`` keeps the draws and the arithmetic; the 48 crop pads every image."""
    image, label = golden_inputs()
    digest = hashlib.sha256()
    uniseg = {"rotate_degrees": 10, "blur_probability": 0.5, **fit}
    for augment in (Augment(24, (0.5, 2.0), **uniseg), Augment(48, (0.5, 2.0), 1, 40, **uniseg)):
        for seed in range(20):
            img, lbl = augment(image, label, np.random.default_rng(seed))
            digest.update(img.tobytes())
            digest.update(lbl.tobytes())
    assert digest.hexdigest() == "e9d78d2e0513e2348bc06da0d88d330ece936213b313ca12cd687691388c57b7"


def test_crop_fit_is_checked():
    with pytest.raises(ValueError, match=r"training.crop_fit: expected one of \('pad', 'shrink'\)"):
        Augment(8, crop_fit="fill")


def test_shrink_takes_the_short_side_square_and_doubles_it():
    """A 4 x 8 image and an 8 crop at scale 1: UniSeg's crop is the 4 x 4 square at a column
    drawn from 0-4, resized to 8 x 8: each label pixel becomes a 2 x 2 block; the image is the
    bilinear ramp (crop column x samples column left + x / 2 - 0.25, the edge repeated)."""
    label = np.arange(32, dtype=np.uint8).reshape(4, 8)
    image = np.repeat((np.arange(8, dtype=np.uint8) * 8)[None, :, None], 4, 0).repeat(3, 2)
    augment = Augment(8, (1.0, 1.0), flip=False, crop_fit="shrink")
    lefts = set()
    for seed in range(30):
        draw = augment.draw(label.shape, np.random.default_rng(seed))
        img, lbl = augment(image, label, np.random.default_rng(seed))
        assert draw.top == 0 and 0 <= draw.left <= 4
        lefts.add(draw.left)
        window = label[:, draw.left : draw.left + 4]
        assert np.array_equal(lbl, window.repeat(2, 0).repeat(2, 1))
        ramp = [max(0.0, 8 * (draw.left + x / 2 - 0.25)) for x in range(8)]
        ramp[-1] = min(ramp[-1], 56.0)  # column 7 is the last, repeated beyond
        assert np.array_equal(img[:, :, 0], np.tile(np.array(ramp, np.uint8), (8, 1))), seed
    assert lefts == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("degrees", [0, 10])
def test_shrink_never_pads_and_keeps_image_and_label_aligned(degrees):
    """Rescaled short sides of 32-64 pixels against an 80 crop: ``pad`` would pad every crop,
    ``shrink`` pads none (with rotation, only the turned-out corners are black and ignore).
    The image is a ramp (red = 4 x column, green = 4 x row) and the label the 8-pixel block of
    the pixel, so a crop pixel's colour says where it sampled and the label must agree."""
    yy, xx = np.mgrid[0:48, 0:64]
    image = np.stack([xx * 4, yy * 4, np.full_like(xx, 7)], axis=2).astype(np.uint8)
    label = (xx // 8 + 8 * (yy // 8)).astype(np.uint8)
    fit = {"short_side": 64, "rotate_degrees": degrees, "blur_probability": 0}
    shrink = Augment(80, (0.5, 1.0), crop_fit="shrink", **fit)
    checked = 0
    for seed in range(20):
        img, lbl = shrink(image, label, np.random.default_rng(seed))
        padded = Augment(80, (0.5, 1.0), **fit)(image, label, np.random.default_rng(seed))[1]
        assert (padded == IGNORE_ID).sum() > 80 * 16
        assert ((lbl == IGNORE_ID) == (img == ROTATE_FILL).all(axis=2)).all()
        assert (lbl == IGNORE_ID).sum() < (80 * 80 * 0.1 if degrees else 1), seed
        sx, sy = img[..., 0] / 4, img[..., 1] / 4
        interior = (sx % 8 > 1) & (sx % 8 < 7) & (sy % 8 > 1) & (sy % 8 < 7) & (lbl != IGNORE_ID)
        want = sx // 8 + 8 * (sy // 8)
        assert np.array_equal(lbl[interior], want[interior]), seed
        checked += interior.sum()
    assert checked > 20 * 80 * 80 / 3


def test_shrink_equals_pad_when_the_image_covers_the_crop():
    """Rescaled frames of at least 26 x 37 pixels against a 24 crop: the same draws, the same
    bytes, with rotation and blur on as in UniSeg's configuration."""
    image, label = golden_inputs()
    uniseg = {"rotate_degrees": 10, "blur_probability": 0.5}
    pad = Augment(24, (0.7, 2.0), **uniseg)
    shrink = Augment(24, (0.7, 2.0), crop_fit="shrink", **uniseg)
    for seed in range(20):
        assert pad.draw(label.shape, np.random.default_rng(seed)) == shrink.draw(
            label.shape, np.random.default_rng(seed)
        )
        a, b = (
            pad(image, label, np.random.default_rng(seed)),
            shrink(image, label, np.random.default_rng(seed)),
        )
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_quarter_turn_is_rot90_counter_clockwise():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    label = np.arange(256, dtype=np.int64).reshape(16, 16) % 200
    img, lbl = Augment(16, (1.0, 1.0)).apply(image, label, Draw(1.0, 0, 0, False, angle=90.0))
    assert np.array_equal(img, np.rot90(image)) and np.array_equal(lbl, np.rot90(label))
    assert lbl.dtype == np.int64


def test_rotation_keeps_image_and_label_aligned():
    """The image is a ramp (red = 4 x column, green = 4 x row) and the label the 8-pixel block
    of the pixel, a function of its colour. Bilinear resampling keeps a ramp exact, so a crop
    pixel's colour says where in the source it sampled, and the label there must be that
    block's (away from block edges, where nearest and bilinear may round apart)."""
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([xx * 4, yy * 4, np.full_like(xx, 7)], axis=2).astype(np.uint8)
    label = (xx // 8 + 8 * (yy // 8)).astype(np.uint8)
    augment = Augment(40, (0.7, 1.5), flip=True, rotate_degrees=10)
    checked = 0
    for seed in range(20):
        draw = augment.draw(label.shape, np.random.default_rng(seed))
        assert draw.angle != 0 and abs(draw.angle) <= 10
        img, lbl = augment(image, label, np.random.default_rng(seed))
        sx, sy = img[..., 0] / 4, img[..., 1] / 4
        interior = (sx % 8 > 1) & (sx % 8 < 7) & (sy % 8 > 1) & (sy % 8 < 7) & (lbl != IGNORE_ID)
        want = sx // 8 + 8 * (sy // 8)
        assert np.array_equal(lbl[interior], want[interior]), seed
        checked += interior.sum()
    assert checked > 20 * 40 * 40 / 3


def test_rotated_out_corners_are_black_and_ignore_and_pads_stay_padding():
    image, label = np.full((32, 32, 3), 90, np.uint8), np.full((32, 32), 3, np.uint8)
    img, lbl = Augment(32, (1.0, 1.0)).apply(image, label, Draw(1.0, 0, 0, False, angle=10.0))
    for y, x in ((0, 0), (0, 31), (31, 0), (31, 31)):
        assert lbl[y, x] == IGNORE_ID and tuple(img[y, x]) == ROTATE_FILL
    assert (lbl[8:24, 8:24] == 3).all() and (img[8:24, 8:24] == 90).all()
    assert ((lbl == IGNORE_ID) == (img == 0).all(axis=2)).all()  # the same pixels left out
    # an 8x8 image in a 16 crop: the padded quarter stays the mean colour, turned in the crop
    img, lbl = Augment(16, (1.0, 1.0)).apply(
        image[:8, :8], label[:8, :8], Draw(1.0, 0, 0, False, angle=10.0)
    )
    assert lbl[12, 12] == IGNORE_ID and tuple(img[12, 12]) == PAD_COLOUR
    assert lbl[3, 4] == 3 and tuple(img[0, 15]) == ROTATE_FILL


def test_blur_touches_the_image_only_and_follows_the_draw():
    image, label = golden_inputs()
    plain = Augment(24, (0.5, 2.0))
    blurred = Augment(24, (0.5, 2.0), blur_probability=1.0, blur_sigmas=(1.5,))
    for seed in range(5):
        img, lbl = plain(image, label, np.random.default_rng(seed))
        img_b, lbl_b = blurred(image, label, np.random.default_rng(seed))
        assert np.array_equal(lbl_b, lbl)
        want = cv2.GaussianBlur(img, (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE)
        assert np.array_equal(img_b, want) and not np.array_equal(img_b, img)
    # sigma 0 (the authors' radius 0) leaves the image as it is
    none = Augment(24, (0.5, 2.0), blur_probability=1.0, blur_sigmas=(0.0,))
    assert np.array_equal(
        none(image, label, np.random.default_rng(0))[0],
        plain(image, label, np.random.default_rng(0))[0],
    )


def test_blur_probability_and_sigma_choice():
    def sigmas(augment: Augment) -> np.ndarray:
        rng = np.random.default_rng(0)
        return np.array([augment.draw((40, 40), rng).sigma for _ in range(4000)])

    drawn = sigmas(Augment(16, blur_probability=0.3, blur_sigmas=(2.0,)))
    assert set(drawn) == {0.0, 2.0} and abs((drawn > 0).mean() - 0.3) < 0.03  # 4 s.d.
    drawn = sigmas(Augment(16, blur_probability=1.0))  # the authors' radii 0-4, uniform
    counts = np.array([(drawn == s).sum() for s in (0, 1, 2, 3, 4)]) / len(drawn)
    assert np.abs(counts - 0.2).max() < 0.03


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
