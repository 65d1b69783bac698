"""Class names of every dataset in canonical training-id order, and cross-dataset name aliases.

The lists live as package data in ``mdseg/data/classnames/<key>.txt`` (line index = training id);
``aliases.yaml`` beside them maps a dataset's class to equivalent names in other label spaces.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import yaml


def _folder() -> Traversable:
    return resources.files("mdseg").joinpath("data").joinpath("classnames")


def known_keys() -> list[str]:
    """Dataset keys that have a class-name list, sorted."""
    return sorted(p.name[: -len(".txt")] for p in _folder().iterdir() if p.name.endswith(".txt"))


@cache
def _load(key: str) -> tuple[str, ...]:
    path = _folder().joinpath(f"{key}.txt")
    if not path.is_file():
        raise KeyError(f"no class names for dataset {key!r}; known: {', '.join(known_keys())}")
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"{key}.txt: class names must be non-empty and unique")
    return names


def load_classnames(key: str) -> list[str]:
    """Class names of dataset ``key``; list index = canonical training id."""
    return list(_load(key))


@cache
def _aliases() -> dict[str, dict[str, list[str]]]:
    text = _folder().joinpath("aliases.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def load_aliases() -> dict[str, dict[str, list[str]]]:
    """``{dataset: {class name: [equivalent names in other datasets' label spaces]}}``."""
    return {ds: {c: list(v) for c, v in m.items()} for ds, m in _aliases().items()}
