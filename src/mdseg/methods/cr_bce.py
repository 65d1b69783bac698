"""``cr_bce``: UniSeg's class-relational BCE (§3.3), all within one experiment's iterations.

1. For the first ``pretrain_fraction`` of the steps the network trains with Null BCE (eq. 4) on a
   cosine classifier (App. G: L2-normalised features and weights, logits ``t * cos``, t = 20).
2. At the switch step, per training dataset i and class c, the mean sigmoid activation of every
   union class over the pixels labelled c gives s_{i,c} (eq. 7), over un-augmented training
   images at the training scale, crop-sized tile by tile, split over the ranks. The paper calls
   s_{i,c} the mean activation of the output layer and puts it in [0, 1]; with logits
   ``t * cos`` that is the sigmoid of the scaled cosine, which is what a BCE-trained cosine
   classifier outputs.
3. τ is the mean of the largest score of every s_{i,c} whose best class lies outside dataset
   i's label space (paper: 0.48 ± 0.01); a label c of dataset i also becomes positive for a union
   class c' outside Y_i when s_{i,c}^{c'} > max(τ, s_{i,c}^{c}) (eq. 6; the paper restricts the
   extra labels to classes of Y_u \\ Y_i, whose Null we replace by 1). No such class anywhere
   means no multi-labels: the run continues with Null BCE (the paper's "N/A" rows).
4. Training goes on with the class-relational BCE (eq. 8). The paper pre-trains a separate
   cosine model only to obtain the relations and trains the C-R BCE model from the backbone's
   initialisation, so by default (``restart``) the network and optimiser state return to step
   0's and the learning-rate schedule starts again (``schedule_start``).

Everything learned (similarities, τ, the step-0 weights while they are needed) lives in the
method state, so a resumed run switches at the same step to the same relations.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mdseg.data import SplitDataset
from mdseg.distributed import Context
from mdseg.inference import all_reduce_sum, rank_share, training_scale_tiles
from mdseg.io import IGNORE_ID, atomic_path
from mdseg.label_space import lookup_table, normalise, union_by_name
from mdseg.methods.base import METHODS, Method, TrainRun
from mdseg.methods.null_bce import label_targets, masked_bce
from mdseg.models.heads import CosineClassifier
from mdseg.models.segmentor import Segmentor

RELATION_FIELDS = ("dataset", "class", "related_dataset", "related_class", "score", "tau")
COSINE_SCALE = 20.0  # t of UniSeg App. G

# (dataset index, class id) -> [(union class id, score)] of its extra positives
Relations = dict[tuple[int, int], list[tuple[int, float]]]


def choose_tau(similarity: list[torch.Tensor], own: list[list[int]]) -> float | None:
    """Mean of the top scores of the s_{i,c} whose best class is not in dataset i's space.

    ``similarity[i]`` is ``[K_i, K_u]`` (rows of classes without pixels are NaN); ``own[i]`` the
    union ids of dataset i's classes. ``None`` when no best class comes from elsewhere.
    """
    tops = []
    for rows, ids in zip(similarity, own, strict=True):
        for row in rows:
            if torch.isnan(row).any():
                continue
            best = int(row.argmax())
            if best not in ids:
                tops.append(float(row[best]))
    return float(np.mean(tops)) if tops else None


def multi_labels(
    similarity: list[torch.Tensor], own: list[list[int]], tau: float | None
) -> Relations:
    """Eq. 6: union classes c' outside Y_i with s_{i,c}^{c'} > max(τ, s_{i,c}^{c})."""
    relations: Relations = {}
    if tau is None:
        return relations
    for i, (rows, ids) in enumerate(zip(similarity, own, strict=True)):
        for c, row in enumerate(rows):
            if torch.isnan(row).any():
                continue
            bar = max(tau, float(row[ids[c]]))
            extra = [(u, float(row[u])) for u in range(len(row)) if u not in ids and row[u] > bar]
            if extra:
                relations[(i, c)] = extra
    return relations


@torch.no_grad()
def similarity_sums(
    model: Segmentor,
    data: SplitDataset,
    indices: list[int],
    union_size: int,
    device: torch.device,
    window: int | None = None,
    short_side: int | None = None,
    workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class of ``data``: the summed sigmoid outputs ``[K, union_size]`` over its pixels in
    ``data[indices]`` and the pixel counts ``[K]`` (float64, on ``device``), tile by tile at
    the training scale (:func:`mdseg.inference.training_scale_tiles`)."""
    k = len(data.classes)
    sums = torch.zeros(k, union_size, dtype=torch.float64, device=device)
    counts = torch.zeros(k, dtype=torch.float64, device=device)
    for images, labels in training_scale_tiles(data, indices, device, window, short_side, workers):
        acts = torch.sigmoid(model(images, head="main")).permute(0, 2, 3, 1)
        labels = labels.flatten()
        valid = labels != IGNORE_ID
        sums.index_add_(0, labels[valid], acts.reshape(-1, union_size)[valid].double())
        counts += torch.bincount(labels[valid], minlength=k)[:k].double()
    return sums, counts


@torch.no_grad()
def class_similarities(
    model: Segmentor,
    splits: list[SplitDataset],
    union_size: int,
    max_images: int,
    device: torch.device,
    ctx: Context | None = None,
    window: int | None = None,
    short_side: int | None = None,
    workers: int = 0,
) -> list[torch.Tensor]:
    """Eq. 7 per dataset: mean sigmoid output of every union class over the pixels of each class.

    Uses up to ``max_images`` evenly spaced, un-augmented training images per dataset, seen at
    the training scale in ``window``-sized tiles; under DDP each rank takes every world-th of
    them and the sums are added over the ranks. Classes without pixels get a NaN row.
    """
    ctx = ctx or Context()
    was_training = model.training
    model.eval()
    result = []
    for data in splits:
        picks = np.unique(np.linspace(0, len(data) - 1, min(len(data), max_images)).round())
        mine = rank_share([int(i) for i in picks], ctx)
        sums, counts = similarity_sums(
            model, data, mine, union_size, device, window, short_side, workers
        )
        all_reduce_sum([sums, counts], ctx)
        mean = (sums / counts[:, None]).float().cpu()
        mean[counts.cpu() == 0] = float("nan")
        result.append(mean)
    model.train(was_training)
    return result


@METHODS.register("cr_bce")
class ClassRelationalBCE(Method):
    name = "cr_bce"

    def __init__(
        self,
        dataset_classes: dict[str, list[str]],
        pretrain_fraction: float = 0.5,
        similarity_images: int = 200,
        restart: bool = True,
        **options: object,
    ) -> None:
        super().__init__(dataset_classes, **options)
        if not 0 < pretrain_fraction < 1:
            raise ValueError(
                f"cr_bce: pretrain_fraction must lie in (0, 1), got {pretrain_fraction}"
            )
        if similarity_images < 1:
            raise ValueError(f"cr_bce: similarity_images must be >= 1, got {similarity_images}")
        self.pretrain_fraction = pretrain_fraction
        self.similarity_images = similarity_images
        self.restart = restart
        self.classes = union_by_name(list(dataset_classes.values()))
        self.own = [
            lookup_table(c, self.classes)[: len(c)].tolist() for c in dataset_classes.values()
        ]
        self.similarity: list[torch.Tensor] | None = None
        self.tau: float | None = None
        self.initial: dict[str, torch.Tensor] | None = None
        self.relations: Relations = {}
        self.targets = label_targets(list(dataset_classes.values()), self.classes)

    def switch_step(self, total_steps: int) -> int:
        """The step at which relations are computed and C-R BCE training starts."""
        if total_steps < 2:
            raise ValueError(f"cr_bce needs at least 2 iterations, got {total_steps}")
        return min(total_steps - 1, max(1, round(self.pretrain_fraction * total_steps)))

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        return {"main": CosineClassifier(in_channels, len(self.classes), COSINE_SCALE)}

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        return masked_bce(model(images, head="main"), labels, dataset_idx, self.targets)

    def schedule_start(self, total_steps: int) -> int:
        """A restarted network gets a fresh warm-up and decay, like a separately trained one."""
        return self.switch_step(total_steps) if self.restart else 0

    def before_step(self, step: int, model: Segmentor, run: TrainRun) -> None:
        if self.similarity is not None:
            return
        if step < self.switch_step(run.total_steps):
            if self.restart and self.initial is None:
                if step:
                    raise RuntimeError(f"cr_bce: resumed at step {step} without step 0's weights")
                self.initial = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            return
        splits = [run.splits[k] for k in self.datasets]
        similarity = class_similarities(
            model,
            splits,
            len(self.classes),
            self.similarity_images,
            run.device,
            run.ctx,
            run.crop_size,
            run.resize_short_side,
            run.workers,
        )
        self._set_similarity(similarity)
        if self.restart:
            model.load_state_dict(self.initial)
            run.optimizer.state.clear()
        self.initial = None

    def _set_similarity(self, similarity: list[torch.Tensor]) -> None:
        self.similarity = similarity
        self.tau = choose_tau(similarity, self.own)
        self.relations = multi_labels(similarity, self.own, self.tau)
        related = {key: [u for u, _ in extra] for key, extra in self.relations.items()}
        self.targets = label_targets(list(self.dataset_classes.values()), self.classes, related)

    def state_dict(self) -> dict[str, Any]:
        return {"similarity": self.similarity, "initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"similarity", "initial"}:
            raise ValueError(f"cr_bce: state needs keys similarity, initial; got {sorted(state)}")
        self.initial = state["initial"]
        if state["similarity"] is not None:
            self._set_similarity([s.cpu() for s in state["similarity"]])

    def relation_rows(self) -> list[dict[str, Any]]:
        """One row per generated pair: a pixel of ``class`` is also ``related_class`` of each
        other training dataset that defines that union class."""
        rows = []
        for (i, c), extra in self.relations.items():
            for u, score in extra:
                for j, key in enumerate(self.datasets):
                    names = self.dataset_classes[key]
                    for name in names:
                        if j != i and normalise(name) == normalise(self.classes[u]):
                            rows.append(
                                {
                                    "dataset": self.datasets[i],
                                    "class": self.dataset_classes[self.datasets[i]][c],
                                    "related_dataset": key,
                                    "related_class": name,
                                    "score": round(score, 4),
                                    "tau": round(self.tau, 4),
                                }
                            )
        return sorted(rows, key=lambda r: tuple(str(r[f]) for f in RELATION_FIELDS))

    def write_artefacts(self, model: Segmentor, out_dir: Path) -> list[Path]:
        path = out_dir / "relations.csv"
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=RELATION_FIELDS)
            writer.writeheader()
            writer.writerows(self.relation_rows())
        return [path]
