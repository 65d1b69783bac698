"""HRNetV2 representation head and the classifiers that read it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mdseg.taxonomy.gnn import LabelGraph


class HRNetV2Neck(nn.Module):
    """HRNetV2: upsample every branch to stride 4, concatenate, mix with 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: list[int]) -> None:
        super().__init__()
        width = sum(in_channels)
        self.out_channels = width
        self.mix = nn.Sequential(
            nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        size = branches[0].shape[-2:]
        up = [branches[0]] + [
            F.interpolate(b, size=size, mode="bilinear", align_corners=False) for b in branches[1:]
        ]
        return self.mix(torch.cat(up, dim=1))


class LinearClassifier(nn.Module):
    """A 1x1 convolution to ``num_classes`` logits."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CosineClassifier(nn.Module):
    """Scaled cosine similarity between L2-normalised features and class weights (UniSeg App. G).

    Logits are ``t * cos(theta)``, so they lie in ``[-t, t]``.
    """

    def __init__(self, in_channels: int, num_classes: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, in_channels) * in_channels**-0.5)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.normalize(self.weight, dim=1)
        return self.scale * torch.einsum("bchw,kc->bkhw", F.normalize(x, dim=1), w)


class DatasetHeads(nn.Module):
    """One 1x1 classifier per dataset on shared features, outputs concatenated (Multi-SegHead)."""

    def __init__(self, in_channels: int, sizes: list[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(in_channels, n, 1) for n in sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(x) for head in self.heads], dim=1)


class PixelEmbedding(nn.Module):
    """A 1x1 conv to ``dim`` channels, L2-normalised per pixel: AutoUniSeg's pixel embedding.

    The authors' ``ProjectionHead`` (Mrhonor/AutoUniSeg auto_uni_seg/modeling/meta_arch/
    HRNetv2_mulhead.py and HRNetv2_llama.py) is conv1x1-BN-ReLU-conv1x1 on the concatenated
    HRNet branches, output L2-normalised; its first three layers are this project's HRNetV2 neck,
    so the head adds the last conv and the normalisation. Stages 1 and 2 share it.
    """

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.conv(x), dim=1)


class DatasetPrototypes(nn.Module):
    """Multi-SegHead as AutoUniSeg's authors build it: each dataset's classes are prototypes
    ``[K_d, D]`` scored by dot product against a shared :class:`PixelEmbedding`; outputs are
    concatenated in dataset order.

    Prototypes start truncated-normal with std ``init_std`` (the authors' 0.02) and are not
    normalised (``HRNet_W48_mulhead.unify_prototype``, HRNetv2_mulhead.py). ``scale`` multiplies
    the logits: 1 as the authors; a larger value lets logits grow as fast as a short run needs
    (AdamW moves each prototype coordinate by at most about the learning rate per step).
    """

    def __init__(
        self,
        embedding: PixelEmbedding,
        sizes: list[int],
        init_std: float = 0.02,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.scale = scale
        dim = embedding.conv.out_channels
        self.prototypes = nn.ParameterList(
            nn.Parameter(nn.init.trunc_normal_(torch.empty(n, dim), std=init_std)) for n in sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.embedding(x)
        logits = [torch.einsum("bdhw,kd->bkhw", p, w) for w in self.prototypes]
        return self.scale * torch.cat(logits, dim=1)


class UniSegHead(nn.Module):
    """AutoUniSeg's UniSegHead: unified logits ``u = P p`` (eq. 4) of the pixel embedding p
    against the node prototypes P, and each dataset's logits through a mapping M (eq. 5).

    P is the label graph's output while the graph trains (``from_graph``), else ``prototypes``:
    the snapshot the method takes when the graph stops training (the authors'
    ``set_unify_prototype``, frozen in stage 2's segmentation phases, trained in stage 3).
    Authors' P is unnormalised; ``logit_scale`` (an option) L2-normalises it and scales it;
    ``scale`` multiplies the unified logits (1 as the authors; see :class:`DatasetPrototypes`).
    Dataset logits are ``M u`` per label, computed at the feature resolution (linear, so the
    same as after upsampling) for each mapping set by :meth:`configure` (the graph phases blend
    two), concatenated along the channels; ``combine: logsumexp`` (an option) sums the mapped nodes'
    probabilities instead, ``log sum_r M[r, c] exp(u_r)``.
    """

    def __init__(
        self,
        embedding: PixelEmbedding,
        graph: LabelGraph,
        logit_scale: float | None = None,
        combine: str = "linear",
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.graph = graph
        self.logit_scale = logit_scale
        self.scale = scale
        self.combine = combine
        capacity = graph.adjacency_logits.shape[0]
        dim = embedding.conv.out_channels
        # trainable from construction: DDP syncs only what requires grad when it wraps the model
        self.prototypes = nn.Parameter(torch.zeros(capacity, dim))
        self.nodes = 0
        self.from_graph = False
        self.mapping: torch.Tensor | None = None
        self.soft = False
        self.last_prototypes: torch.Tensor | None = None

    def configure(
        self, nodes: int, from_graph: bool, mapping: torch.Tensor | None, soft: bool
    ) -> None:
        """Use the first ``nodes`` nodes, P from the graph or from the snapshot, and as
        mappings ``mapping [nodes, L]`` (if given) then the soft adjacency (if ``soft``: taken
        inside the forward, so its gradient reaches the graph)."""
        self.nodes, self.from_graph, self.mapping, self.soft = nodes, from_graph, mapping, soft

    def node_prototypes(self) -> torch.Tensor:
        """P ``[nodes, D]``; kept in ``last_prototypes`` for the orthogonality loss."""
        if self.from_graph:
            p, _ = self.graph(self.nodes)
        else:
            p = self.prototypes[: self.nodes]
        if self.logit_scale is not None:
            p = self.logit_scale * F.normalize(p, dim=1)
        self.last_prototypes = p
        p = self.scale * p
        return p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unified logits ``[B, nodes, h, w]``."""
        p = self.node_prototypes()
        return torch.einsum("bdhw,nd->bnhw", self.embedding(x), p.to(x.dtype))

    def dataset_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every dataset's logits ``[B, L, h, w]`` per mapping, the blocks concatenated."""
        u = self.forward(x)
        mappings = [] if self.mapping is None else [self.mapping.to(u)]
        if self.soft:
            mappings.append(self.graph.adjacency(self.nodes).to(u.dtype))
        return torch.cat([map_logits(u, m, self.combine) for m in mappings], dim=1)


def map_logits(u: torch.Tensor, mapping: torch.Tensor, combine: str = "linear") -> torch.Tensor:
    """Label logits ``[B, L, h, w]`` from node logits ``u [B, N, h, w]`` and ``mapping [N, L]``.

    ``linear``: ``M u`` (AutoUniSeg eq. 5; the authors' ``einsum('bchw, nc -> bnhw', logits,
    bipartite_graph)``). ``logsumexp``: ``log sum_r M[r, c] exp(u_r)``, the sum of the mapped
    nodes' probabilities (a label without nodes gets the smallest finite logit).
    """
    if combine == "linear":
        return torch.einsum("bnhw,nl->blhw", u, mapping)
    top = u.amax(dim=1, keepdim=True)
    mixed = torch.einsum("bnhw,nl->blhw", (u - top).exp(), mapping)
    return mixed.clamp(min=torch.finfo(mixed.dtype).tiny).log() + top


class DatasetLogits(nn.Module):
    """The dataset-logit view of a :class:`UniSegHead`, as a head of its own for the Segmentor."""

    def __init__(self, head: UniSegHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.dataset_logits(x)
