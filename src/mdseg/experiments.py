"""Expand the config's experiment grid into concrete experiments with stable ids.

An id names method, backbone and training datasets by their one-letter codes, e.g.
``multi_ce-hrnet_w18_small_v2-C+I+B+M``. An entry with ``seeds: [0, 1, 2]`` runs once per seed:
the suffix ``-s<seed>`` (``...-C+I+B+M-s1``) marks a run trained with ``training.seed`` = that
seed, one independent reproduction of the whole pipeline, so tables can pool a claim's runs by
seed; an id without a suffix is a seedless run, trained with the config's ``training.seed``.
:func:`parse_experiment_id` is the one reader of ids.

An entry's ``init: <method>`` starts each of its runs from that method's run of the same
backbone, training set and seed (C-R BCE fine-tunes the cosine model: UniSeg's
second_stage.py); ``relations: <training set>`` gives them the class relations computed once
from the ``init`` method's run on that training set and seed (UniSeg §3.3: fixed "in all the
experiments"), of which each run keeps its own datasets' classes. Both become experiment ids in
the expanded spec.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mdseg.datasets.info import DATASETS, code_of, key_of_code
from mdseg.errors import one_line

_SEED = re.compile(r"s(0|[1-9][0-9]*)")


def parse_train_set(text: str) -> list[str]:
    """``"C+I+B"`` or ``"cityscapes+idd+bdd"`` → dataset keys."""
    keys = []
    for part in text.split("+"):
        keys.append(part if part in DATASETS else key_of_code(part))
    if len(set(keys)) != len(keys):
        raise ValueError(f"training set {text!r} repeats a dataset")
    return keys


def experiment_id(method: str, backbone: str, train: list[str], seed: int | None = None) -> str:
    """``<method>-<backbone>-<codes>``, with ``-s<seed>`` for a run of a ``seeds`` entry."""
    base = f"{method}-{backbone}-{'+'.join(code_of(k) for k in train)}"
    return base if seed is None else f"{base}-s{seed}"


def parse_experiment_id(exp_id: str) -> tuple[str, str, list[str], int | None]:
    """Method, backbone, training-set dataset keys and seed (None: seedless) of an id."""
    parts = exp_id.split("-")
    seed = None
    if len(parts) == 4 and (match := _SEED.fullmatch(parts[3])):
        seed = int(match[1])
        parts = parts[:3]
    if len(parts) != 3 or not all(parts):
        raise ValueError(
            f"experiment id {exp_id!r}: expected <method>-<backbone>-<codes>[-s<seed>], "
            "e.g. null_bce-hrnet_w18_small_v2-C+I+B+M-s1"
        )
    method, backbone, codes = parts
    return method, backbone, parse_train_set(codes), seed


def expand_experiments(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """All experiments of the config, by id; each carries its full training settings."""
    experiments: dict[str, dict[str, Any]] = {}
    for n, entry in enumerate(config["experiments"]):
        for method, backbone, train_text, seed in itertools.product(
            entry["methods"], entry["backbones"], entry["train"], _seeds(entry, n)
        ):
            try:
                check_names(method, backbone)
                train = parse_train_set(train_text)
            except (KeyError, ValueError) as err:
                raise ValueError(f"experiments[{n}]: {one_line(err)}") from None
            exp_id = experiment_id(method, backbone, train, seed)
            if exp_id in experiments:
                raise ValueError(f"experiments[{n}]: {exp_id} is already defined by another entry")
            training = copy.deepcopy(config["training"])
            training.update(entry.get("training", {}))
            if seed is not None:
                training["seed"] = seed
            experiments[exp_id] = {
                "id": exp_id,
                "method": method,
                "backbone": backbone,
                "weights": config["backbones"].get(backbone, {}).get("weights"),
                "train": train,
                "method_options": entry.get("method_options", {}),
                "evaluate": list(
                    dict.fromkeys([*train, *entry.get("evaluate", config["datasets"]["evaluate"])])
                ),
                "training": training,
                **_sources(entry, n, method, backbone, train, seed),
            }
    for exp in experiments.values():
        for key in ("init", "relations"):
            if key in exp and exp[key] not in experiments:
                seeded = parse_experiment_id(exp[key])[3] is not None
                hint = " (a seeded run's sources are runs of its seed)" if seeded else ""
                raise ValueError(
                    f"{exp['id']}: its {key} run {exp[key]} is not an experiment{hint}"
                )
    return experiments


def _seeds(entry: dict[str, Any], n: int) -> list[int | None]:
    """Entry ``n``'s seeds, or ``[None]`` (one seedless run) without ``seeds``."""
    if "seeds" not in entry:
        return [None]
    seeds = entry["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"experiments[{n}].seeds: expected a non-empty list, got {seeds!r}")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(
                f"experiments[{n}].seeds: expected integers >= 0, got {seed!r} in {seeds}"
            )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"experiments[{n}].seeds: {seeds} repeats a seed")
    if "seed" in entry.get("training", {}):
        raise ValueError(
            f"experiments[{n}]: set seeds or training.seed, not both (seeds sets each run's "
            "training.seed)"
        )
    return seeds


def _sources(
    entry: dict[str, Any], n: int, method: str, backbone: str, train: list[str], seed: int | None
) -> dict[str, str]:
    """The ``init`` and ``relations`` experiment ids of one run of entry ``n``: runs of the same
    seed."""
    sources = {}
    if "init" in entry:
        sources["init"] = experiment_id(entry["init"], backbone, train, seed)
    if "relations" in entry:
        if "init" not in entry:
            raise ValueError(
                f"experiments[{n}]: relations come from the init method's run; set init"
            )
        source = parse_train_set(entry["relations"])
        if not set(train) <= set(source):
            raise ValueError(
                f"experiments[{n}]: relations from {entry['relations']} do not cover the "
                f"datasets of {'+'.join(code_of(k) for k in train)}"
            )
        sources["relations"] = experiment_id(entry["init"], backbone, source, seed)
    if method == "cr_bce" and entry.get("method_options", {}).get("schedule", "finetune") == (
        "finetune"
    ):
        missing = [k for k in ("init", "relations") if k not in entry]
        if missing:
            raise ValueError(
                f"experiments[{n}]: cr_bce fine-tunes a cosine model with fixed relations "
                f"(schedule finetune) and needs {missing}; or set method_options.schedule: in_run"
            )
    return sources


def datasets_used(config: dict[str, Any], experiments: dict[str, dict[str, Any]]) -> list[str]:
    """Every dataset some experiment trains or evaluates on, in registry order."""
    used = {k for e in experiments.values() for k in (*e["train"], *e["evaluate"])}
    return [k for k in DATASETS if k in used]


@functools.cache
def _experiment_schema() -> dict[str, Any]:
    text = resources.files("mdseg").joinpath("data/experiment.schema.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def _experiment_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_experiment_schema())


def check_names(method: str, backbone: str) -> None:
    """Refuse an unknown method or backbone, by the experiment schema's lists.

    The schema, not the registries, so that expanding a config (which the workflow does while it
    parses) imports no torch; tests/test_experiments.py keeps the two in step.
    """
    known = _experiment_schema()["properties"]
    if method not in known["method"]["enum"]:
        raise KeyError(f"unknown method {method!r}; known: {', '.join(known['method']['enum'])}")
    if not re.fullmatch(known["backbone"]["pattern"], backbone):
        raise KeyError(f"unknown backbone {backbone!r}; known: {known['backbone']['pattern']}")


def check_experiment(experiment: Any, source: str | Path) -> None:
    """Refuse an experiment that the workflow's schema would refuse, naming the key in ``source``.

    ``mdseg train`` runs without the workflow too, so it checks ``experiment.json`` itself with
    the schema the workflow config's ``training`` block uses (``data/experiment.schema.yaml``).
    """
    errors = sorted(_experiment_validator().iter_errors(experiment), key=lambda e: e.path)
    if errors:
        from jsonschema.exceptions import best_match

        err = best_match(errors)
        key = ".".join(map(str, err.absolute_path)) or "(top level)"
        raise ValueError(f"{source}: {key}: {err.message}")
