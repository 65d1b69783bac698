"""The harness of the bad-input cases (issue 15): run one ``mdseg`` command and check its refusal.

Every case asserts the same four things (see :func:`refused`): a non-zero exit, an ``error:``
line naming the culprit, no traceback (no ``--debug``), and no output left under a final name
while the good outputs from before stay byte-identical. Cases live in one file per stage:
``test_bad_<stage>.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mdseg.cli import main

Refuse = Callable[..., str]


def _snapshot(paths: Iterable[Path]) -> dict[Path, bytes]:
    return {Path(p): Path(p).read_bytes() for p in paths}


def check_refusal(
    code: int,
    text: str,
    culprits: Iterable[str | Path],
    absent: Iterable[Path],
    before: dict[Path, bytes],
) -> str:
    """Assert the four properties of a refusal; return the ``error:`` line."""
    assert code != 0, f"exit status 0, expected a refusal; output:\n{text}"
    assert "Traceback" not in text, f"a traceback without --debug:\n{text}"
    errors = [line for line in text.splitlines() if ": error: " in line]
    assert len(errors) == 1, f"expected one error line, got:\n{text}"
    line = errors[0]
    for culprit in culprits:
        assert str(culprit) in line, f"{culprit!s} not named in: {line}"
    for path in absent:
        assert not Path(path).exists(), f"{path} was left under its final name"
    for path, data in before.items():
        assert path.is_file() and path.read_bytes() == data, f"{path} was changed"
    return line


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]) -> Refuse:
    """``refused(argv, *culprits, absent=(), untouched=())`` runs ``mdseg argv`` in this process.

    ``culprits``: texts the error line must contain (paths, keys, values, hosts).
    ``absent``: final names that must not exist afterwards. ``untouched``: files that must keep
    their bytes. Returns the error line.
    """

    def run(
        argv: list[str],
        *culprits: str | Path,
        absent: Iterable[Path] = (),
        untouched: Iterable[Path] = (),
    ) -> str:
        before = _snapshot(untouched)
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 1
        out = capsys.readouterr()
        return check_refusal(code, out.out + out.err, culprits, absent, before)

    return run


def run_mdseg(
    argv: list[str], *, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``mdseg argv`` as a separate process (cases that kill it or limit its resources)."""
    return subprocess.run(
        [sys.executable, "-m", "mdseg.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def refused_process() -> Refuse:
    """Like ``refused``, with ``mdseg`` in a subprocess; ``popen`` passes on extra arguments."""

    def run(
        argv: list[str],
        *culprits: str | Path,
        absent: Iterable[Path] = (),
        untouched: Iterable[Path] = (),
        popen: dict[str, object] | None = None,
    ) -> str:
        before = _snapshot(untouched)
        done = run_mdseg(argv, **(popen or {}))
        return check_refusal(done.returncode, done.stdout + done.stderr, culprits, absent, before)

    return run
