"""The label graph: dataset-label and unified nodes, a learnable adjacency, a GraphSAGE encoder.

Dataset-label node features are text features plus a learnable per-dataset embedding (paper
eq. 1); unified nodes have learnable input features of the same size. Only unified<->dataset
edges exist; their weights are softmaxes over each dataset's labels per unified node with a
temperature (eq. 2). As in the authors' ``Learnable_Topology_BGNN_llama.forward``
(``auto_uni_seg/modeling/GNN/ltbgnn_llama.py``): a Linear, a ReLU, dropout, then ``layers``
GraphSAGE layers ``tanh(W [x || Â x] + b)`` (eq. 3) each after dropout, and a Linear give the
unified label embedding X_u, left unnormalised. Â is the row-normalised bipartite adjacency
(their ``calc_adjacency_matrix``). :class:`GraphOptions` keeps the former graph (no ReLU, no
dropout, sum aggregation, inputs at the text features' scale) reachable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

AGGREGATIONS = ("row_mean", "sum")
INPUT_SCALES = ("none", "rms")


@dataclass(frozen=True)
class GraphOptions:
    """How the label graph is built; the defaults are the authors' (``ltbgnn_llama.py``).

    - ``hidden``, ``out_dim``: widths of the GraphSAGE layers and of the node embedding.
    - ``temperature``: of the per-dataset adjacency softmax (eq. 2; 0.07 in their
      ``calc_adjacency_matrix``).
    - ``layers``: GraphSAGE layers (their ``GCN_layer1..3``).
    - ``input_relu``: a ReLU after the input Linear (their ``self.relu(feat1)``); ``False`` is
      the former graph.
    - ``dropout``: before every GraphSAGE layer, in training mode only (their
      ``dropout_rate: 0.5``); ``0.0`` is the former graph.
    - ``aggregation``: ``"row_mean"`` gathers neighbours through ``D^-1 A`` (their
      ``normalize_adj``); ``"sum"`` through ``A`` (the former PyG ``SAGEConv(aggr="sum")``).
    - ``dataset_embedding``: the learnable per-dataset embedding added to the text features
      (paper eq. 1; the authors' released configs switch it off with ``dataset_embedding:
      False``).
    - ``init_std``: std of the unified nodes' input features and of the dataset embedding,
      drawn as their ``trunc_normal_(std=0.02)`` (timm: cut at +-2); ``None`` draws plain
      normals at the text features' std (the former graph).
    - ``input_scale``: ``"rms"`` divides the text features by their RMS so each component is of
      order one, like llama-2's raw hidden states the authors feed; an aid for small unit-norm
      encoders (MiniLM: components ~0.05). ``"none"`` feeds them as they are (authors).
    """

    hidden: int = 256
    out_dim: int = 64
    temperature: float = 0.07
    layers: int = 3
    input_relu: bool = True
    dropout: float = 0.5
    aggregation: str = "row_mean"
    dataset_embedding: bool = True
    init_std: float | None = 0.02
    input_scale: str = "none"

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"graph option aggregation: expected one of {AGGREGATIONS}, "
                f"got {self.aggregation!r}"
            )
        if self.input_scale not in INPUT_SCALES:
            raise ValueError(
                f"graph option input_scale: expected one of {INPUT_SCALES}, "
                f"got {self.input_scale!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"graph option dropout: expected 0 <= p < 1, got {self.dropout}")
        for name in ("hidden", "out_dim", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"graph option {name}: expected >= 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise ValueError(f"graph option temperature: expected > 0, got {self.temperature}")
        if self.init_std is not None and self.init_std <= 0:
            raise ValueError(f"graph option init_std: expected > 0 or None, got {self.init_std}")


def block_softmax(logits: torch.Tensor, owner: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of ``logits [N, L] / temperature`` over the labels of each dataset separately."""
    scaled = logits / temperature
    out = torch.empty_like(scaled)
    for dataset in owner.unique():
        cols = (owner == dataset).nonzero().squeeze(1)
        out[:, cols] = scaled[:, cols].softmax(dim=1)
    return out


def _inverse(rowsum: torch.Tensor) -> torch.Tensor:
    """``1 / rowsum`` with 0 for empty rows (their ``r_inv_sqrt[r_inv_sqrt == inf] = 0``)."""
    empty = rowsum == 0
    return torch.where(empty, 0.0, 1.0 / torch.where(empty, 1.0, rowsum))


class SageLayer(nn.Module):
    """``tanh([x || agg] W + b)``: the authors' ``GSAGE`` around ``GraphSAGEConvolution``.

    Weight ``[2 in, out]`` and bias drawn uniformly in ``+-1/sqrt(out)`` as their
    ``reset_parameters``. With ``in == out`` this is also PyG ``SAGEConv``'s ``lin_l``/``lin_r``
    init (``+-1/sqrt(in)``), whose ``lin_l(agg) + lin_r(x)`` is the same map.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(out_features)
        self.weight = nn.Parameter(
            torch.empty(2 * in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, aggregated: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.cat([x, aggregated], dim=1) @ self.weight + self.bias)


class LabelGraph(nn.Module):
    """GNN over ``capacity`` unified slots and the training datasets' labels.

    ``text`` is ``[L, T]`` (all datasets' label text features stacked in dataset order) and
    ``owner[l]`` the dataset of label l. The first ``n`` unified slots take part in a forward.
    """

    def __init__(
        self,
        text: torch.Tensor,
        owner: torch.Tensor,
        capacity: int,
        options: GraphOptions | None = None,
    ) -> None:
        super().__init__()
        self.options = opts = options or GraphOptions()
        n_labels, dim = text.shape
        n_datasets = int(owner.max()) + 1
        text = text.float()
        if opts.input_scale == "rms":
            text = text / text.square().mean().sqrt().clamp(min=torch.finfo(text.dtype).tiny)
        self.register_buffer("text", text, persistent=False)
        self.register_buffer("owner", owner.long(), persistent=False)
        self.temperature = opts.temperature
        if opts.dataset_embedding:
            self.dataset_embedding = nn.Parameter(self._input_init(n_datasets, dim, text))
        self.unified_input = nn.Parameter(self._input_init(capacity, dim, text))
        self.adjacency_logits = nn.Parameter(torch.zeros(capacity, n_labels))
        self.inp = nn.Linear(dim, opts.hidden)
        self.convs = nn.ModuleList(SageLayer(opts.hidden, opts.hidden) for _ in range(opts.layers))
        self.out = nn.Linear(opts.hidden, opts.out_dim)

    def _input_init(self, rows: int, dim: int, text: torch.Tensor) -> torch.Tensor:
        """Input features: ``trunc_normal_(std=init_std)``, or normals at the text std (former)."""
        if self.options.init_std is None:
            return torch.randn(rows, dim) * float(text.std())
        return nn.init.trunc_normal_(torch.empty(rows, dim), std=self.options.init_std)

    def adjacency(self, n: int) -> torch.Tensor:
        """Soft adjacency ``[n, L]`` of the first ``n`` unified nodes (eq. 2)."""
        return block_softmax(self.adjacency_logits[:n], self.owner, self.temperature)

    def forward(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unified label embedding ``[n, out_dim]`` and the soft adjacency ``[n, L]``.

        The bipartite adjacency has ``adj`` in its unified->label block and ``adj^T`` in its
        label->unified block; it is applied block by block rather than built as a matrix.
        """
        opts = self.options
        adj = self.adjacency(n)
        n_labels = adj.shape[1]
        labels_in = self.text
        if opts.dataset_embedding:
            labels_in = labels_in + self.dataset_embedding[self.owner]
        h = self.inp(torch.cat([labels_in, self.unified_input[:n]]))
        if opts.input_relu:
            h = F.relu(h)
        to_labels, to_nodes = adj.t(), adj
        if opts.aggregation == "row_mean":
            to_labels = to_labels * _inverse(to_labels.sum(dim=1)).unsqueeze(1)
            to_nodes = to_nodes * _inverse(to_nodes.sum(dim=1)).unsqueeze(1)
        for conv in self.convs:
            h = F.dropout(h, opts.dropout, training=self.training)
            agg = torch.cat([to_labels @ h[n_labels:], to_nodes @ h[:n_labels]])
            h = conv(h, agg)
        return self.out(h[n_labels:]), adj


def pairwise_cosine(nodes: torch.Tensor) -> tuple[float, float]:
    """Median and 95th percentile of the cosine over all unordered pairs of rows of ``nodes``.

    A collapse diagnostic for the node embeddings (issue 12 asks for a 95th percentile <= 0.5
    at the start of stage 2).
    """
    if len(nodes) < 2:
        raise ValueError(f"pairwise_cosine needs at least 2 rows, got {len(nodes)}")
    unit = F.normalize(nodes.detach().double(), dim=1)
    rows, cols = torch.triu_indices(len(unit), len(unit), offset=1)
    cosines = (unit @ unit.t())[rows, cols].cpu().numpy()
    return float(np.median(cosines)), float(np.percentile(cosines, 95))
