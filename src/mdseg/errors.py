"""Expected failures and how ``mdseg`` commands report them.

An expected failure is bad input, not a bug: its message names the file, key, value or host
at fault and what to do. :class:`MdsegError` is the base of those raised here; the command
boundary (:func:`mdseg.cli.main`) also treats the standard ``OSError``, ``ValueError``,
``KeyError``, ``RuntimeError`` and ``EOFError`` as expected, because the library functions
raise them with the path they concern (see :func:`about`). Anything else is reported as
unexpected. Either way the user sees one line, and the traceback only with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class MdsegError(Exception):
    """An expected failure whose message names its culprit and what to do."""


class DamagedFile(MdsegError):
    """A file that exists but cannot be read as what it should be (cut short, wrong format)."""


class NoRoom(MdsegError):
    """A write that found no room: a full disk, a file-size limit or a quota."""


class SplitMismatch(MdsegError):
    """A split list that disagrees with its dataset's manifest (count, checksum) or is empty."""


EXPECTED: tuple[type[BaseException], ...] = (
    MdsegError,
    OSError,
    ValueError,
    KeyError,
    RuntimeError,
    EOFError,
)


def cause_of(err: BaseException | None, match: Callable[[BaseException], bool]) -> Any:
    """The first exception in ``err``'s chain (itself, then its causes) that ``match`` accepts.

    Libraries wrap the error that tells what happened: torch a full disk's ``OSError`` in a
    ``RuntimeError``, Snakemake a schema violation in a ``WorkflowError``.
    """
    while err is not None:
        if match(err):
            return err
        err = err.__cause__ or err.__context__
    return None


def one_line(err: BaseException) -> str:
    """``err`` as a single line: a ``KeyError``'s quotes dropped, newlines folded."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(str(text).split())
    return text or type(err).__name__


@contextmanager
def about(path: str | Path, what: str, remedy: str) -> Iterator[None]:
    """Re-raise a library error met while reading ``path`` as ``DamagedFile`` naming it.

    Library readers (PIL, torch, json, pickle) report a damaged file without its name, e.g.
    ``EOFError`` for a 0-byte ``checkpoint.pt``; the wrapped message says which file, what
    it should have been, and ``remedy``.
    """
    try:
        yield
    except (MdsegError, FileNotFoundError):
        raise
    except Exception as err:
        raise DamagedFile(
            f"{path}: cannot be read as {what} ({type(err).__name__}: {_gist(err)}); {remedy}"
        ) from err


def _gist(err: BaseException, limit: int = 120) -> str:
    """The first sentence of a library's message, at most ``limit`` characters."""
    text = one_line(err)
    first = text.split(". ", 1)[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def schema_error(err: Exception) -> str:
    """A config's schema violation as one line: the key's dotted path and the schema's message.

    Snakemake's own report prints the whole schema and the offending value, which may be a
    signed link; this names the key and redacts any URL.
    """
    from mdseg.secrets import redact

    cause = cause_of(err, lambda e: hasattr(e, "absolute_path"))
    if cause is None:
        return redact(one_line(err))
    key = ".".join(map(str, cause.absolute_path)) or "(top level)"
    return f"config {key}: {redact(one_line(Exception(cause.message)))}"
