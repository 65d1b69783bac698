"""Build an experiment's method and network, fresh or from saved files.

Training, evaluation, relations and export all rebuild the same objects from an experiment
spec (or the copy a ``model.pt`` carries), so they share these builders instead of importing
the trainer. ``REMEDY`` says, per kind of input file, what to do when it is damaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdseg.errors import DamagedFile, about
from mdseg.io import load_torch
from mdseg.methods import METHODS, Method
from mdseg.models.backbones import HRNetBranches
from mdseg.models.segmentor import Segmentor

# what to do about a damaged input file, by kind: delete it so that its rule makes it again
REMEDY = {
    "checkpoint": "delete it to restart this run from step 0 (the run's other files can stay)",
    "model": "delete it and rerun its training (snakemake makes it again)",
    "relations": "delete it and rerun its relations rule (snakemake makes it again)",
    "features": "delete it and rerun the encode_labels rule (snakemake makes it again)",
}


def build_model(method: Method, backbone: str, weights: str | None = None) -> Segmentor:
    """HRNet ``backbone`` (ImageNet ``weights`` or random) with the method's heads."""
    body = HRNetBranches(backbone, weights)
    model = Segmentor(body, {})
    model.heads.update(method.build_heads(model.neck.out_channels))
    return model


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU where there is one, else the CPU; other names as torch reads them."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_text_features(path: Path, keys: list[str]) -> dict[str, torch.Tensor]:
    """Text features of the label descriptions of ``keys`` from ``mdseg encode``'s output."""
    payload = load_torch(path, "label text features", REMEDY["features"])
    if not isinstance(payload, dict) or "datasets" not in payload:
        raise DamagedFile(f"{path}: not a file of label text features; {REMEDY['features']}")
    stored = payload["datasets"]
    missing = [k for k in keys if k not in stored]
    if missing:
        raise KeyError(f"{path}: no text features for {missing}; encoded: {sorted(stored)}")
    return {k: stored[k]["features"] for k in keys}


def method_text_features(
    experiment: dict[str, Any], path: Path | None
) -> dict[str, torch.Tensor] | None:
    """The training datasets' text features if the experiment's method reads them, else None."""
    cls = METHODS[experiment["method"]]
    if not cls.needs_text_features:
        return None
    if path is None:
        raise ValueError(f"{experiment['id']}: method {cls.name!r} needs text features")
    return load_text_features(path, experiment["train"])


def build_method(
    experiment: dict[str, Any],
    dataset_classes: dict[str, list[str]],
    text_features: dict[str, torch.Tensor] | None = None,
    relations: dict[str, Any] | None = None,
) -> Method:
    """The experiment's method over ``dataset_classes``, text features given where it reads them
    and the class relations (:mod:`mdseg.relations`) where it was given a file of them."""
    options = dict(experiment.get("method_options", {}))
    if text_features is not None:
        options["text_features"] = text_features
    if relations is not None:
        options["relations"] = relations
    return METHODS[experiment["method"]](dataset_classes, **options)


def init_from(model: Segmentor, method: Method, path: Path) -> None:
    """Start from another run's trained network, loaded strictly (backbone, neck and heads).

    C-R BCE fine-tunes the cosine Null-BCE model: the authors' second_stage.py loads the first
    stage's ``recent149.pth`` with ``model.load_state_dict`` (strict) before training.
    """
    state = load_torch(path, "a trained model (model.pt)", REMEDY["model"])
    if state["classes"] != method.classes:
        raise ValueError(
            f"{path}: predicts {len(state['classes'])} classes, not the {len(method.classes)} "
            f"of this run's label space"
        )
    model.load_state_dict(state["state_dict"])


def load_model(path: Path, device: str = "cpu") -> tuple[Method, Segmentor, dict[str, Any]]:
    """Rebuild the method and network a training run saved (``model.pt``), weights included.

    A file that loads but holds no model of this version (keys or weights missing) is refused
    like a damaged one, naming it and the way out.
    """
    what = "a trained model (model.pt)"
    state = load_torch(path, what, REMEDY["model"], device)
    with about(path, what, REMEDY["model"]):
        exp = state["experiment"]
        method = build_method(exp, state["dataset_classes"], state.get("text_features"))
        method.load_state_dict(state["method_state"])
        model = build_model(method, exp["backbone"])
        model.load_state_dict(state["state_dict"])
    return method, model.to(device).eval(), state
