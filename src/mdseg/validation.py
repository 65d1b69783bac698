"""mIoU during training (``training.val_every``) on the first images of each training dataset's
``val`` split, scored as :mod:`mdseg.evaluate` scores a model.

A figure to watch a run by, not to pick a checkpoint with: the workflow evaluates the final
model. Images are scored in windows of the training crop at the training scale, so validation
needs no more memory than a training step. The caller keeps the run unchanged around it (RNG
state, the modules' train/eval modes), so a run trains to the same weights with or without it.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from mdseg.data import SplitDataset
from mdseg.datasets.classnames import load_aliases
from mdseg.evaluate import evaluate_dataset
from mdseg.inference import Inference
from mdseg.methods import Method
from mdseg.models.segmentor import Segmentor


def val_subsets(dataset_dirs: dict[str, Path], images: int) -> dict[str, SplitDataset]:
    """The first ``images`` of each dataset's ``val`` split (all of a smaller split)."""
    subsets = {}
    for key, folder in dataset_dirs.items():
        data = SplitDataset(folder, "val")
        part = copy.copy(data)
        part.pairs = data.pairs[:images]
        subsets[key] = part
    return subsets


def subset_miou(
    method: Method,
    model: Segmentor,
    subsets: dict[str, SplitDataset],
    device: torch.device,
    inference: Inference,
) -> tuple[float | None, dict[str, float | None], str]:
    """Mean over the datasets of each one's mIoU (percent), the per-dataset figures, and a note
    of what was scored. A method that cannot score yet (AutoUniSeg before its unified label
    space exists) gives no figures and its reason as the note."""
    aliases = load_aliases()
    began = time.perf_counter()
    try:
        results = {
            key: evaluate_dataset(method, model, data, aliases.get(key, {}), device, inference)
            for key, data in subsets.items()
        }
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:  # the method's own refusal, e.g. AutoUniSeg's stage 1
        return None, {}, f"(skipped: {err})"
    per_dataset = {key: r["miou"] for key, r in results.items()}
    scored = [v for v in per_dataset.values() if v is not None]
    miou = float(np.mean(scored)) if scored else None
    counts = "+".join(str(len(d)) for d in subsets.values())
    return miou, per_dataset, f"({counts} images, {time.perf_counter() - began:.1f}s)"
