"""GPU check for the paper configs: step speed, memory, input share and full-resolution eval.

One command, at most ~8 minutes on one GPU (``--budget`` seconds, default 420):

1. Training steps of HRNet-W48 with the HRNetV2 neck and a 1x1 head (70 classes, UniSeg's union)
   at 768x768 (AutoUniSeg) and 713x713 (UniSeg) crops, per-GPU batch 21 (AutoUniSeg: 3 images of
   each of 7 datasets) and 8 (UniSeg W48: 32 over 4 GPUs), fp32 vs bf16 autocast, channels_last,
   AdamW: iterations/s and peak memory. Out-of-memory is reported, not fatal.
2. The share of step time spent waiting for data: the real input pipeline
   (:mod:`mdseg.loader`, ``--workers`` DataLoader processes) on synthetic 2048x1024 PNG pairs,
   768x768 crops (scale 0.5-2, flip), per-GPU batch 21, feeding bf16 W48 steps.
3. Sliding-window evaluation (713, stride 2/3, as MSeg and UniSeg's authors) of one 4032x3024
   image with W48: time and peak memory, beside the whole-image pass (which may not fit).

Prints a table and, with ``--out DIR``, writes ``gpu_check.json`` and ``throughput.csv`` rows in
the format of ``src/mdseg/data/throughput.csv`` (``cluster.throughput`` reads such a file), so
``snakemake plan`` can use measured figures. ``--smoke`` runs every part at toy sizes on any
device (CPU included) to check the script itself.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from input_pipeline import write_dataset  # this folder's input benchmark: its 2 MP PNG pairs

from mdseg.data import Augment, SplitDataset, normalise_images
from mdseg.inference import Inference, predictions
from mdseg.io import IGNORE_ID
from mdseg.loader import RankBatches, training_batches
from mdseg.models.backbones import HRNetBranches
from mdseg.models.heads import LinearClassifier
from mdseg.models.segmentor import Segmentor
from mdseg.plan import COLUMNS

CLASSES = 70  # UniSeg's union of Cityscapes, IDD, BDD and Mapillary


def build(backbone: str, device: torch.device) -> Segmentor:
    model = Segmentor(HRNetBranches(backbone), {})
    model.heads["main"] = LinearClassifier(model.neck.out_channels, CLASSES)
    return model.to(device, memory_format=torch.channels_last)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def train_step(
    model: Segmentor, optimizer: torch.optim.Optimizer, precision: str
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    mixed = precision == "bf16"

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        with torch.autocast(images.device.type, torch.bfloat16, enabled=mixed):
            loss = F.cross_entropy(model(images, head="main"), labels, ignore_index=IGNORE_ID)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_speed(
    backbone: str, crop: int, batch: int, precision: str, device: torch.device, steps: int
) -> dict[str, Any]:
    """Iterations/s and peak memory of training steps on random data (after 2 warm-up steps)."""
    reset_peak(device)
    row: dict[str, Any] = {"crop": crop, "per_gpu_batch": batch, "precision": precision}
    try:
        model = build(backbone, device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        step = train_step(model, optimizer, precision)
        images = torch.randn(batch, 3, crop, crop, device=device)
        images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, CLASSES, (batch, crop, crop), device=device)
        for _ in range(2):
            step(images, labels)
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step(images, labels)
        sync(device)
        seconds = (time.perf_counter() - start) / steps
        row.update(it_per_s=round(1 / seconds, 3), s_per_it=round(seconds, 4))
    except torch.OutOfMemoryError:
        row.update(it_per_s=None, s_per_it=None, note="out of memory")
    row["peak_gb"] = peak_gb(device)
    return row


def data_share(
    data: SplitDataset,
    backbone: str,
    crop: int,
    batch: int,
    workers: int,
    device: torch.device,
    steps: int,
) -> dict[str, Any]:
    """Fraction of bf16 step time spent waiting for the next batch from the input pipeline."""
    model = build(backbone, device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step = train_step(model, optimizer, "bf16")
    source = RankBatches([data], batch, Augment(crop, (0.5, 2.0), True), "concat", seed=0)
    waited = 0.0
    start = None
    batches = iter(training_batches(source, 0, steps + 2, workers))
    for n in range(steps + 2):
        if n == 2:  # two warm-up steps: worker start-up and cudnn autotuning
            sync(device)
            waited, start = 0.0, time.perf_counter()
        t0 = time.perf_counter()
        images, labels, _ = next(batches)
        images = images.to(device, non_blocking=True).permute(0, 3, 1, 2)
        labels = labels.to(device, non_blocking=True).long()
        waited += time.perf_counter() - t0
        x = normalise_images(images).contiguous(memory_format=torch.channels_last)
        step(x, labels)
    sync(device)
    total = time.perf_counter() - (start or 0.0)
    return {
        "workers": workers,
        "per_gpu_batch": batch,
        "crop": crop,
        "s_per_it": round(total / steps, 4),
        "data_share": round(waited / total, 3),
    }


def sliding_eval(
    backbone: str,
    size: tuple[int, int],
    window: int | None,
    device: torch.device,
) -> dict[str, Any]:
    """Time and peak memory of scoring one ``size`` image (argmax at full resolution)."""
    reset_peak(device)
    model = build(backbone, device).eval()
    image = torch.randint(0, 256, (1, 3, *size), dtype=torch.uint8, device=device)
    inference = Inference(window=window)
    row: dict[str, Any] = {"window": window or "whole image", "image": f"{size[1]}x{size[0]}"}

    def score(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            return model(x.contiguous(memory_format=torch.channels_last), head="main")

    try:
        with torch.inference_mode():
            predictions(score, image, size, inference, lambda s: s.argmax(1))  # warm-up
            sync(device)
            start = time.perf_counter()
            pred = predictions(score, image, size, inference, lambda s: s.argmax(1))
            sync(device)
        row.update(seconds=round(time.perf_counter() - start, 3), shape=list(pred.shape))
    except torch.OutOfMemoryError:
        row.update(seconds=None, note="out of memory")
    row["peak_gb"] = peak_gb(device)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON and CSV")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (part 2)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per setting")
    parser.add_argument("--smoke", action="store_true", help="toy sizes: check the script")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    torch.backends.cudnn.benchmark = True
    if args.smoke:
        backbone, crops, batches, steps = "hrnet_w18_small_v2", (64, 48), (2, 1), 1
        image_size, eval_size, pairs = (128, 256), (300, 400), 4
    else:
        backbone, crops, batches, steps = "hrnet_w48", (768, 713), (21, 8), args.steps
        image_size, eval_size, pairs = (1024, 2048), (3024, 4032), 48
    began = time.perf_counter()
    report: dict[str, Any] = {"gpu": gpu, "backbone": backbone, "torch": torch.__version__}

    report["steps"] = []
    for crop in crops:
        for batch in batches:
            for precision in ("fp32", "bf16"):
                row = step_speed(backbone, crop, batch, precision, device, steps)
                report["steps"].append(row)
                print("step", json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        data = SplitDataset(write_dataset(Path(tmp), pairs, size=image_size), "train")
        report["input"] = []
        for workers in sorted({0, args.workers}):
            row = data_share(data, backbone, crops[0], batches[0], workers, device, steps)
            report["input"].append(row)
            print("input", json.dumps(row), flush=True)

    report["eval"] = []
    for window in (713 if not args.smoke else 128, None):
        row = sliding_eval(backbone, eval_size, window, device)
        report["eval"].append(row)
        print("eval", json.dumps(row), flush=True)
    report["seconds"] = round(time.perf_counter() - began, 1)
    print(f"total {report['seconds']} s on {gpu}")

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
        model = "h200" if "H200" in gpu else "h100" if "H100" in gpu else gpu.lower()
        stamp = time.strftime("%Y-%m-%d")
        with open(args.out / "throughput.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in report["steps"]:
                if row["s_per_it"] is not None:
                    writer.writerow(
                        {
                            "backbone": backbone,
                            "crop": row["crop"],
                            "per_gpu_batch": row["per_gpu_batch"],
                            "precision": row["precision"],
                            "gpu": model,
                            "seconds_per_iteration": row["s_per_it"],
                            "source": f"measured: scripts/gpu_check.py on {gpu}, {stamp}",
                        }
                    )


if __name__ == "__main__":
    main()
