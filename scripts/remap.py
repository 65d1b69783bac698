"""Label maps per second for decode -> remap -> encode on 2048x1024 uint8 label maps.

Runs the converters' own pieces (``read_label``, ``apply_lut``, ``encode_label``) on PNG files
written by Pillow (as the datasets ship them) for three native label spaces (Cityscapes' 34 ids,
Mapillary's 66, ADE20K's 151), against a per-class masked loop in place of the lookup table and
against decoding alone (the ceiling), with the cost of each stage, and compares the reader and
writer with Pillow's and OpenCV's. Then it times ``convert_all``, what ``mdseg prepare --jobs``
runs, with 1 and with 2 processes.

The cores of a virtual machine do not run at a steady speed, so the process comparison
alternates the two settings several times and reports the median ratio and its range, with the
CPU time per map in each setting and how busy the two cores were: equal CPU per map and busy
cores mean the conversion itself scales, whatever the wall-clock noise.
Goals: >= 45 maps/s per core, >= 3x the per-class loop, >= 1.8x from 1 to 2 processes.

    python scripts/remap.py [--maps 40] [--repeats 9]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mdseg.datasets.real.convert import Item, apply_lut, convert_all
from mdseg.datasets.real.idmaps import ADE20K_LUT, CITYSCAPES_LUT, MAPILLARY_LUT
from mdseg.datasets.real.png import encode_label, read_label
from mdseg.datasets.real.prepare import CONVERTERS

H, W = 1024, 2048
# native label space: (lookup table, number of native values)
SPACES = {
    "cityscapes": (CITYSCAPES_LUT, 34),
    "mapillary": (MAPILLARY_LUT, 66),
    "ade20k": (ADE20K_LUT, 151),
}


def write_maps(folder: Path, n: int, values: int) -> list[Path]:
    """PNG label maps with region structure (blocky regions, ragged boundaries)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        coarse = rng.integers(0, values, (H // 32, W // 32), dtype=np.uint8)
        fine = np.kron(coarse, np.ones((32, 32), np.uint8))
        noise = rng.random((H, W)) < 0.01
        fine[noise] = rng.integers(0, values, int(noise.sum()), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(fine, "L").save(buf, format="PNG")  # native files: Pillow's default
        paths.append(folder / f"{i}.png")
        paths[-1].write_bytes(buf.getvalue())
    return paths


def remap_loop(raw: np.ndarray, lut: np.ndarray, values: int) -> np.ndarray:
    """The per-class masked loop: one full-image comparison per native id."""
    out = np.full(raw.shape, 255, np.uint8)
    for value in range(values):
        out[raw == value] = lut[value]
    return out


def median_ms(fn: Callable[[], object], repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def rate(fn: Callable[[Path], object], paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        fn(path)
    return len(paths) / (time.perf_counter() - start)


def single_core(paths: list[Path], lut: np.ndarray, values: int) -> str:
    raw = read_label(paths[0])
    assert (apply_lut(raw, lut) == remap_loop(raw, lut, values)).all()
    ceiling = rate(read_label, paths)
    fast = rate(lambda p: encode_label(apply_lut(read_label(p), lut)), paths)
    slow = rate(lambda p: encode_label(remap_loop(read_label(p), lut, values)), paths)
    stages = (
        f"decode {median_ms(lambda: read_label(paths[0])):.2f} ms, "
        f"LUT {median_ms(lambda: apply_lut(raw, lut)):.2f} ms, "
        f"loop {median_ms(lambda: remap_loop(raw, lut, values), 5):.2f} ms, "
        f"encode {median_ms(lambda: encode_label(apply_lut(raw, lut))):.2f} ms"
    )
    return (
        f"{ceiling:6.1f} | {fast:6.1f} | {slow:6.1f}   LUT/loop {fast / slow:.2f}x\n"
        f"{'':17s}per map: {stages}"
    )


def pillow_decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def libpng_encode(label: np.ndarray) -> bytes:
    """OpenCV's libpng writer with the settings of ``encode_label``: up filter, RLE, level 1."""
    params = [
        cv2.IMWRITE_PNG_COMPRESSION, 1,
        cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
        cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
    ]  # fmt: skip
    return cv2.imencode(".png", label, params)[1].tobytes()


def pillow_encode(label: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(label, "L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def codecs(path: Path, lut: np.ndarray) -> str:
    """The converters' reader and writer against the usual alternatives, on one Cityscapes map."""
    label = apply_lut(read_label(path), lut)
    writers = {"encode_label": encode_label, "OpenCV": libpng_encode, "Pillow": pillow_encode}
    written = ", ".join(
        f"{name} {median_ms(lambda w=w: w(label)):.2f} ms ({len(w(label)) // 1024} KiB)"
        for name, w in writers.items()
    )
    return (
        f"decode: read_label {median_ms(lambda: read_label(path)):.2f} ms, "
        f"Pillow {median_ms(lambda: pillow_decode(path)):.2f} ms\n"
        f"encode: {written}"
    )


@dataclass(frozen=True)
class Run:
    maps_per_s: float
    cpu_ms_per_map: float  # all processes' CPU time, parent included
    busy: float  # CPU time / (processes x wall time)


def convert_run(items: list[Item], out: Path, jobs: int) -> Run:
    """Time ``convert_all`` as ``mdseg prepare --jobs`` runs it (pool start-up included)."""
    before, start = os.times(), time.perf_counter()
    convert_all(CONVERTERS["cityscapes"], items, out, jobs=jobs)
    wall, after = time.perf_counter() - start, os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, own and children's
    return Run(len(items) / wall, 1e3 * cpu / len(items), cpu / (jobs * wall))


def scaling(items: list[Item], out: Path, repeats: int) -> str:
    """1 and 2 processes alternated ``repeats`` times: the 2/1 ratio and where time went."""
    runs = [(convert_run(items, out, 1), convert_run(items, out, 2)) for _ in range(repeats)]
    ratios = [two.maps_per_s / one.maps_per_s for one, two in runs]

    def median(field: str, which: int) -> float:
        return statistics.median(getattr(pair[which], field) for pair in runs)

    return (
        f"convert_all (cityscapes, {len(items)} files, {repeats} alternations): "
        f"1 process {median('maps_per_s', 0):.1f}, 2 processes {median('maps_per_s', 1):.1f} "
        f"maps/s; median ratio {statistics.median(ratios):.2f}x "
        f"(range {min(ratios):.2f}-{max(ratios):.2f})\n"
        f"  CPU per map {median('cpu_ms_per_map', 0):.2f} ms with 1 process, "
        f"{median('cpu_ms_per_map', 1):.2f} ms with 2; the 2 cores busy "
        f"{100 * median('busy', 1):.0f}% of the 2-process runs"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", type=int, default=40, help="label maps per label space")
    p.add_argument("--repeats", type=int, default=9, help="alternations of 1 and 2 processes")
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    print("maps/s on one core: decode only | decode+LUT+encode | decode+loop+encode")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (lut, values) in SPACES.items():
            paths = write_maps(Path(tmp) / name, args.maps, values)
            print(f"{name:10s} ({values:3d} ids) {single_core(paths, lut, values)}")
        print(codecs(Path(tmp) / "cityscapes" / "0.png", CITYSCAPES_LUT))
        distinct = write_maps(Path(tmp) / "scaling", args.maps, 34)
        items = []
        for copy in range(8):  # enough work that pool start-up and the last chunks weigh little
            for path in distinct:
                target = path.with_name(f"{copy}_{path.name}")
                shutil.copyfile(path, target)
                items.append(Item("train", target.stem, target, target))
        print(scaling(items, Path(tmp) / "out", args.repeats))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
