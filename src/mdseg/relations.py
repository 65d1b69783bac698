"""``mdseg relations``: UniSeg's class relations (eq. 6-7) from a trained cosine model, once.

The paper fixes the generated relations "for each dataset in all the experiments" (§3.3); the
authors collect them with their fully trained cosine model over a full pass of the training
loader (cosine_stats_collector.py, trainers/stats_collector_trainer.py) and every second stage
reads that one file (second_stage_config.yaml ``distribution_path``). Here the statistics pass
covers each training split at the model's training scale (``training.resize_short_side``,
``crop_size`` tiles), split over the ranks of a torchrun job, and writes into ``out_dir``:

- ``relations.pt``: what ``cr_bce`` runs read (``mdseg train --relations``): the model id, the
  statistic, the datasets' classes, the union, the similarities per dataset (NaN rows for classes
  without pixels), the pixel counts, the images used and τ;
- ``relations.csv``: the generated pairs (:data:`~mdseg.methods.cr_bce.RELATION_FIELDS`);
- ``classes.csv``: one row per (dataset, class): pixels, own score, best class and score, and
  ``no pixels`` for a class the pass never saw (it can generate no relation).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from mdseg import distributed
from mdseg.build import load_model, resolve_device
from mdseg.data import SplitDataset
from mdseg.io import atomic_path, save_torch
from mdseg.label_space import normalise
from mdseg.methods.cr_bce import (
    RELATION_FIELDS,
    ClassRelationalBCE,
    choose_tau,
    class_similarities,
    own_union_ids,
    statistic_images,
)

CLASS_FIELDS = ("dataset", "class", "pixels", "own_score", "best_class", "best_score", "status")
NO_PIXELS = "no pixels"


def class_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (dataset, class) of a relations payload: its pixels and where its scores peak."""
    union = payload["classes"]
    index = {normalise(n): u for u, n in enumerate(union)}
    rows = []
    for key, classes in payload["datasets"].items():
        sims, pixels = payload["similarity"][key], payload["pixels"][key]
        for c, name in enumerate(classes):
            row = {"dataset": key, "class": name, "pixels": int(pixels[c])}
            if pixels[c] == 0:
                rows.append({**row, "own_score": "", "best_class": "", "best_score": ""})
                rows[-1]["status"] = NO_PIXELS
                continue
            own = index[normalise(name)]
            best = int(sims[c].argmax())
            rows.append(
                {
                    **row,
                    "own_score": round(float(sims[c, own]), 4),
                    "best_class": union[best],
                    "best_score": round(float(sims[c, best]), 4),
                    "status": "",
                }
            )
    return rows


def write_relations(payload: dict[str, Any], out_dir: Path) -> list[Path]:
    """``relations.pt``, ``relations.csv`` and ``classes.csv`` of ``payload`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pt, pairs, classes = (out_dir / n for n in ("relations.pt", "relations.csv", "classes.csv"))
    save_torch(payload, pt)
    method = ClassRelationalBCE(payload["datasets"], relations=payload)
    for path, fields, rows in (
        (pairs, RELATION_FIELDS, method.relation_rows()),
        (classes, CLASS_FIELDS, class_rows(payload)),
    ):
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return [pt, pairs, classes]


def compute_relations(
    model_path: Path,
    datasets_dir: Path,
    out_dir: Path,
    statistic: str = "cosine",
    max_images: int | None = None,
    device: str = "auto",
) -> list[Path]:
    """Eq. 7 with the model at ``model_path`` over its training splits, τ and eq. 6; rank 0
    writes the files (see the module docstring)."""
    ctx = distributed.init(resolve_device(device))
    where = distributed.local_device(device, ctx)
    method, model, state = load_model(model_path)
    model.to(where)
    cfg = state["experiment"]["training"]
    torch.set_num_threads(cfg["threads"])
    splits = [SplitDataset(datasets_dir / k, "train") for k in method.datasets]
    similarity, pixels = class_similarities(
        model,
        splits,
        len(method.classes),
        max_images,
        where,
        ctx,
        cfg["crop_size"],
        cfg.get("resize_short_side"),
        cfg.get("workers", 0),
        statistic,
    )
    own = own_union_ids([s.classes for s in splits], method.classes)
    payload = {
        "model": state["experiment"]["id"],
        "statistic": statistic,
        "datasets": method.dataset_classes,
        "classes": method.classes,
        "similarity": dict(zip(method.datasets, similarity, strict=True)),
        "pixels": dict(zip(method.datasets, pixels, strict=True)),
        "images": {
            k: len(statistic_images(len(s), max_images))
            for k, s in zip(method.datasets, splits, strict=True)
        },
        "tau": choose_tau(similarity, own),
    }
    paths = write_relations(payload, out_dir) if ctx.is_main else []
    distributed.barrier(ctx)
    distributed.shutdown(ctx)
    return paths
