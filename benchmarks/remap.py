"""Label maps per second for decode -> remap -> encode on 2048x1024 uint8 label maps.

Compares the converters' lookup-table remap (``apply_lut``) and PNG writer (``encode_label``)
with a per-class masked loop, against decoding alone (the ceiling), for three native label
spaces (Cityscapes' 34 ids, Mapillary's 66, ADE20K's 151), and measures scaling from 1 to 2
processes converting files as ``mdseg prepare --jobs`` does. Prints the figures with
``os.getloadavg()`` (the cores may be shared). Goals: >= 45 maps/s per core, >= 3x the
per-class loop, >= 1.8x from 1 to 2 processes.

    python benchmarks/remap.py [--maps 40]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from mdseg.datasets.real.convert import apply_lut, encode_label, read_label, write_label
from mdseg.datasets.real.idmaps import ADE20K_LUT, CITYSCAPES_LUT, MAPILLARY_LUT

H, W = 1024, 2048
# native label space: (lookup table, number of native values)
SPACES = {
    "cityscapes": (CITYSCAPES_LUT, 34),
    "mapillary": (MAPILLARY_LUT, 66),
    "ade20k": (ADE20K_LUT, 151),
}


def make_maps(n: int, values: int) -> list[bytes]:
    """PNG bytes of label maps with region structure (blocky regions, ragged boundaries)."""
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(n):
        coarse = rng.integers(0, values, (H // 32, W // 32), dtype=np.uint8)
        fine = np.kron(coarse, np.ones((32, 32), np.uint8))
        noise = rng.random((H, W)) < 0.01
        fine[noise] = rng.integers(0, values, int(noise.sum()), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(fine, "L").save(buf, format="PNG")  # native files: Pillow's default
        maps.append(buf.getvalue())
    return maps


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def remap_loop(raw: np.ndarray, lut: np.ndarray, values: int) -> np.ndarray:
    """The per-class masked loop: one full-image comparison per native id."""
    out = np.full(raw.shape, 255, np.uint8)
    for value in range(values):
        out[raw == value] = lut[value]
    return out


def lut_pipeline(data: bytes, lut: np.ndarray) -> int:
    return len(encode_label(apply_lut(decode(data), lut)))


def loop_pipeline(data: bytes, lut: np.ndarray, values: int) -> int:
    return len(encode_label(remap_loop(decode(data), lut, values)))


def decode_only(data: bytes) -> int:
    return decode(data).size


def rate(fn: Callable[[bytes], int], maps: list[bytes]) -> float:
    start = time.perf_counter()
    for data in maps:
        fn(data)
    return len(maps) / (time.perf_counter() - start)


def convert_file(path: Path, lut: np.ndarray) -> None:
    """What a conversion worker does: read a native map, remap, write the canonical PNG."""
    write_label(path.with_suffix(".out.png"), apply_lut(read_label(path), lut))


def pool_rate(paths: list[Path], workers: int) -> float:
    """Maps/s of ``workers`` processes converting files, as ``mdseg prepare --jobs`` does."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(str, range(workers)))  # start the workers before timing
        start = time.perf_counter()
        list(pool.map(partial(convert_file, lut=CITYSCAPES_LUT), paths, chunksize=4))
        return len(paths) / (time.perf_counter() - start)


def fastest(fn: Callable[[], object], repeats: int = 20) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", type=int, default=40)
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    print("maps/s on one core: decode only | decode+LUT+encode | decode+loop+encode")
    for name, (lut, values) in SPACES.items():
        maps = make_maps(args.maps, values)
        raw = decode(maps[0])
        assert (apply_lut(raw, lut) == remap_loop(raw, lut, values)).all()
        ceiling = rate(decode_only, maps)
        fast = rate(partial(lut_pipeline, lut=lut), maps)
        slow = rate(partial(loop_pipeline, lut=lut, values=values), maps)
        step = fastest(partial(remap_loop, raw, lut, values)) / fastest(
            partial(apply_lut, raw, lut)
        )
        print(
            f"{name:10s} ({values:3d} ids) {ceiling:6.1f} | {fast:6.1f} | {slow:6.1f}"
            f"   pipeline LUT/loop {fast / slow:.2f}x, remap step alone {step:.0f}x"
        )
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.png" for i in range(2 * args.maps)]
        for path, data in zip(paths, make_maps(len(paths), 34), strict=True):
            path.write_bytes(data)
        one, two = pool_rate(paths, 1), pool_rate(paths, 2)
    print(f"processes (cityscapes): 1 -> {one:.1f}, 2 -> {two:.1f} maps/s: {two / one:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
