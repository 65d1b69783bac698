"""What identifies a training run, so a checkpoint resumes only the experiment that wrote it.

The fingerprint is the experiment spec minus what cannot change the trained weights: where and
how fast it runs (``threads``, ``workers``, ``device``), how often it checkpoints, memory
options that recompute the same arithmetic (``activation_checkpointing``, ``channels_last``),
what it reports while it trains (``log_every``, ``tensorboard``, ``val_every``, ``val_images``:
validation leaves the run bit-identical) and the evaluation list (training never reads it).
Optional training keys are left out while they hold their default, so writing a default out,
or a later mdseg adding an option whose default keeps the former behaviour, does not change
the fingerprint. Everything else (method, options, backbone and its initial weights,
datasets, every other training setting, precision and ``accumulate`` among them) does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

IGNORED_TRAINING = (
    "threads",
    "workers",
    "device",
    "checkpoint_every",
    "activation_checkpointing",
    "channels_last",
    "log_every",
    "tensorboard",
    "val_every",
    "val_images",
)
IGNORED_TOP = ("evaluate",)
TRAINING_DEFAULTS: dict[str, Any] = {
    "precision": "fp32",
    "accumulate": 1,
    "resize_short_side": None,
    "rotate_degrees": 0,
    "blur_probability": 0,
    "blur_sigmas": [0, 1, 2, 3, 4],
    "crop_fit": "pad",
    "backbone_lr_multiplier": 1.0,
    "clip_grad_norm": None,
}


def run_spec(experiment: dict[str, Any]) -> dict[str, Any]:
    """The part of ``experiment`` that determines the trained weights (see the module doc)."""
    spec = {k: v for k, v in experiment.items() if k not in IGNORED_TOP}
    spec["training"] = {
        k: v
        for k, v in experiment["training"].items()
        if k not in IGNORED_TRAINING and not (k in TRAINING_DEFAULTS and TRAINING_DEFAULTS[k] == v)
    }
    return spec


def fingerprint(spec: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a :func:`run_spec`."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with its omitted training defaults written out, for reporting changes."""
    if "training" not in spec:
        return spec
    return {**spec, "training": {**TRAINING_DEFAULTS, **spec["training"]}}


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two specs (dotted keys)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_resumable(state: dict[str, Any], experiment: dict[str, Any], path: str) -> None:
    """Refuse to resume checkpoint ``state`` (read from ``path``) for a changed experiment."""
    spec = run_spec(experiment)
    if state.get("fingerprint") == fingerprint(spec):
        return
    if "fingerprint" not in state:
        what = "it records no experiment fingerprint (written by an older mdseg)"
    else:
        changed = differences(_with_defaults(state.get("run_spec", {})), _with_defaults(spec))
        what = "the experiment changed since: " + ("; ".join(changed) or "unknown fields")
    raise RuntimeError(
        f"{path}: will not resume {experiment['id']}: {what}. Resuming would mix two runs. "
        f"To start over, delete the checkpoint (rm {path}) and rerun; to continue it, restore "
        f"the experiment settings it was written with."
    )
