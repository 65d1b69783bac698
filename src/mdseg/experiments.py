"""Expand the config's experiment grid into concrete experiments with stable ids.

An id names method, backbone and training datasets by their one-letter codes, e.g.
``multi_ce-hrnet_w18_small_v2-C+I+B+M``. An entry's ``init: <method>`` starts each of its runs
from that method's run of the same backbone and training set (C-R BCE fine-tunes the cosine
model: UniSeg's second_stage.py); ``relations: <training set>`` gives them the class relations
computed once from the ``init`` method's run on that training set (UniSeg §3.3: fixed "in all
the experiments"), of which each run keeps its own datasets' classes. Both become experiment
ids in the expanded spec.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from mdseg.datasets.info import DATASETS, code_of, key_of_code
from mdseg.methods import METHODS
from mdseg.models.backbones import BACKBONES


def parse_train_set(text: str) -> list[str]:
    """``"C+I+B"`` or ``"cityscapes+idd+bdd"`` → dataset keys."""
    keys = []
    for part in text.split("+"):
        keys.append(part if part in DATASETS else key_of_code(part))
    if len(set(keys)) != len(keys):
        raise ValueError(f"training set {text!r} repeats a dataset")
    return keys


def experiment_id(method: str, backbone: str, train: list[str]) -> str:
    return f"{method}-{backbone}-{'+'.join(code_of(k) for k in train)}"


def expand_experiments(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """All experiments of the config, by id; each carries its full training settings."""
    experiments: dict[str, dict[str, Any]] = {}
    for n, entry in enumerate(config["experiments"]):
        for method, backbone, train_text in itertools.product(
            entry["methods"], entry["backbones"], entry["train"]
        ):
            METHODS[method]
            BACKBONES[backbone]
            train = parse_train_set(train_text)
            exp_id = experiment_id(method, backbone, train)
            if exp_id in experiments:
                raise ValueError(f"experiments[{n}]: {exp_id} is already defined by another entry")
            training = copy.deepcopy(config["training"])
            training.update(entry.get("training", {}))
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
                **_sources(entry, n, method, backbone, train),
            }
    for exp in experiments.values():
        for key in ("init", "relations"):
            if key in exp and exp[key] not in experiments:
                raise ValueError(f"{exp['id']}: its {key} run {exp[key]} is not an experiment")
    return experiments


def _sources(
    entry: dict[str, Any], n: int, method: str, backbone: str, train: list[str]
) -> dict[str, str]:
    """The ``init`` and ``relations`` experiment ids of one run of entry ``n``."""
    sources = {}
    if "init" in entry:
        sources["init"] = experiment_id(entry["init"], backbone, train)
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
        sources["relations"] = experiment_id(entry["init"], backbone, source)
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
