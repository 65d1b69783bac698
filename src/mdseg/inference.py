"""Full-resolution passes that never hold a whole image's ``C x H x W`` scores.

Evaluation (:func:`label_scores`) scores an image by sliding windows, as MSeg's
``mseg-semantic`` inference and UniSeg's released evaluator (``numpee/UniSeg``,
``evaluators/paper_evaluator.py``) do: square windows (their 713), starts ``k * ceil(window *
stride)`` with the last window moved to end at the border (MSeg's stride 2/3), and each pixel's
scores averaged over the windows that cover it. UniSeg's evaluator spreads the fewest windows
evenly instead of using a fixed stride and sums rather than averages (the same argmax); for
1080-row images its rows are MSeg's. MSeg pads an image smaller than the window to the window with
the mean colour; here the window shrinks to the image (the network pads to its stride itself), so
an image that fits in one window gets exactly the whole-image scores.

The windows are scored band by band along the image's longer side. Rows of a band are finished
as soon as no later window reaches them, so only ``C x (window + 1) x shorter side`` summed
scores are held at a time; finished rows are resampled to the label resolution (bilinear, as
``F.interpolate`` with ``align_corners=False``) and handed to the caller in chunks, which it
reduces (argmax, confusion) right away. One 4032x3024 image with 65 classes and 713 windows:
a 0.56 GB band where the whole image's scores would take 3.2 GB
(``scripts/eval_memory.py``).

Statistics passes (:func:`training_scale_tiles`) see the image as training does at scale 1.0
(short side resized to ``training.resize_short_side`` if set, else native) and cut it into
non-overlapping tiles of the training crop size, so sums over pixels count every pixel once; an
image that fits in one tile is seen whole. :func:`all_reduce_sum` adds the ranks' partial sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from mdseg.data import SplitDataset, normalise_images, same_size_batches
from mdseg.distributed import Context

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
CHUNK_ELEMENTS = 1 << 22  # scores handed out per chunk (16 MB of float32)
BATCH_PIXELS = 1 << 20  # images (or tiles) scored together: at most this many pixels


@dataclass(frozen=True)
class Inference:
    """How evaluation scores an image (config ``evaluation``).

    ``window`` None scores the whole image in one pass; ``stride`` is a fraction of the window
    (MSeg: 2/3); ``flip`` adds the horizontally mirrored image's scores; ``resize_height``
    rescales the image to that many rows first (the UniSeg paper's wording, §4.1: 1080),
    ``resize_short_side`` its shorter side to that many pixels (UniSeg's code: 1080,
    ``ScaleMin``; AutoUniSeg's code: 512, detectron2's ``MIN_SIZE_TEST``).
    """

    window: int | None = None
    stride: float = 2 / 3
    flip: bool = False
    resize_height: int | None = None
    resize_short_side: int | None = None

    def __post_init__(self) -> None:
        if self.resize_height and self.resize_short_side:
            raise ValueError("evaluation: set resize_height or resize_short_side, not both")
        if self.window is not None and self.window < 1:
            raise ValueError(f"evaluation.window must be >= 1 or null, got {self.window}")
        if not 0 < self.stride <= 1:
            raise ValueError(f"evaluation.stride must lie in (0, 1], got {self.stride}")


def window_starts(length: int, window: int | None, stride: float = 2 / 3) -> tuple[list[int], int]:
    """Start offsets along one axis and the window's extent there (the window, or ``length``
    where the axis is no longer than it)."""
    if window is None or length <= window:
        return [0], length
    step = math.ceil(window * stride)
    count = math.ceil((length - window) / step) + 1
    return [min(k * step, length - window) for k in range(count)], window


def coverage(length: int, starts: list[int], extent: int, device: torch.device) -> torch.Tensor:
    """How many windows cover each position of an axis (float, for averaging)."""
    count = torch.zeros(length + 1, device=device)
    for s in starts:
        count[s] += 1
        count[s + extent] -= 1
    return count.cumsum(0)[:length]


@dataclass(frozen=True)
class RowResampling:
    """Source rows and weights of bilinear resampling ``rows_in`` -> ``rows_out`` along one axis,
    with ``F.interpolate``'s arithmetic (``align_corners=False``, float32)."""

    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray  # of ``upper``

    @classmethod
    def of(cls, rows_in: int, rows_out: int) -> RowResampling:
        dst = np.arange(rows_out, dtype=np.float32)
        scale = np.float32(rows_in) / np.float32(rows_out)
        src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
        lower = np.minimum(src.astype(np.int64), rows_in - 1)
        weight = np.clip(src - lower, 0, 1).astype(np.float32)
        upper = np.where((lower < rows_in - 1) & (weight > 0), lower + 1, lower)
        return cls(lower, upper, weight)


Chunk = tuple[tuple[slice, slice], torch.Tensor]


def label_scores(
    score: ScoreFn,
    images: torch.Tensor,
    out_size: tuple[int, int],
    inference: Inference,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Iterator[Chunk]:
    """Scores of ``images`` (uint8 ``[B, 3, H, W]`` on the device) averaged over the windows,
    at the label resolution ``out_size``, as ``((label rows, label columns), scores)`` chunks
    covering the label once. ``score`` maps normalised images to ``[B, C, h, w]`` scores.

    The band sweeps along the image's longer side, so it spans the shorter one; windows are
    normalised one by one unless the image is resized first.
    """
    x = images
    if inference.resize_height or inference.resize_short_side:
        x = _rescaled(normalise_images(images), inference)

    def window_scores(tile: torch.Tensor) -> torch.Tensor:
        tile = normalise_images(tile) if tile.dtype == torch.uint8 else tile
        scores = score(tile).float()
        if inference.flip:
            scores = scores + score(tile.flip(-1)).float().flip(-1)
        return scores

    if x.shape[-1] <= x.shape[-2]:
        for rows, chunk in _bands(window_scores, x, out_size, inference, chunk_elements):
            yield (rows, slice(None)), chunk
        return

    def transposed(tile: torch.Tensor) -> torch.Tensor:  # the network sees the image upright
        return window_scores(tile.transpose(-1, -2)).transpose(-1, -2)

    size = (out_size[1], out_size[0])
    for cols, chunk in _bands(transposed, x.transpose(-1, -2), size, inference, chunk_elements):
        yield (slice(None), cols), chunk.transpose(-1, -2)


def _bands(
    window_scores: ScoreFn,
    x: torch.Tensor,
    out_size: tuple[int, int],
    inference: Inference,
    chunk_elements: int,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """:func:`label_scores` sweeping down the rows: ``(label rows, scores)`` chunks."""
    height, width = x.shape[-2:]
    out_h, out_w = out_size
    rows, win_h = window_starts(height, inference.window, inference.stride)
    cols, win_w = window_starts(width, inference.window, inference.stride)
    per_row = coverage(height, rows, win_h, x.device) * (2 if inference.flip else 1)
    per_col = coverage(width, cols, win_w, x.device)
    resample = RowResampling.of(height, out_h)
    band = None  # summed scores of image rows [base, base + len)
    base, done = 0, 0  # done: label rows handed out so far
    for i, top in enumerate(rows):
        for left in cols:
            tile = window_scores(x[..., top : top + win_h, left : left + win_w])
            if len(rows) == len(cols) == 1:
                band = tile  # the whole image in one window: nothing to add up
                continue
            if band is None:  # one spare row: a band may start a row above its windows
                band = tile.new_zeros(*tile.shape[:2], win_h + 1, width)
            band[:, :, top - base : top - base + win_h, left : left + win_w] += tile
        assert band is not None
        finished = rows[i + 1] if i + 1 < len(rows) else height  # no later window reaches above
        ready = int(np.searchsorted(resample.upper, finished))  # label rows with all sources done
        step = max(1, chunk_elements // (band.shape[0] * band.shape[1] * out_w))
        for start in range(done, ready, step):
            end = min(start + step, ready)
            chunk = _resampled(band, base, resample, slice(start, end), per_row, per_col, out_w)
            yield slice(start, end), chunk
        done = ready
        if i + 1 < len(rows):  # keep the rows later label rows or windows still need
            keep = min(int(resample.lower[done]), finished) if done < out_h else finished
            _shift_up(band, keep - base, top + win_h - keep)
            base = keep


def scaled_size(height: int, width: int, inference: Inference) -> tuple[int, int]:
    """The size an image of ``height x width`` is scored at: resized as ``inference`` says."""
    if inference.resize_height:
        return inference.resize_height, round(width * inference.resize_height / height)
    if inference.resize_short_side:
        s = inference.resize_short_side / min(height, width)
        return round(height * s), round(width * s)
    return height, width


def nearest_resized(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Labels ``[..., H, W]`` resized to ``size`` by nearest neighbour with PIL's arithmetic
    (source index ``floor((i + 0.5) * in / out)``), as UniSeg's evaluator resizes its masks
    (numpee/UniSeg ``transformations/joint_transforms.py`` ``ScaleMin``: ``Image.NEAREST``)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels

    def index(n_in: int, n_out: int) -> torch.Tensor:
        src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out)).floor()
        return src.long().clamp_(max=n_in - 1).to(labels.device)

    rows, cols = index(labels.shape[-2], size[0]), index(labels.shape[-1], size[1])
    return labels.index_select(-2, rows).index_select(-1, cols)


def _rescaled(x: torch.Tensor, inference: Inference) -> torch.Tensor:
    h, w = x.shape[-2:]
    size = scaled_size(h, w, inference)
    return x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear")


def _shift_up(band: torch.Tensor, drop: int, carried: int) -> None:
    """In place: rows ``drop .. drop + carried`` of ``band`` move to the top, the rest is zeroed.

    Copied in blocks of at most ``drop`` rows, so no block overlaps its destination.
    """
    for start in range(0, carried if drop else 0, drop or 1):
        stop = min(start + drop, carried)
        band[:, :, start:stop] = band[:, :, drop + start : drop + stop]
    band[:, :, carried:] = 0


def _resampled(
    band: torch.Tensor,
    base: int,
    resample: RowResampling,
    rows: slice,
    per_row: torch.Tensor,
    per_col: torch.Tensor,
    out_w: int,
) -> torch.Tensor:
    """Averaged scores of label ``rows``: rows by ``resample``, columns by ``F.interpolate``."""

    def gather(index: np.ndarray) -> torch.Tensor:
        at = torch.from_numpy(index).to(band.device)
        return band.index_select(2, at - base) / (per_row[at][:, None] * per_col[None, :])

    chunk = gather(resample.lower[rows])
    weight = torch.from_numpy(resample.weight[rows]).to(band.device)[:, None]
    if weight.any():
        chunk = torch.lerp(chunk, gather(resample.upper[rows]), weight)
    if chunk.shape[-1] != out_w:
        chunk = F.interpolate(chunk, size=(chunk.shape[2], out_w), mode="bilinear")
    return chunk


def predictions(
    score: ScoreFn,
    images: torch.Tensor,
    out_size: tuple[int, int],
    inference: Inference,
    reduce: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``reduce`` (e.g. an argmax over channels) of every chunk, put together at the label size."""
    out = None
    for (rows, cols), scores in label_scores(score, images, out_size, inference):
        part = reduce(scores)
        if out is None:
            out = part.new_empty(*part.shape[:-2], *out_size)
        out[..., rows, cols] = part
    assert out is not None
    return out


def split_batch(images: torch.Tensor, *others: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Sub-batches of at most :data:`BATCH_PIXELS` pixels (at least one image each)."""
    size = max(1, BATCH_PIXELS // (images.shape[-2] * images.shape[-1]))
    yield from zip(images.split(size), *(t.split(size) for t in others), strict=True)


def training_scale(
    images: torch.Tensor, labels: torch.Tensor, short_side: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (float) and labels as training sees them at scale 1.0: short side resized to
    ``short_side`` (image bilinear, label nearest), else unchanged."""
    h, w = labels.shape[-2:]
    size = scaled_size(h, w, Inference(resize_short_side=short_side))
    if size == (h, w):
        return images, labels
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return images, labels


def tiles(height: int, width: int, window: int | None) -> Iterator[tuple[slice, slice]]:
    """A non-overlapping grid of ``window``-sized tiles (smaller at the right and bottom)."""
    step_h, step_w = (window or height), (window or width)
    for top in range(0, height, step_h):
        for left in range(0, width, step_w):
            yield slice(top, top + step_h), slice(left, left + step_w)


def training_scale_tiles(
    data: SplitDataset,
    indices: Iterable[int],
    device: torch.device,
    window: int | None,
    short_side: int | None,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised image tiles and their labels (on ``device``) of ``data[indices]`` at the
    training scale; tiles of several images come batched where they are small."""
    for images, labels in same_size_batches(data, 8, indices, workers):
        for image_part, label_part in split_batch(images, labels):
            x = normalise_images(image_part.to(device))
            x, y = training_scale(x, label_part.to(device), short_side)
            for rs, cs in tiles(*y.shape[-2:], window):
                yield x[..., rs, cs], y[..., rs, cs]


def rank_share(indices: Iterable[int], ctx: Context) -> list[int]:
    """This rank's images of a statistics pass: every ``world``-th one."""
    return list(indices)[ctx.rank :: ctx.world]


def all_reduce_sum(tensors: list[torch.Tensor], ctx: Context) -> None:
    """Sum ``tensors`` in place over the ranks (on their own device, as NCCL needs)."""
    if ctx.distributed:
        for t in tensors:
            dist.all_reduce(t)
