"""Evaluate a trained model on one dataset's split in that dataset's own label space.

The model's class scores are sliced to the classes the dataset shares with the model (by name,
plus the dataset's declared aliases), argmax is taken over those, and ground-truth pixels of
classes the model cannot predict are ignored — UniSeg's protocol for unseen datasets, which
reduces to ordinary evaluation on a training dataset. Images are scored as
:class:`mdseg.inference.Inference` says (whole, or by sliding windows), chunk by chunk of label
rows, so no image's full-resolution scores are ever held.

:class:`Scoring` holds the choices the papers' protocols differ on: the resolution scores are
compared with labels at, how empty-union classes enter the mean, and how a class named by
several aliases is scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdseg.build import load_model, resolve_device
from mdseg.data import SplitDataset, same_size_batches
from mdseg.datasets.classnames import load_aliases
from mdseg.inference import Inference, label_scores, nearest_resized, scaled_size, split_batch
from mdseg.io import IGNORE_ID, write_json
from mdseg.label_space import normalise
from mdseg.methods import Method
from mdseg.metrics import EMPTY_UNION, confusion, iou_from_confusion, mean_iou
from mdseg.models.segmentor import Segmentor
from mdseg.progress import progress

SCORE_AT = ("label", "inference")
ALIASES = ("max", "one_channel")


@dataclass(frozen=True)
class Scoring:
    """How predictions are scored (config ``evaluation``).

    ``score_at``: ``label`` compares scores resampled to the labels' native size (the field's
    usual practice, MSeg's); ``inference`` compares at the size the image is scored at, the
    labels resized there by nearest neighbour, as UniSeg's evaluator does (numpee/UniSeg
    ``transformations/__init__.py`` ``transform_factory_test``: ``ScaleMin(1080)`` resizes image
    and mask before ``cvpr_sliding_evaluation.py`` scores them).
    ``empty_union``: see :func:`mdseg.metrics.mean_iou` (``skip``, or UniSeg's ``zero``).
    ``aliases``: ``max`` scores a class by the best of every model class its name or aliases
    match (CamVid ``Car`` = car/truck/bus); ``one_channel`` by one channel, its own name's or
    else its first alias the model has (:func:`one_channel_aliases`), as UniSeg's evaluator.
    """

    score_at: str = "label"
    empty_union: str = "skip"
    aliases: str = "max"

    def __post_init__(self) -> None:
        for key, value, allowed in (
            ("score_at", self.score_at, SCORE_AT),
            ("empty_union", self.empty_union, EMPTY_UNION),
            ("aliases", self.aliases, ALIASES),
        ):
            if value not in allowed:
                raise ValueError(f"evaluation.{key} must be one of {allowed}, got {value!r}")


def one_channel_aliases(
    classes: list[str], aliases: dict[str, list[str]], model_classes: list[str]
) -> dict[str, list[str]]:
    """Aliases cut to one model class per target class: none where the model has the class's
    own name, else the first of its aliases (in ``aliases.yaml`` order) that the model has.

    UniSeg's evaluator matches each class of an unseen dataset to one channel by name
    (numpee/UniSeg ``evaluators/paper_evaluator.py`` with ``datasets/dataset_utils.py``
    ``dataset_categories["camvid"]``, ``["camvid_cib"]``): CamVid's Bicyclist is the union's
    ``bicyclist`` (Mapillary's) or, without Mapillary, ``rider``; Car is ``car`` alone.
    """
    have = {normalise(n) for n in model_classes}
    by_name = {normalise(k): v for k, v in aliases.items()}
    out: dict[str, list[str]] = {}
    for name in classes:
        if normalise(name) in have:
            out[name] = []
            continue
        first = next((a for a in by_name.get(normalise(name), []) if normalise(a) in have), None)
        out[name] = [first] if first else []
    return out


def sliced_prediction(scores: torch.Tensor, matches: dict[int, list[int]]) -> torch.Tensor:
    """Argmax over the shared classes; returns target-dataset ids ``[B, H, W]``.

    A target class standing for several model classes takes the best of their scores.
    """
    target_ids = sorted(matches)
    sliced = torch.stack([scores[:, matches[t]].amax(dim=1) for t in target_ids], dim=1)
    lut = torch.tensor(target_ids, device=scores.device)
    return lut[sliced.argmax(dim=1)]


def evaluate_many(
    model_path: Path,
    dataset_keys: list[str],
    datasets_dir: Path,
    out_dir: Path,
    *,
    split: str = "val",
    inference: Inference | None = None,
    device: str = "auto",
    threads: int = 1,
    workers: int = 0,
    scoring: Scoring | None = None,
) -> Iterator[dict[str, Any]]:
    """Evaluate one saved model on prepared datasets (the workflow: one per job); write
    ``<out_dir>/<key>.json``. ``workers`` DataLoader processes decode the images.

    Every dataset's split is checked (manifest, list) before the model is loaded, and a model
    file that cannot be loaded stops with its path: nothing is written then.
    """
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    splits = {key: SplitDataset(Path(datasets_dir) / key, split) for key in dataset_keys}
    method, model, state = load_model(model_path, str(dev))
    aliases = load_aliases()
    for key, data in splits.items():
        result = evaluate_dataset(
            method,
            model,
            data,
            aliases.get(key, {}),
            dev,
            inference or Inference(),
            desc=f"{state['experiment']['id']} on {key}",
            workers=workers,
            scoring=scoring,
        )
        result.update(
            experiment=state["experiment"]["id"],
            dataset=key,
            split=split,
            backbone_init=state["backbone_init"],
        )
        write_json(Path(out_dir) / f"{key}.json", result)
        yield result


def evaluate_dataset(
    method: Method,
    model: Segmentor,
    data: SplitDataset,
    aliases: dict[str, list[str]],
    device: torch.device,
    inference: Inference | None = None,
    desc: str = "",
    workers: int = 0,
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """Per-class IoU (percent), intersections, unions and mIoU of ``model`` on ``data``.

    Two protocols, both in the result: ``miou`` scores only the classes the dataset shares with
    the model (UniSeg's unseen-dataset protocol; other ground truth is ignored), and
    ``miou_all_classes`` keeps every ground-truth class, so classes the model cannot predict
    count with IoU 0 (AutoUniSeg's cross-dataset Table 3). A dataset sharing no class with the
    model is skipped rather than an error, so an evaluation matrix can be complete: no image is
    scored, ``skipped`` gives the reason, ``miou`` is null and ``miou_all_classes`` is 0 (every
    labelled class has IoU 0). ``skipped`` is null for a dataset that was scored.

    The method says how its scores map to the dataset's classes (``target_matches``); the first
    mapping gives the top-level figures, further ones (e.g. a zero-shot mapping) go under
    ``variants`` from the same forward passes.
    """
    inference, scoring = inference or Inference(), scoring or Scoring()
    if scoring.aliases == "one_channel":
        aliases = one_channel_aliases(data.classes, aliases, method.classes)
    mappings = method.target_matches(
        model, data.dir.name, data, aliases, device, inference=inference
    )
    n = len(data.classes)
    fulls = {name: torch.zeros(n, n, dtype=torch.long) for name in mappings}
    if any(mappings.values()):
        _accumulate(method, model, data, mappings, fulls, device, inference, desc, workers, scoring)
    scored_at = inference if scoring.score_at == "inference" else None
    gt_pixels = _gt_pixels(data, scored_at) if not all(mappings.values()) else None
    results = {
        name: _scores(
            data.classes, method.classes, matches, fulls[name], gt_pixels, scoring.empty_union
        )
        for name, matches in mappings.items()
    }
    primary, *others = mappings
    return {
        "skipped": None if any(mappings.values()) else no_shared_class(data, method),
        "images": len(data),
        "classes": data.classes,
        "mapping": primary,
        **results[primary],
        "variants": {name: results[name] for name in others},
        "scoring": asdict(scoring),
        "source": data.manifest["source"],
    }


def no_shared_class(data: SplitDataset, method: Method) -> str:
    """Why a dataset sharing no class with the model is skipped (its result JSON and log)."""
    return (
        f"no class of {data.dir.name} ({len(data.classes)} classes) matches one of the model's "
        f"{len(method.classes)} classes by name or alias, so there is nothing to predict: miou "
        "is null and miou_all_classes counts every labelled class as IoU 0"
    )


def _gt_pixels(data: SplitDataset, scored_at: Inference | None = None) -> np.ndarray:
    """Labelled pixels per class, counted at the size ``scored_at`` scores (else native)."""
    n = len(data.classes)
    total = torch.zeros(n, dtype=torch.long)
    for _, label in (data[i] for i in range(len(data))):
        if scored_at is not None:
            label = nearest_resized(label, scaled_size(*label.shape[-2:], scored_at))
        total += torch.bincount(label[label != IGNORE_ID].flatten(), minlength=n)[:n]
    return total.numpy()


def _scores(
    classes: list[str],
    model_classes: list[str],
    matches: dict[int, list[int]],
    full: torch.Tensor,
    gt_pixels: np.ndarray | None,
    empty_union: str = "skip",
) -> dict[str, Any]:
    n = len(classes)
    if matches:
        iou_all = iou_from_confusion(full.numpy())[0]
        gt_pixels = full.sum(1).numpy()
    else:  # nothing can be predicted: every labelled class has IoU 0
        iou_all = np.where(gt_pixels > 0, 0.0, np.nan)
    # the shared-class protocol ignores ground truth of unshared classes: drop their rows
    shared = full.clone()
    shared[[t for t in range(n) if t not in matches]] = 0
    iou, inter, union = iou_from_confusion(shared.numpy())
    return {
        "evaluated_classes": [classes[t] for t in sorted(matches)],
        "matched_model_classes": {
            classes[t]: [model_classes[j] for j in js] for t, js in sorted(matches.items())
        },
        "iou": {c: _rounded(v) for c, v in zip(classes, iou, strict=True)},
        "intersection": {c: int(v) for c, v in zip(classes, inter, strict=True)},
        "union": {c: int(v) for c, v in zip(classes, union, strict=True)},
        "gt_pixels": {c: int(v) for c, v in zip(classes, gt_pixels, strict=True)},
        "miou": _rounded(mean_iou(iou[sorted(matches)], empty_union)),
        "iou_all_classes": {c: _rounded(v) for c, v in zip(classes, iou_all, strict=True)},
        "miou_all_classes": _rounded(mean_iou(iou_all, empty_union)),
    }


def _accumulate(
    method: Method,
    model: Segmentor,
    data: SplitDataset,
    mappings: dict[str, dict[int, list[int]]],
    fulls: dict[str, torch.Tensor],
    device: torch.device,
    inference: Inference,
    desc: str,
    workers: int = 0,
    scoring: Scoring | None = None,
) -> None:
    """Add every image's confusion (all ground-truth classes) to ``fulls``, per mapping.

    Small images are scored several at a time (:func:`mdseg.inference.split_batch`), large
    ones alone; each chunk of the label is reduced to predictions as soon as it is scored.
    Under ``score_at: inference`` the labels are first resized to the scored size.
    """
    at_inference = (scoring or Scoring()).score_at == "inference"

    def score(images: torch.Tensor) -> torch.Tensor:
        return method.scores(model, images)

    active = {name: matches for name, matches in mappings.items() if matches}
    with torch.inference_mode(), progress(len(data), desc, unit="img") as bar:
        for batch, batch_labels in same_size_batches(data, 8, workers=workers):
            for images, labels in split_batch(batch, batch_labels):
                size = tuple(labels.shape[-2:])
                if at_inference:
                    size = scaled_size(*size, inference)
                    labels = nearest_resized(labels, size)
                chunks = label_scores(score, images.to(device), size, inference)
                for (rows, cols), scores in chunks:
                    target = labels[:, rows, cols]
                    for name, matches in active.items():
                        pred = sliced_prediction(scores, matches).cpu()
                        fulls[name] += confusion(pred, target, len(data.classes))
                bar.update(len(labels))


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value) * 100, 4)
