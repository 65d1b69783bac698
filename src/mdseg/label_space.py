"""Label spaces: unions by class name, id lookup tables, and name matching across datasets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mdseg.io import IGNORE_ID


def normalise(name: str) -> str:
    """The form under which two class names count as the same class."""
    return " ".join(name.lower().split())


def union_by_name(spaces: Sequence[Sequence[str]]) -> list[str]:
    """Union of label spaces by normalised name, in first-seen order (UniSeg's Y_u)."""
    seen: dict[str, str] = {}
    for classes in spaces:
        for name in classes:
            seen.setdefault(normalise(name), name)
    return list(seen.values())


def lookup_table(source: Sequence[str], target: Sequence[str]) -> torch.Tensor:
    """A 256-entry LUT sending each ``source`` id to the id of the same-named ``target`` class.

    Ids without a counterpart, and the ignore id, map to the ignore id.
    """
    index = {normalise(n): i for i, n in enumerate(target)}
    lut = torch.full((256,), IGNORE_ID, dtype=torch.long)
    for i, name in enumerate(source):
        if normalise(name) in index:
            lut[i] = index[normalise(name)]
    return lut


def match_classes(
    target: Sequence[str], model: Sequence[str], aliases: dict[str, list[str]] | None = None
) -> dict[int, list[int]]:
    """For each target class id, the model class ids that stand for it.

    A model class stands for a target class when their names are equal after normalisation, or the
    model's name is one of the target class's declared aliases (e.g. CamVid ``Pedestrian`` →
    ``person``). Target classes with no counterpart are left out: evaluation ignores them.
    """
    aliases = {normalise(k): [normalise(a) for a in v] for k, v in (aliases or {}).items()}
    model_index: dict[str, list[int]] = {}
    for j, name in enumerate(model):
        model_index.setdefault(normalise(name), []).append(j)
    matches: dict[int, list[int]] = {}
    for i, name in enumerate(target):
        key = normalise(name)
        found = [j for n in (key, *aliases.get(key, [])) for j in model_index.get(n, [])]
        if found:
            matches[i] = sorted(set(found))
    return matches
