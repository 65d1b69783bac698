"""Progress of long loops: a bar on a terminal, a periodic plain line in a job's log file.

tqdm redraws its bar with ``\\r``, which in a Snakemake job's log (a file) is either hidden
(``disable=None`` off a terminal) or one unreadable line. :func:`progress` keeps the bar for a
terminal and otherwise writes a line every ``every`` seconds and one at the end, e.g.::

    data_semantics.zip: 1.2G of 4.0G (30%)  41.0M/s  eta 1m10s
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

EVERY_SECONDS = 30.0
GIB = 1024**3


def duration(seconds: float) -> str:
    """``45s``, ``1m41s``, ``2h05m``, ``3d04h``: two units at most, for an ETA."""
    s = max(0, round(seconds))
    for unit, length, sub, sub_length in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= length:
            return f"{s // length}{unit}{(s % length) // sub_length:02d}{sub}"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def size(nbytes: float) -> str:
    """Bytes in binary units, about three digits: ``1.2G``, ``884M``, ``96K``."""
    if nbytes >= GIB:
        return f"{nbytes / GIB:.1f}G"
    if nbytes >= 1024**2:
        return f"{nbytes / 1024**2:.0f}M"
    return f"{nbytes / 1024:.0f}K"


class LogProgress:
    """tqdm's ``update``/``close`` as periodic lines: count, share, rate and ETA."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        unit_scale: bool = False,
        every: float = EVERY_SECONDS,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.bytes = total, desc, unit, unit_scale
        self.every, self.stream, self.clock = every, stream or sys.stderr, clock
        self.n = 0
        self.start = self.last = clock()
        self.closed = False

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def set_postfix(self, *_: object, **__: object) -> None:
        """Accepted for tqdm compatibility; the periodic line carries the counts only."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line(self.clock(), done=True)

    def _amount(self, value: float) -> str:
        return size(value) if self.bytes else f"{value:g} {self.unit}"

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.n / elapsed
        text = f"{self.desc}: {self._amount(self.n)}"
        if self.total:
            text += f" of {self._amount(self.total)} ({100 * self.n / self.total:.0f}%)"
        text += f"  {self._amount(rate)}/s" if self.bytes else f"  {rate:.3g} {self.unit}/s"
        if done:
            text += f"  done in {duration(elapsed)}"
        elif self.total and rate > 0:
            text += f"  eta {duration((self.total - self.n) / rate)}"
        print(text, file=self.stream, flush=True)


def progress(
    total: int | None,
    desc: str,
    unit: str = "it",
    unit_scale: bool = False,
    initial: int = 0,
    every: float = EVERY_SECONDS,
) -> tqdm | LogProgress:
    """A tqdm bar when stderr is a terminal, else a :class:`LogProgress` writing lines."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, initial=initial)
    bar = LogProgress(total, desc, unit, unit_scale, every)
    bar.n = initial
    return bar
