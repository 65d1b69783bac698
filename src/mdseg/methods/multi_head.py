"""``multi_head``: AutoUniSeg's Multi-SegHead baseline, a shared network with one head per dataset.

Every dataset keeps its own label space: its images train only its own classes, all heads read
the same features. As AutoUniSeg's authors build it (their stage 1, Mrhonor/AutoUniSeg
auto_uni_seg/modeling/meta_arch/HRNetv2_mulhead.py): a shared L2-normalised pixel embedding and
one set of class prototypes per dataset (``head: prototypes``); each dataset's OHEM
cross-entropy (``auto_uni_seg/modeling/loss/ohem_ce_loss.py``, threshold 0.7) times its weight
(``loss_weight_dict`` in auto_uni_seg/HRNetv2_model.py: Mapillary 3, ADE20K and COCO 15, the
others 1), summed over the datasets of the batch. ``head: linear`` (a 1x1 classifier per
dataset), ``loss: ce``, ``dataset_weights: {}`` and ``loss_reduction: pixel_mean`` give the
former plain-CE baseline.

``classes`` are the heads' channels, named ``<dataset>:<class>``. A training dataset is
evaluated through its own head; an unseen dataset through every head at once by class name and
alias. Each head is also offered as a variant ``head_<dataset>`` (AutoUniSeg Table 3 reads a
dataset's label space through its head).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mdseg.label_space import match_classes
from mdseg.losses import dataset_losses
from mdseg.methods.base import METHODS, Matches, Method
from mdseg.models.heads import DatasetHeads, DatasetPrototypes, PixelEmbedding
from mdseg.models.segmentor import Segmentor

if TYPE_CHECKING:
    from mdseg.data import SplitDataset
    from mdseg.inference import Inference

HEAD = "multi"
# per-dataset loss weights of AutoUniSeg's authors (``loss_weight_dict``): stages 1 and 2 in
# auto_uni_seg/HRNetv2_model.py, stage 3 in auto_uni_seg/HRNetv2_model_finetune.py; others 1
AUTHORS_WEIGHTS = {"mapillary": 3.0, "ade20k": 15.0, "coco": 15.0}
AUTHORS_FINETUNE_WEIGHTS = {"mapillary": 3.0, "ade20k": 3.0, "coco": 3.0}


@dataclass(frozen=True)
class HeadLoss:
    """How a per-dataset head is trained: ``loss`` ohem (authors) or ce, OHEM's probability
    ``ohem_threshold``, ``dataset_weights`` by dataset key (missing = 1) and the reduction
    (``sum_of_datasets``: each dataset's mean loss, weighted and summed, as detectron2 sums the
    authors' per-dataset losses; ``pixel_mean``: one mean over every labelled pixel)."""

    loss: str = "ohem"
    ohem_threshold: float = 0.7
    dataset_weights: dict[str, float] = field(default_factory=lambda: dict(AUTHORS_WEIGHTS))
    loss_reduction: str = "sum_of_datasets"

    def __call__(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
        offsets: list[int],
        datasets: list[str],
        weights: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Each sample's loss over its own dataset's block of ``logits`` channels."""
        table = self.dataset_weights if weights is None else weights
        return dataset_losses(
            logits,
            labels,
            dataset_idx,
            offsets,
            kind=self.loss,
            threshold=self.ohem_threshold,
            weights=[float(table.get(d, 1.0)) for d in datasets],
            reduction=self.loss_reduction,
        )


def checked_options(cls: type, options: dict[str, Any], method: str) -> dict[str, Any]:
    """``options`` if every key is a field of dataclass ``cls``; else an error naming the
    unknown keys and the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"method {method!r}: unknown options {unknown}; known: {sorted(known)}")
    return options


@dataclass(frozen=True)
class MultiHeadOptions(HeadLoss):
    """``method_options`` of ``multi_head``: the loss (:class:`HeadLoss`), the head kind
    (``prototypes``: the authors'; ``linear``: a 1x1 classifier per dataset) and the
    embedding size (the authors' 512, ``OUTPUT_FEAT_DIM``; 64 sized for the synthetic
    benchmark, as AutoUniSeg's own default)."""

    head: str = "prototypes"
    embed_dim: int = 64
    prototype_init_std: float = 0.02
    prototype_scale: float = 1.0  # logits x this: 1 as the authors; see DatasetPrototypes


@METHODS.register("multi_head")
class MultiHead(Method):
    name = "multi_head"

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        super().__init__(dataset_classes)
        self.opts = MultiHeadOptions(**checked_options(MultiHeadOptions, options, self.name))
        sizes = [len(dataset_classes[d]) for d in self.datasets]
        self.offsets = [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]
        self.classes = [f"{d}:{c}" for d in self.datasets for c in dataset_classes[d]]

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        if self.opts.head == "linear":
            return {HEAD: DatasetHeads(in_channels, sizes)}
        embedding = PixelEmbedding(in_channels, self.opts.embed_dim)
        return {
            HEAD: DatasetPrototypes(
                embedding, sizes, self.opts.prototype_init_std, self.opts.prototype_scale
            )
        }

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        return model(images, head=HEAD)

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        return self.opts(model(images, head=HEAD), labels, dataset_idx, self.offsets, self.datasets)

    def head_matches(
        self, dataset: str, target: list[str], aliases: dict[str, list[str]]
    ) -> Matches:
        """Target classes matched by name/alias to one dataset's head, as channel ids."""
        start = self.offsets[self.datasets.index(dataset)]
        found = match_classes(target, self.dataset_classes[dataset], aliases)
        return {t: [start + j for j in js] for t, js in found.items()}

    def target_matches(
        self,
        model: Segmentor,
        dataset_key: str,
        data: SplitDataset,
        aliases: dict[str, list[str]],
        device: torch.device,
        inference: Inference | None = None,
    ) -> dict[str, Matches]:
        heads = {f"head_{d}": self.head_matches(d, data.classes, aliases) for d in self.datasets}
        if dataset_key in self.datasets:
            start = self.offsets[self.datasets.index(dataset_key)]
            primary = {c: [start + c] for c in range(len(data.classes))}
            return {"own_head": primary, **heads}
        bare = [c for d in self.datasets for c in self.dataset_classes[d]]
        return {"all_heads_by_name": match_classes(data.classes, bare, aliases), **heads}
