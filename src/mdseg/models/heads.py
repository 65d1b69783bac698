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


class UniSegHead(nn.Module):
    """AutoUniSeg's UniSegHead: pixel embeddings scored against the unified label embedding.

    A 1x1 conv gives an L2-normalised pixel embedding p; unified logits are ``u = X_u p``
    (eq. 4), with the node embeddings X_u from the label graph L2-normalised and scaled by
    ``logit_scale`` so logits stay bounded while the graph changes under a frozen network.
    Dataset logits follow eq. 5 in probability space: label c scores
    ``log sum_r M[r, c] exp(u_r)``, which for a boolean M sums the probabilities of the nodes
    the label takes (rather than adding their logits). M is the soft adjacency while the graph
    trains and the boolean mapping otherwise. The method sets the node count, the mapping, the
    active nodes and the mapping kind with :meth:`configure` before a forward.
    """

    def __init__(
        self, in_channels: int, graph: LabelGraph, embed_dim: int, logit_scale: float = 10.0
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_channels, embed_dim, 1)
        self.graph = graph
        self.logit_scale = logit_scale
        capacity, n_labels = graph.adjacency_logits.shape
        self.register_buffer("mapping", torch.zeros(capacity, n_labels), persistent=False)
        self.register_buffer("active", torch.zeros(capacity, dtype=torch.bool), persistent=False)
        self.nodes = 0
        self.soft = False

    def configure(
        self, nodes: int, mapping: torch.Tensor, active: torch.Tensor, soft: bool
    ) -> None:
        """Use the first ``nodes`` unified nodes, ``mapping [nodes, L]``, scoring ``active``."""
        self.nodes, self.soft = nodes, soft
        self.mapping.zero_()
        self.mapping[:nodes] = mapping.to(self.mapping)
        self.active.zero_()
        self.active[:nodes] = active.to(self.active)

    def node_embedding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled unit node embeddings ``[nodes, D]`` and the soft adjacency ``[nodes, L]``."""
        nodes, adjacency = self.graph(self.nodes)
        return self.logit_scale * F.normalize(nodes, dim=1), adjacency

    def unified_logits(self, x: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bdhw,nd->bnhw", F.normalize(self.embed(x), dim=1), nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unified logits ``[B, active nodes, h, w]``."""
        nodes, _ = self.node_embedding()
        return self.unified_logits(x, nodes[self.active[: self.nodes]])

    def dataset_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every dataset's logits ``[B, L, h, w]`` through the soft or boolean mapping."""
        nodes, adjacency = self.node_embedding()
        mapping = adjacency if self.soft else self.mapping[: self.nodes]
        u = self.unified_logits(x, nodes)
        top = u.amax(dim=1, keepdim=True)  # |u| <= logit_scale, so exp(u - top) cannot vanish
        mixed = torch.einsum("bnhw,nl->blhw", (u - top).exp(), mapping)
        return mixed.clamp(min=torch.finfo(mixed.dtype).tiny).log() + top


class DatasetLogits(nn.Module):
    """The dataset-logit view of a :class:`UniSegHead`, as a head of its own for the Segmentor."""

    def __init__(self, head: UniSegHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.dataset_logits(x)
