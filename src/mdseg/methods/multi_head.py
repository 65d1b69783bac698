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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mdseg.label_space import match_classes
from mdseg.losses import HeadLoss
from mdseg.methods.base import METHODS, Matches, Method
from mdseg.models.heads import DatasetHeads, DatasetPrototypes, PixelEmbedding
from mdseg.models.segmentor import Segmentor

if TYPE_CHECKING:
    from mdseg.data import SplitDataset
    from mdseg.inference import Inference

HEAD = "multi"


@dataclass(frozen=True)
class MultiHeadOptions(HeadLoss):
    """``method_options`` of ``multi_head``: the loss fields of :class:`~mdseg.losses.HeadLoss`
    and the heads.

    Args:
        head (str, default "prototypes"): ``prototypes``, class prototypes scored against a
            shared pixel embedding (authors: ``HRNetv2_mulhead.py``), or ``linear``, a 1x1
            classifier per dataset (the former baseline).
        embed_dim (int, default 64): size of the pixel embedding; the authors' 512
            (``OUTPUT_FEAT_DIM``) scaled to the synthetic benchmark, as ``autouniseg``'s.
        prototype_init_std (float, default 0.02): std of the prototypes' truncated-normal
            start (authors: ``trunc_normal_(std=0.02)``, ``HRNetv2_mulhead.py``).
        prototype_scale (float, default 1.0): logits times this; 1 as the authors, larger lets
            a short run's logits grow fast enough (see ``DatasetPrototypes``).
    """

    head: str = "prototypes"
    embed_dim: int = 64
    prototype_init_std: float = 0.02
    prototype_scale: float = 1.0


@METHODS.register("multi_head")
class MultiHead(Method):
    Options = MultiHeadOptions
    opts: MultiHeadOptions

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        super().__init__(dataset_classes, **options)
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
