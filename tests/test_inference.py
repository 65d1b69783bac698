"""Full-resolution passes window by window: sliding-window scores, training-scale tiles, ranks.

Tolerances: the windowed scores are compared with a direct computation that holds the whole
image's summed scores (the same float32 operations in another order: 1e-5); a pointwise model
(a 1x1 convolution, no spatial context) gives the same scores whatever the window, so its
windowed results equal the whole-image ones up to the rounding of averaging equal values (1e-6),
and its statistics, being sums of the same per-pixel values, to 1e-9 (float64 sums).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import make_dataset, tiny_experiment
from PIL import Image
from torch import nn

from mdseg.build import build_model
from mdseg.data import SplitDataset, normalise_images
from mdseg.distributed import Context
from mdseg.evaluate import evaluate_many
from mdseg.inference import (
    Inference,
    RowResampling,
    all_reduce_sum,
    coverage,
    label_scores,
    nearest_resized,
    predictions,
    rank_share,
    scaled_size,
    tiles,
    training_scale,
    window_starts,
)
from mdseg.methods import METHODS
from mdseg.methods.cr_bce import similarity_sums
from mdseg.train import train

BIN = Path(sys.executable).parent


def test_window_starts_follow_mseg_stride_two_thirds():
    # 713 windows, step ceil(713 * 2/3) = 476, the last window moved to end at the border
    assert window_starts(1080, 713) == ([0, 367], 713)
    assert window_starts(1440, 713) == ([0, 476, 727], 713)
    assert window_starts(2000, 713) == ([0, 476, 952, 1287], 713)
    assert window_starts(500, 713) == ([0], 500)  # shorter than the window: one, no padding
    assert window_starts(500, None) == ([0], 500)
    assert window_starts(10, 4, 1.0) == ([0, 4, 6], 4)


def test_coverage_counts_windows_per_position():
    count = coverage(10, [0, 4, 6], 4, torch.device("cpu"))
    assert count.tolist() == [1, 1, 1, 1, 1, 1, 2, 2, 1, 1]


def test_inference_options_are_checked():
    with pytest.raises(ValueError, match=r"evaluation\.stride"):
        Inference(window=8, stride=1.5)
    with pytest.raises(ValueError, match="resize_height or resize_short_side"):
        Inference(resize_height=10, resize_short_side=10)


@pytest.mark.parametrize("rows_in,rows_out", [(50, 100), (50, 37), (50, 150), (7, 3), (3, 13)])
def test_row_resampling_is_interpolate_along_one_axis(rows_in, rows_out):
    column = torch.randn(1, 1, rows_in, 1)
    expected = F.interpolate(column, size=(rows_out, 1), mode="bilinear")[0, 0, :, 0]
    r = RowResampling.of(rows_in, rows_out)
    values = column[0, 0, :, 0]
    got = values[r.lower] * (1 - torch.from_numpy(r.weight)) + values[r.upper] * torch.from_numpy(
        r.weight
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)  # float32 weights, rounded


def _conv_score(channels: int = 5, kernel: int = 3):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, channels, kernel, padding=kernel // 2)
    return lambda x: conv(x)


def _full_reference(score, images, inference, out_size):
    """Summed window scores over the whole image, averaged, then F.interpolate (the direct way)."""
    x = normalise_images(images)
    h, w = x.shape[-2:]
    rows, wh = window_starts(h, inference.window, inference.stride)
    cols, ww = window_starts(w, inference.window, inference.stride)
    total, count = 0.0, torch.zeros(h, w)
    for r in rows:
        for c in cols:
            tile = x[..., r : r + wh, c : c + ww]
            s = score(tile)
            if inference.flip:
                s = s + score(tile.flip(-1)).flip(-1)
            pad = (c, w - c - ww, r, h - r - wh)
            total = total + F.pad(s, pad)
            count[r : r + wh, c : c + ww] += 2 if inference.flip else 1
    return F.interpolate(total / count, size=out_size, mode="bilinear")


@pytest.mark.parametrize("out_size", [(50, 70), (100, 140), (37, 53), (13, 200)])
@pytest.mark.parametrize(
    "inference",
    [Inference(), Inference(window=20), Inference(window=16, stride=0.5), Inference(30, flip=True)],
)
@torch.no_grad()
def test_band_by_band_scores_equal_the_whole_image_accumulation(out_size, inference):
    score = _conv_score()
    images = torch.randint(0, 256, (2, 3, 50, 70), dtype=torch.uint8)
    parts = list(label_scores(score, images, out_size, inference, chunk_elements=700))
    got = torch.full((2, 5, *out_size), float("nan"))
    for (rows, cols), scores in parts:
        assert got[..., rows, cols].isnan().all()  # every label pixel once
        got[..., rows, cols] = scores
    assert all(rows == slice(None) for (rows, _), _ in parts)  # a wide image: column chunks
    expected = _full_reference(score, images, inference, out_size)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@torch.no_grad()
def test_rows_come_out_before_the_last_window_is_scored():
    calls = []
    conv = _conv_score()

    def score(x):
        calls.append(x.shape)
        return conv(x)

    images = torch.randint(0, 256, (1, 3, 60, 40), dtype=torch.uint8)
    chunks = label_scores(score, images, (60, 40), Inference(window=20, stride=0.5))
    (rows, cols), first = next(chunks)
    assert (rows, cols) == (slice(0, 10), slice(None))
    assert len(calls) == 3  # one row of 3 windows: rows 0-9 are finished
    assert first.shape == (1, 5, 10, 40)
    assert sum(1 for _ in chunks) == 4 and len(calls) == 5 * 3


@torch.no_grad()
def test_an_image_inside_one_window_gets_the_whole_image_scores():
    method = METHODS["multi_ce"]({"cityscapes": ["road", "rider", "car"]})
    model = build_model(method, "hrnet_w18_small_v2").eval()
    images = torch.randint(0, 256, (1, 3, 40, 56), dtype=torch.uint8)

    def score(x):
        return method.scores(model, x)

    def scored(inference):
        return predictions(score, images, (40, 56), inference, lambda s: s)

    whole = scored(Inference())
    assert torch.equal(whole, score(normalise_images(images)))
    assert torch.equal(scored(Inference(64)), whole)
    assert not torch.equal(scored(Inference(24)), whole)  # smaller windows see less context


@torch.no_grad()
def test_a_pointwise_model_scores_the_same_with_any_window_and_flip():
    score = _conv_score(kernel=1)
    images = torch.randint(0, 256, (2, 3, 45, 61), dtype=torch.uint8)
    whole = predictions(score, images, (45, 61), Inference(), lambda s: s)
    for inference in (Inference(16), Inference(16, stride=0.3, flip=True), Inference(flip=True)):
        got = predictions(score, images, (45, 61), inference, lambda s: s)
        torch.testing.assert_close(got, whole, atol=1e-6, rtol=0)


@torch.no_grad()
def test_flip_averages_the_mirrored_scores():
    score = _conv_score()
    images = torch.randint(0, 256, (1, 3, 20, 30), dtype=torch.uint8)
    x = normalise_images(images)
    expected = (score(x) + score(x.flip(-1)).flip(-1)) / 2
    got = predictions(score, images, (20, 30), Inference(flip=True), lambda s: s)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@torch.no_grad()
def test_resizing_before_scoring():
    score = _conv_score(kernel=1)
    images = torch.randint(0, 256, (1, 3, 30, 60), dtype=torch.uint8)
    small = F.interpolate(normalise_images(images), size=(15, 30), mode="bilinear")
    expected = F.interpolate(score(small), size=(30, 60), mode="bilinear")
    for inference in (Inference(resize_height=15), Inference(resize_short_side=15)):
        got = predictions(score, images, (30, 60), inference, lambda s: s)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_scaled_size_and_nearest_label_resize_as_pil():
    # UniSeg's ScaleMin(1080): 1920x1080 stays, CamVid's 960x720 becomes 1440x1080
    assert scaled_size(1080, 1920, Inference(resize_short_side=1080)) == (1080, 1920)
    assert scaled_size(720, 960, Inference(resize_short_side=1080)) == (1080, 1440)
    assert scaled_size(720, 960, Inference(resize_height=540)) == (540, 720)
    assert scaled_size(720, 960, Inference()) == (720, 960)
    labels = torch.arange(12).view(1, 3, 4)
    # upsampling 3x4 -> 6x8 repeats each pixel; downsampling 4 -> 2 columns keeps 1 and 3
    # (PIL's centres: floor((i + 0.5) * 2) = 2i + 1)
    assert torch.equal(
        nearest_resized(labels, (6, 8)), labels.repeat_interleave(2, 1).repeat_interleave(2, 2)
    )
    assert nearest_resized(labels, (3, 2)).tolist() == [[[1, 3], [5, 7], [9, 11]]]
    rng = np.random.default_rng(0)
    for (h, w), (oh, ow) in (((7, 5), (11, 13)), ((375, 1242), (1080, 3577)), ((20, 30), (9, 4))):
        raw = rng.integers(0, 19, (h, w)).astype(np.uint8)
        pil = np.asarray(Image.fromarray(raw).resize((ow, oh), Image.NEAREST))
        assert (nearest_resized(torch.from_numpy(raw), (oh, ow)).numpy() == pil).all()


def test_training_scale_and_tiles():
    images, labels = torch.zeros(1, 3, 40, 60), torch.arange(2400).view(1, 40, 60)
    x, y = training_scale(images, labels, 20)
    assert x.shape == (1, 3, 20, 30) and y.shape == (1, 20, 30)
    assert y[0, 1, 1] == labels[0, 2, 2]  # nearest neighbour
    assert training_scale(images, labels, None)[1] is labels
    cover = torch.zeros(40, 60, dtype=torch.long)
    for rs, cs in tiles(40, 60, 16):
        cover[rs, cs] += 1
    assert (cover == 1).all()  # every pixel in exactly one tile
    assert list(tiles(40, 60, None)) == [(slice(0, 40), slice(0, 60))]


class Pointwise(nn.Module):
    """A model without spatial context: per-pixel 1x1 convolution, any head name."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, channels, 1)

    def forward(self, images: torch.Tensor, head: str) -> torch.Tensor:
        return self.conv(images)


def test_windowed_statistics_equal_whole_image_statistics(tiny_datasets):
    data = SplitDataset(tiny_datasets["mapillary"], "train")
    device, everything = torch.device("cpu"), list(range(len(data)))
    with torch.no_grad():
        # a real network: images inside one tile give the whole-image statistic exactly
        method = METHODS["cr_bce"]({"mapillary": data.classes})
        model = build_model(method, "hrnet_w18_small_v2").eval()
        whole = similarity_sums(model, data, everything, 4, device)
        fits = similarity_sums(model, data, everything, 4, device, window=32)
        assert all(torch.equal(a, b) for a, b in zip(whole, fits, strict=True))
        # a pointwise model: 8-px tiles count every pixel once, with its own label
        point = Pointwise(4)
        whole = similarity_sums(point, data, everything, 4, device)
        tiled = similarity_sums(point, data, everything, 4, device, window=8)
        assert whole[1].sum() == 4 * (32 * 32 - 1)
        for a, b in zip(whole, tiled, strict=True):
            torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
        # two ranks, every other image each, add up to one process
        shares = [
            similarity_sums(point, data, rank_share(everything, Context(r, 2)), 4, device, 8)
            for r in range(2)
        ]
        assert rank_share(everything, Context(1, 2)) == [1, 3]
        for k in range(2):
            torch.testing.assert_close(shares[0][k] + shares[1][k], tiled[k], atol=1e-9, rtol=0)


def _autouniseg(classes: dict[str, list[str]]):
    text = {k: torch.randn(len(v), 8) for k, v in classes.items()}
    return METHODS["autouniseg"](classes, text_features=text, hidden_dim=8, embed_dim=8)


def test_cross_head_counts_by_tiles_and_ranks(tiny_datasets):
    data = {k: SplitDataset(d, "train") for k, d in tiny_datasets.items()}
    method = _autouniseg({k: d.classes for k, d in data.items()})
    point, device = Pointwise(7), torch.device("cpu")
    city = data["cityscapes"]
    with torch.no_grad():
        whole = method.cross_head_counts(point, city, 0, [0, 1, 2, 3], device)
        tiled = method.cross_head_counts(point, city, 0, [0, 1, 2, 3], device, window=8)
        halves = [
            method.cross_head_counts(point, city, 0, part, device, 8) for part in ([0, 2], [1, 3])
        ]
    assert torch.equal(whole, tiled) and torch.equal(halves[0] + halves[1], whole)
    # every labelled pixel once per head, the owner's own head included (the UniDet merge
    # compares each label's cross-head share with its own head's accuracy)
    assert whole[:, :3].sum() == whole[:, 3:].sum() == 4 * (32 * 32 - 1)


def _all_reduce_worker(rank: int, init: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    t = torch.tensor([float(rank + 1), 10.0 * rank], dtype=torch.float64)
    all_reduce_sum([t], Context(rank, 2))
    torch.save(t, f"{results}/{rank}.pt")
    dist.destroy_process_group()


def test_all_reduce_sum_adds_the_ranks_partial_sums(tmp_path):
    mp.start_processes(
        _all_reduce_worker,
        args=(f"file://{tmp_path}/store", str(tmp_path)),
        nprocs=2,
        start_method="fork",
    )
    for rank in range(2):
        assert torch.load(tmp_path / f"{rank}.pt").tolist() == [3.0, 10.0]
    single = torch.tensor([1.0])
    all_reduce_sum([single], Context())
    assert single.item() == 1.0


def test_one_dataset_per_evaluation_gives_the_same_json(tiny_datasets, tmp_path):
    experiment = tiny_experiment("multi_ce", ["cityscapes", "mapillary"], iterations=2)
    model = train(experiment, tiny_datasets, tmp_path / "model")
    root = next(iter(tiny_datasets.values())).parent
    make_dataset(root, "kitti", ["road", "car", "sky"], size=48, seed=5)
    keys = ["cityscapes", "kitti"]

    def run(out: str, keys: list[str], inference: Inference | None = None) -> None:
        list(evaluate_many(model, keys, root, tmp_path / out, inference=inference, device="cpu"))

    run("together", keys)
    run("apart", ["cityscapes"])
    cli = [str(BIN / "mdseg"), "evaluate", "--model", str(model), "--datasets", "kitti"]
    where = ["--datasets-dir", str(root), "--device", "cpu", "--out", str(tmp_path / "apart")]
    subprocess.run([*cli, *where], check=True, capture_output=True)
    run("fits", keys, Inference(window=64))
    run("windows", keys, Inference(window=16, flip=True))
    for key in keys:
        together = json.loads((tmp_path / "together" / f"{key}.json").read_text())
        assert json.loads((tmp_path / "apart" / f"{key}.json").read_text()) == together
        assert json.loads((tmp_path / "fits" / f"{key}.json").read_text()) == together
        windows = json.loads((tmp_path / "windows" / f"{key}.json").read_text())
        assert windows["gt_pixels"] == together["gt_pixels"]
        assert np.isfinite(windows["miou_all_classes"])
