"""Training images per second per worker: 2048x1024 PNG pairs to 768x768 crops (scale 0.5-2, flip).

Three paths on the same files, each on one core (one torch and one OpenCV thread):
- old: the former pipeline (Pillow decode, float32 normalisation, bilinear rescale of the whole
  image and nearest rescale of the label with ``F.interpolate``, pad, crop, flip), reimplemented
  here as ``src/mdseg/data.py`` had it before the uint8 pipeline;
- new: what a DataLoader worker runs per image, ``RankBatches.item`` (OpenCV decode to uint8,
  crop-first resampling of the window only, flip);
- decode: ``SplitDataset.read`` alone (the ceiling of any pipeline that decodes these files).
Then ``training_batches`` (the DataLoader of training) with 1 and 2 workers, alternated several
times because a virtual machine's cores do not run at a steady speed; the median ratio counts.
The images are smoothed noise with fine grain, so the PNGs are as large as photographs'
(~3-4 MB), and labels are 19 smooth regions.
Goals: new >= 8x old and >= 70 % of decode per worker; 2 workers >= 1.8x one.
Last, the embedded default's input (200 steps of 8 crops from 64 px images, config.yaml) in the
training process and in one worker, which picks its ``training.workers``.
``--rotate-blur`` adds UniSeg's rotation (±10°) and blur (p = 0.5, sigma 0-4; numpee/UniSeg
base_augmentation.yaml, transformations/__init__.py): the augmentation alone, per image, without
and with them, at 768 from 2048x1024 and at 64 from 64x64, a worker's rate with them, and the
default run's input with them.

    python scripts/input_pipeline.py [--images 12] [--repeats 3] [--steps 12] [--rotate-blur]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mdseg.data import Augment, SplitDataset
from mdseg.io import IGNORE_ID, sha256, write_json, write_split_list
from mdseg.loader import RankBatches, training_batches

CROP, SCALE, SIZE = 768, (0.5, 2.0), (1024, 2048)
UNISEG = {"rotate_degrees": 10.0, "blur_probability": 0.5}  # base_augmentation.yaml, GaussianBlur
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def write_dataset(root: Path, n: int, classes: int = 19, size: tuple[int, int] = SIZE) -> Path:
    """``n`` synthetic image/label PNG pairs of ``size`` (rows, columns) as a prepared dataset."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    h, w = size
    pairs = []
    for i in range(n):
        coarse = rng.normal(128, 50, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        image = np.clip(smooth + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        field = rng.random((max(2, h // 64), max(2, w // 64))).astype(np.float32)
        field = cv2.resize(field, (w, h))
        label = np.minimum(field * classes, classes - 1).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"{i}.png"), image[:, :, ::-1])
        cv2.imwrite(str(root / "labels" / f"{i}.png"), label)
        pairs.append((f"images/{i}.png", f"labels/{i}.png"))
    write_split_list(root / "train.lst", pairs)
    write_json(
        root / "manifest.json",
        {
            "name": "bench",
            "classes": [f"c{c}" for c in range(classes)],
            "ignore_id": IGNORE_ID,
            "source": "synthetic benchmark",
            "checksums": {"train.lst": sha256(root / "train.lst")},
            "splits": {"train": {"count": n, "list": "train.lst"}},
        },
    )
    return root


def old_item(data: SplitDataset, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """The former path: Pillow decode, float32 normalise, rescale the whole image, crop, flip."""
    image_path, label_path = data.pairs[index]
    image = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255.0
    label = torch.from_numpy(np.asarray(Image.open(label_path), dtype=np.int64))
    img = (torch.from_numpy(image).permute(2, 0, 1) - MEAN) / STD
    s = rng.uniform(*SCALE)
    h, w = label.shape
    size = (max(1, round(h * s)), max(1, round(w * s)))
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
    pad_h, pad_w = max(0, CROP - size[0]), max(0, CROP - size[1])
    if pad_h or pad_w:
        img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)
        label = F.pad(label, (0, pad_w, 0, pad_h), value=IGNORE_ID)
    top = int(rng.integers(0, label.shape[0] - CROP + 1))
    left = int(rng.integers(0, label.shape[1] - CROP + 1))
    img = img[:, top : top + CROP, left : left + CROP]
    label = label[top : top + CROP, left : left + CROP]
    if rng.random() < 0.5:
        img, label = img.flip(-1), label.flip(-1)
    return img, label


def per_second(work: Callable[[int], object], n: int) -> float:
    """Items per second of ``work(i)`` for i in 0..n-1, after one untimed warm-up item."""
    work(0)
    start = time.perf_counter()
    for i in range(n):
        work(i)
    return n / (time.perf_counter() - start)


def loader_rate(stream: RankBatches, steps: int, workers: int) -> float:
    """Images per second through ``training_batches``, from the first batch on (start-up and
    the first batches, which every worker builds at once, excluded)."""
    batches = training_batches(stream, 0, steps + 2 * workers, workers)
    for _ in range(2 * workers):
        next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * stream.batch_size / (time.perf_counter() - start)


def default_input_seconds(root: Path, workers: int, extra: dict[str, float] | None = None) -> float:
    """Seconds for the default run's 200 batches of 8 64 px crops (2 datasets, balanced), with
    ``extra`` :class:`Augment` options."""
    data = []
    for key in ("a", "b"):
        folder = root / f"{key}{workers}"
        if not folder.exists():
            write_dataset(folder, 40, size=(64, 64))
        data.append(SplitDataset(folder, "train"))
    stream = RankBatches(data, 8, Augment(64, SCALE, True, **(extra or {})), "balanced", seed=0)
    start = time.perf_counter()
    for _ in training_batches(stream, 0, 200, workers):
        pass
    return time.perf_counter() - start


def augment_ms(data: SplitDataset, augment: Augment, n: int = 40) -> float:
    """Milliseconds per ``augment`` call on decoded images (decoding excluded), over ``n``
    calls cycling through ``data``'s images."""
    items = [data.read(i) for i in range(min(len(data), 4))]
    rng = np.random.default_rng(0)
    augment(*items[0], rng)
    start = time.perf_counter()
    for i in range(n):
        augment(*items[i % len(items)], rng)
    return (time.perf_counter() - start) / n * 1000


def rotate_blur_costs(tmp: Path, data: SplitDataset) -> None:
    """What UniSeg's rotation and blur add: per image, per worker, and to the default run."""
    small = SplitDataset(write_dataset(tmp / "small", 4, size=(64, 64)), "train")
    for name, split, crop in (("768 from 2048x1024", data, CROP), ("64 from 64x64", small, 64)):
        off = augment_ms(split, Augment(crop, SCALE, True), 40 if crop == CROP else 2000)
        on = augment_ms(split, Augment(crop, SCALE, True, **UNISEG), 40 if crop == CROP else 2000)
        rotate = augment_ms(split, Augment(crop, SCALE, True, rotate_degrees=10.0), 40)
        print(
            f"augmentation {name}: {off:7.3f} ms plain, {on:7.3f} ms with rotation+blur "
            f"(+{on - off:.3f} ms; rotation alone {rotate:.3f} ms)"
        )
    stream = RankBatches([data], 4, Augment(CROP, SCALE, True, **UNISEG), "concat", seed=0)
    rate = per_second(lambda i: stream.item(0, i, (0, i)), len(data))
    print(f"per worker with rotation+blur {rate:6.2f} img/s (decode included)")
    inline = default_input_seconds(tmp, 0, UNISEG)
    print(f"default run's input with rotation+blur: {inline:.2f} s inline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="PNG pairs (and timed items)")
    parser.add_argument("--repeats", type=int, default=3, help="1-vs-2-worker alternations")
    parser.add_argument("--steps", type=int, default=12, help="timed batches of 4 per setting")
    parser.add_argument(
        "--rotate-blur", action="store_true", help="also time UniSeg's rotation and blur"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = SplitDataset(write_dataset(Path(tmp) / "bench", args.images), "train")
        mb = sum(p.stat().st_size for p, _ in data.pairs) / len(data) / 2**20
        print(f"{len(data)} pairs of {SIZE[1]}x{SIZE[0]} PNGs, images {mb:.1f} MB each")
        n = len(data)
        rng = np.random.default_rng(0)
        stream = RankBatches([data], 4, Augment(CROP, SCALE, True), "concat", seed=0)
        decode = per_second(data.read, n)
        old = per_second(lambda i: old_item(data, i, rng), max(4, n // 3))
        new = per_second(lambda i: stream.item(0, i, (0, i)), n)
        print(
            f"per worker  old {old:6.2f} img/s   new {new:6.2f} img/s   decode {decode:6.2f} img/s"
        )
        print(f"new / old {new / old:5.1f}x (goal >= 8; decoding alone is {decode / old:.1f}x old)")
        print(f"new / decode {new / decode:4.0%} (goal >= 70%)")
        steps = args.steps
        ratios = []
        for _ in range(args.repeats):
            one, two = loader_rate(stream, steps, 1), loader_rate(stream, steps, 2)
            ratios.append(two / one)
            print(f"DataLoader  1 worker {one:6.2f} img/s   2 workers {two:6.2f} img/s")
        print(
            f"2 / 1 workers: median {statistics.median(ratios):.2f}x "
            f"(range {min(ratios):.2f}-{max(ratios):.2f}; goal >= 1.8)"
        )
        inline, worker = (default_input_seconds(Path(tmp), w) for w in (0, 1))
        print(f"default run's input: {inline:.2f} s inline, {worker:.2f} s in 1 worker")
        if args.rotate_blur:
            rotate_blur_costs(Path(tmp), data)


if __name__ == "__main__":
    main()
