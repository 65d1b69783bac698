"""Label maps per second for decode -> remap -> encode on 2048x1024 uint8 Cityscapes-like maps.

Compares the lookup-table remap used by the converters with a per-class masked loop, against
decoding alone (the ceiling), and measures scaling from 1 to 2 processes. Prints the figures
with ``os.getloadavg()`` (the cores may be shared). Goals: >= 45 maps/s per core, >= 3x the
per-class loop, >= 1.8x from 1 to 2 processes.

    python benchmarks/remap.py [--maps 40]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from mdseg.datasets.real.convert import PNG_LEVEL, apply_lut
from mdseg.datasets.real.idmaps import CITYSCAPES_LUT

H, W = 1024, 2048


def make_maps(n: int) -> list[bytes]:
    """PNG bytes of label maps with region structure (blocky regions of Cityscapes label ids)."""
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(n):
        coarse = rng.integers(0, 34, (H // 32, W // 32), dtype=np.uint8)
        fine = np.kron(coarse, np.ones((32, 32), np.uint8))
        noise = rng.random((H, W)) < 0.01  # ragged boundaries
        fine[noise] = rng.integers(0, 34, int(noise.sum()), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(fine, "L").save(buf, format="PNG")  # native files: default level
        maps.append(buf.getvalue())
    return maps


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def encode(label: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(label, "L").save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def remap_loop(raw: np.ndarray) -> np.ndarray:
    """The per-class masked loop: one full-image comparison per source id."""
    out = np.full(raw.shape, 255, np.uint8)
    for value in range(34):
        out[raw == value] = CITYSCAPES_LUT[value]
    return out


def lut_pipeline(data: bytes) -> int:
    return len(encode(apply_lut(decode(data), CITYSCAPES_LUT)))


def loop_pipeline(data: bytes) -> int:
    return len(encode(remap_loop(decode(data))))


def decode_only(data: bytes) -> int:
    return decode(data).size


def rate(fn: Callable[[bytes], int], maps: list[bytes]) -> float:
    start = time.perf_counter()
    for data in maps:
        fn(data)
    return len(maps) / (time.perf_counter() - start)


def pool_rate(maps: list[bytes], workers: int) -> float:
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(decode_only, maps[:workers]))  # start the workers before timing
        start = time.perf_counter()
        list(pool.map(lut_pipeline, maps, chunksize=2))
        return len(maps) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", type=int, default=40)
    args = p.parse_args()
    maps = make_maps(args.maps)
    raw = decode(maps[0])
    assert (apply_lut(raw, CITYSCAPES_LUT) == remap_loop(raw)).all()
    print(f"load average before: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    n = 20
    t_lut = min(_time(lambda: apply_lut(raw, CITYSCAPES_LUT)) for _ in range(n))
    t_loop = min(_time(lambda: remap_loop(raw)) for _ in range(n))
    figures = {
        "decode only (ceiling)": rate(decode_only, maps),
        "decode+LUT remap+encode": rate(lut_pipeline, maps),
        "decode+per-class loop+encode": rate(loop_pipeline, maps),
    }
    for name, value in figures.items():
        print(f"{name:32s} {value:7.1f} maps/s (1 core)")
    lut_rate = figures["decode+LUT remap+encode"]
    print(f"remap alone: LUT {t_lut * 1e3:.2f} ms, per-class loop {t_loop * 1e3:.2f} ms "
          f"-> {t_loop / t_lut:.1f}x")  # fmt: skip
    loop_rate = figures["decode+per-class loop+encode"]
    print(f"pipeline, LUT vs per-class loop: {lut_rate / loop_rate:.2f}x")
    one, two = pool_rate(maps, 1), pool_rate(maps, 2)
    print(f"processes: 1 -> {one:.1f} maps/s, 2 -> {two:.1f} maps/s, scaling {two / one:.2f}x")
    print(f"load average after: {os.getloadavg()}")


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
