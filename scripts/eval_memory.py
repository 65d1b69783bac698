"""Peak memory and time of evaluating one 4032x3024 image: sliding windows vs the whole image.

Each mode runs in its own process, which evaluates a one-image dataset (a synthetic JPEG and
PNG label written to a temporary folder) through ``mdseg.evaluate.evaluate_dataset`` with a
randomly initialised ``hrnet_w18_small_v2`` (weights do not change memory or time) and reports
its peak resident set size (``getrusage``; MB here are MiB) and the evaluation's wall time.
Issue 11's goal: sliding windows (713, stride 2/3) at most 2 GB on CPU.

    python scripts/eval_memory.py [--classes 65] [--width 4032] [--height 3024] [--threads 2]
                                     [--device cuda]   # also peak GPU memory (max allocated)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = {"sliding": {"window": 713, "stride": 2 / 3}, "whole": {"window": None}}


def write_dataset(root: Path, width: int, height: int, classes: int) -> Path:
    """One image (smooth colour bands and noise) with a label of horizontal class stripes."""
    import cv2

    from mdseg.io import sha256, write_json, write_split_list

    rng = np.random.default_rng(0)
    out = root / "bench"
    out.mkdir(parents=True)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    image = cv2.add(image, rng.integers(0, 32, image.shape, dtype=np.uint8))
    label = (y * classes // height).astype(np.uint8)
    cv2.imwrite(str(out / "image.jpg"), image[..., ::-1])
    cv2.imwrite(str(out / "label.png"), label)
    write_split_list(out / "val.lst", [("image.jpg", "label.png")])
    names = [f"class {c}" for c in range(classes)]
    write_json(
        out / "manifest.json",
        {
            "name": "bench",
            "classes": names,
            "ignore_id": 255,
            "source": "benchmark",
            "checksums": {"val.lst": sha256(out / "val.lst")},
            "splits": {"val": {"count": 1, "list": "val.lst"}},
        },
    )
    return out


def child(mode: str, dataset: Path, classes: int, threads: int, device: str) -> dict[str, float]:
    import torch

    from mdseg.build import build_model
    from mdseg.data import SplitDataset
    from mdseg.evaluate import evaluate_dataset
    from mdseg.inference import Inference
    from mdseg.methods import METHODS

    torch.set_num_threads(threads)
    data = SplitDataset(dataset, "val")
    method = METHODS["multi_ce"]({"bench": data.classes})
    dev = torch.device(device)
    model = build_model(method, "hrnet_w18_small_v2").to(dev).eval()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = evaluate_dataset(method, model, data, {}, dev, Inference(**MODES[mode]), desc=mode)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "classes": classes,
        "peak_rss_mb": round(peak),
        "rss_before_evaluation_mb": round(before),
        "seconds": round(seconds, 1),
        "miou_all_classes": result["miou_all_classes"],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(dev) / 2**20)
        if dev.type == "cuda"
        else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=int, default=4032)
    p.add_argument("--height", type=int, default=3024)
    p.add_argument("--classes", type=int, default=65, help="65: Mapillary Vistas v1.2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU check")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    p.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dataset, args.classes, args.threads, args.device)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dataset = write_dataset(Path(tmp), args.width, args.height, args.classes)
        print(f"one {args.width}x{args.height} image, {args.classes} classes, hrnet_w18_small_v2")
        for mode in args.modes:
            options = ["--classes", str(args.classes), "--threads", str(args.threads)]
            options += ["--device", args.device]
            command = [sys.executable, __file__, "--child", mode, "--dataset", str(dataset)]
            run = subprocess.run([*command, *options], capture_output=True, text=True)
            if run.returncode:
                print(f"{mode}: failed (exit {run.returncode})\n{run.stderr[-2000:]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            settings = MODES[mode]
            gpu = f"  peak GPU {r['peak_gpu_mb']} MB" if r["peak_gpu_mb"] is not None else ""
            print(
                f"{mode:8s} {json.dumps(settings):36s} peak RSS {r['peak_rss_mb']:6d} MB "
                f"(model loaded: {r['rss_before_evaluation_mb']} MB)  {r['seconds']:6.1f} s{gpu}"
            )


if __name__ == "__main__":
    main()
