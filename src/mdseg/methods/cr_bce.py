"""``cr_bce``: UniSeg's class-relational BCE (§3.3, eq. 6-8) and the eq. 7 statistics behind it.

The default protocol (``schedule: finetune``) is the authors' (numpee/UniSeg):

1. A cosine-classifier Null-BCE model (``cosine_bce``: App. G, t = 20) trains for the full
   budget (configs/method/bcenull.yaml: 150 epochs).
2. Eq. 7 with that model (``mdseg relations``, :mod:`mdseg.relations`): per training dataset i
   and class c, the mean output of every union class over the pixels labelled c, over a full
   pass of the training split at the training scale (short side resized, crop-sized tiles,
   split over the ranks). The statistic is the plain cosine, logits / t, as the authors'
   trainers/stats_collector_trainer.py averages ``outputs / scale_factor``; the paper's
   "mean activation" in [0, 1] read as sigmoid(t cos) is the option ``statistic: sigmoid``.
3. τ is the mean of the largest score of every s_{i,c} whose best class lies outside dataset
   i's label space (paper: 0.48 ± 0.01, on its [0, 1] scale); a label c of dataset i also
   becomes positive for a union class c' outside Y_i when s_{i,c}^{c'} > max(τ, s_{i,c}^{c})
   (eq. 6; the paper restricts the extra labels to classes of Y_u \\ Y_i, whose Null we replace
   by 1). No such class anywhere means no multi-labels: the run trains with Null BCE (the
   paper's "N/A" rows). The authors' released second stage (distribution_threshold -1) feeds
   the statistics as soft targets instead; we follow the paper's binary eq. 6.
4. The C-R BCE run starts from the cosine model's weights (the experiment's ``init``) and
   fine-tunes them with eq. 8 for its own budget and optimiser (second_stage.py,
   second_stage_config.yaml: 50 epochs, AdamW lr 1e-3, weight decay 1e-4, poly, no warm-up).
   The relations are computed once, from the C+I+B+M cosine model, and reused by every run
   (§3.3: "fix the generated class relationships s_{i,c} for each dataset in all the
   experiments"); a run on fewer datasets keeps the rows of its datasets and the columns of
   its union, with the same τ, which gives exactly the C+I+B+M pairs among its classes.

Departure kept as an option, ``schedule: in_run``: the project's former protocol within one
experiment. Null BCE on the cosine head for the first ``pretrain_fraction`` of the steps, eq. 7
at the switch step over ``similarity_images`` evenly spaced training images per dataset
(default all) with ``statistic`` (default cosine), then C-R BCE; with ``restart`` (default) the
network and optimiser return to step 0's state and the schedule starts again. The similarities,
τ and (until the switch) the step-0 weights live in the method state, so a resumed run switches
at the same step to the same relations.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mdseg.data import SplitDataset
from mdseg.distributed import Context
from mdseg.inference import all_reduce_sum, rank_share, training_scale_tiles
from mdseg.io import IGNORE_ID, atomic_path
from mdseg.label_space import lookup_table, normalise
from mdseg.losses import label_targets
from mdseg.methods.base import METHODS, TrainRun
from mdseg.methods.null_bce import COSINE_SCALE, CosineNullBCE
from mdseg.models.heads import CosineClassifier
from mdseg.models.segmentor import Segmentor

RELATION_FIELDS = ("dataset", "class", "related_dataset", "related_class", "score", "tau")

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


def own_union_ids(spaces: list[list[str]], union: list[str]) -> list[list[int]]:
    """Union ids of every dataset's classes (Y_i within Y_u), as :func:`choose_tau` and
    :func:`multi_labels` take them."""
    return [lookup_table(c, union)[: len(c)].tolist() for c in spaces]


STATISTICS = ("cosine", "sigmoid")
SCHEDULES = ("finetune", "in_run")


@torch.no_grad()
def similarity_sums(
    model: nn.Module,
    data: SplitDataset,
    indices: list[int],
    union_size: int,
    device: torch.device,
    window: int | None = None,
    short_side: int | None = None,
    workers: int = 0,
    statistic: str = "cosine",
    scale: float = COSINE_SCALE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class of ``data``: the summed outputs ``[K, union_size]`` over its pixels in
    ``data[indices]`` and the pixel counts ``[K]`` (float64, on ``device``), tile by tile at
    the training scale (:func:`mdseg.inference.training_scale_tiles`).

    The output is ``statistic`` of the logits: ``cosine`` = logits / ``scale`` (the cosine head's
    t), ``sigmoid`` = sigmoid(logits).
    """
    if statistic not in STATISTICS:
        raise ValueError(f"eq. 7 statistic must be one of {STATISTICS}, got {statistic!r}")
    k = len(data.classes)
    sums = torch.zeros(k, union_size, dtype=torch.float64, device=device)
    counts = torch.zeros(k, dtype=torch.float64, device=device)
    for images, labels in training_scale_tiles(data, indices, device, window, short_side, workers):
        logits = model(images, head="main")
        acts = torch.sigmoid(logits) if statistic == "sigmoid" else logits / scale
        acts = acts.permute(0, 2, 3, 1)
        labels = labels.flatten()
        valid = labels != IGNORE_ID
        sums.index_add_(0, labels[valid], acts.reshape(-1, union_size)[valid].double())
        counts += torch.bincount(labels[valid], minlength=k)[:k].double()
    return sums, counts


def statistic_images(size: int, max_images: int | None) -> list[int]:
    """The images of a statistics pass: all of them, or ``max_images`` evenly spaced."""
    if max_images is None or max_images >= size:
        return list(range(size))
    return [int(i) for i in np.unique(np.linspace(0, size - 1, max_images).round())]


@torch.no_grad()
def class_similarities(
    model: Segmentor,
    splits: list[SplitDataset],
    union_size: int,
    max_images: int | None,
    device: torch.device,
    ctx: Context | None = None,
    window: int | None = None,
    short_side: int | None = None,
    workers: int = 0,
    statistic: str = "cosine",
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Eq. 7 per dataset: the mean ``statistic`` of every union class over each class's pixels.

    Uses every un-augmented training image (or ``max_images`` evenly spaced ones), seen at the
    training scale in ``window``-sized tiles; under DDP each rank takes every world-th image and
    the sums are added over the ranks. Returns the means ``[K_i, union_size]`` (NaN rows for
    classes without pixels) and the pixel counts ``[K_i]``, on the CPU.
    """
    head = model.heads["main"]
    if statistic == "cosine" and not isinstance(head, CosineClassifier):
        raise ValueError(
            f"the cosine statistic needs a cosine classifier, got {type(head).__name__}"
        )
    scale = getattr(head, "scale", COSINE_SCALE)
    ctx = ctx or Context()
    was_training = model.training
    model.eval()
    means, pixels = [], []
    for data in splits:
        mine = rank_share(statistic_images(len(data), max_images), ctx)
        sums, counts = similarity_sums(
            model, data, mine, union_size, device, window, short_side, workers, statistic, scale
        )
        all_reduce_sum([sums, counts], ctx)
        mean = (sums / counts[:, None]).float().cpu()
        mean[counts.cpu() == 0] = float("nan")
        means.append(mean)
        pixels.append(counts.cpu())
    model.train(was_training)
    return means, pixels


def restrict_relations(
    payload: dict[str, Any], dataset_classes: dict[str, list[str]], union: list[str]
) -> list[torch.Tensor]:
    """The similarities of a relations file (:mod:`mdseg.relations`) for a run's datasets: the
    rows of its datasets, the columns of its union (matched by name)."""
    source = f"relations of {payload.get('model', '?')}"
    columns = {normalise(n): j for j, n in enumerate(payload["classes"])}
    missing = [n for n in union if normalise(n) not in columns]
    if missing:
        raise ValueError(f"{source}: its label space lacks the run's classes {missing}")
    picked = torch.tensor([columns[normalise(n)] for n in union])
    similarity = []
    for key, classes in dataset_classes.items():
        if key not in payload["datasets"]:
            raise ValueError(
                f"{source}: no statistics for dataset {key!r}; it has {sorted(payload['datasets'])}"
            )
        if list(payload["datasets"][key]) != list(classes):
            raise ValueError(f"{source}: the classes of {key!r} differ from its training split's")
        similarity.append(payload["similarity"][key][:, picked])
    return similarity


@dataclass(frozen=True)
class CRBCEOptions:
    """``method_options`` of ``cr_bce``; all but ``schedule`` apply to ``schedule: in_run`` only.

    Args:
        schedule (str, default "finetune"): ``finetune``, the authors' protocol: fine-tune a
            trained ``cosine_bce`` model with the relations file of one (``second_stage.py``);
            ``in_run``: pre-train, relate and train within one run (the former protocol).
        pretrain_fraction (float, default 0.5): share of the steps trained with Null BCE before
            the relations are computed; the former protocol's split of one budget.
        restart (bool, default True): the network and optimiser return to step 0 at the switch,
            so C-R BCE trains as a separate run would.
        statistic (str, default "cosine"): eq. 7's statistic, the plain cosine as the authors'
            ``stats_collector_trainer.py`` averages it, or ``sigmoid`` (the paper's [0, 1] scale).
        similarity_images (int | None, default None): training images per dataset in the eq. 7
            pass, evenly spaced; None: all of them (§3.3: the whole training split).
    """

    schedule: str = "finetune"
    pretrain_fraction: float = 0.5
    restart: bool = True
    statistic: str = "cosine"
    similarity_images: int | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"cr_bce: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 < self.pretrain_fraction < 1:
            raise ValueError(
                f"cr_bce: pretrain_fraction must lie in (0, 1), got {self.pretrain_fraction}"
            )
        if self.similarity_images is not None and self.similarity_images < 1:
            raise ValueError(
                f"cr_bce: similarity_images must be >= 1, got {self.similarity_images}"
            )
        if self.statistic not in STATISTICS:
            raise ValueError(
                f"cr_bce: statistic must be one of {STATISTICS}, got {self.statistic!r}"
            )


@METHODS.register("cr_bce")
class ClassRelationalBCE(CosineNullBCE):
    """Eq. 8 on the cosine classifier; ``relations`` is a relations file's content (given by
    ``mdseg train --relations``) under ``schedule: finetune``. Options given as None take
    their defaults."""

    Options = CRBCEOptions
    opts: CRBCEOptions

    def __init__(
        self,
        dataset_classes: dict[str, list[str]],
        relations: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        given = {k: v for k, v in options.items() if v is not None}
        super().__init__(dataset_classes, **given)
        in_run_only = sorted(set(given) - {"schedule"})
        if self.opts.schedule == "finetune" and in_run_only:
            raise ValueError(f"cr_bce: {in_run_only} apply to schedule: in_run only")
        if self.opts.schedule == "in_run" and relations is not None:
            raise ValueError("cr_bce: schedule in_run computes its own relations; drop the file")
        self.own = own_union_ids(list(dataset_classes.values()), self.classes)
        self.similarity: list[torch.Tensor] | None = None
        self.tau: float | None = None
        self.initial: dict[str, torch.Tensor] | None = None
        self.relations: Relations = {}
        if relations is not None:
            similarity = restrict_relations(relations, dataset_classes, self.classes)
            self._set_similarity(similarity, relations["tau"], fixed=True)

    def switch_step(self, total_steps: int) -> int:
        """``in_run``: the step at which relations are computed and C-R BCE training starts."""
        if total_steps < 2:
            raise ValueError(f"cr_bce needs at least 2 iterations, got {total_steps}")
        return min(total_steps - 1, max(1, round(self.opts.pretrain_fraction * total_steps)))

    def schedule_starts(self, total_steps: int) -> list[int]:
        """``in_run`` with ``restart``: a fresh warm-up and decay, like a separately trained
        network; a fine-tune has one schedule of its own."""
        if self.opts.schedule == "in_run" and self.opts.restart:
            return [0, self.switch_step(total_steps)]
        return [0]

    def before_step(self, step: int, model: Segmentor, run: TrainRun) -> None:
        if self.similarity is not None:
            return
        if self.opts.schedule == "finetune":
            raise RuntimeError(
                "cr_bce (schedule finetune) needs the relations of a cosine model: the "
                "experiment's `relations` (mdseg train --relations relations.pt)"
            )
        if step < self.switch_step(run.total_steps):
            if self.opts.restart and self.initial is None:
                if step:
                    raise RuntimeError(f"cr_bce: resumed at step {step} without step 0's weights")
                self.initial = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            return
        similarity, _ = class_similarities(
            model,
            [run.splits[k] for k in self.datasets],
            len(self.classes),
            self.opts.similarity_images,
            run.device,
            run.ctx,
            run.crop_size,
            run.resize_short_side,
            run.workers,
            self.opts.statistic,
        )
        self._set_similarity(similarity)
        if self.opts.restart:
            model.load_state_dict(self.initial)
            run.optimizer.state.clear()
        self.initial = None

    def _set_similarity(
        self, similarity: list[torch.Tensor], tau: float | None = None, fixed: bool = False
    ) -> None:
        """Eq. 6 from ``similarity``; τ is chosen from it unless ``fixed`` (given relations)."""
        self.similarity = similarity
        self.tau = tau if fixed else choose_tau(similarity, self.own)
        self.relations = multi_labels(similarity, self.own, self.tau)
        related = {key: [u for u, _ in extra] for key, extra in self.relations.items()}
        self.targets = label_targets(list(self.dataset_classes.values()), self.classes, related)

    def state_dict(self) -> dict[str, Any]:
        return {"similarity": self.similarity, "tau": self.tau, "initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"similarity", "tau", "initial"}:
            raise ValueError(
                f"cr_bce: state needs keys similarity, tau, initial; got {sorted(state)}"
            )
        self.initial = state["initial"]
        if state["similarity"] is not None:
            self._set_similarity([s.cpu() for s in state["similarity"]], state["tau"], fixed=True)

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
