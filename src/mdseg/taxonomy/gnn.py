"""The label graph: dataset-label and unified nodes, a learnable adjacency, a GraphSAGE encoder.

Dataset-label node features are text features plus a learnable per-dataset embedding (eq. 1);
unified nodes have learnable random input features of the same size. Only unified<->dataset
edges exist; their weights are softmaxes over each dataset's labels per unified node with a
temperature (eq. 2). A Linear, three ``SAGEConv`` layers (sum aggregation over the weighted
adjacency, i.e. ``W [X || M X]`` of eq. 3) with tanh, and a Linear give the unified label
embedding X_u.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def block_softmax(logits: torch.Tensor, owner: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of ``logits [N, L] / temperature`` over the labels of each dataset separately."""
    scaled = logits / temperature
    out = torch.empty_like(scaled)
    for dataset in owner.unique():
        cols = (owner == dataset).nonzero().squeeze(1)
        out[:, cols] = scaled[:, cols].softmax(dim=1)
    return out


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
        hidden: int,
        out_dim: int,
        temperature: float = 0.07,
        layers: int = 3,
    ) -> None:
        super().__init__()
        n_labels, dim = text.shape
        n_datasets = int(owner.max()) + 1
        scale = float(text.std())
        self.register_buffer("text", text.float(), persistent=False)
        self.register_buffer("owner", owner.long(), persistent=False)
        self.temperature = temperature
        self.dataset_embedding = nn.Parameter(torch.randn(n_datasets, dim) * scale)
        self.unified_input = nn.Parameter(torch.randn(capacity, dim) * scale)
        self.adjacency_logits = nn.Parameter(torch.zeros(capacity, n_labels))
        self.inp = nn.Linear(dim, hidden)
        # imported here: torch_geometric adds about a second to every process that imports mdseg
        from torch_geometric.nn import SAGEConv

        self.convs = nn.ModuleList(SAGEConv(hidden, hidden, aggr="sum") for _ in range(layers))
        self.out = nn.Linear(hidden, out_dim)

    def adjacency(self, n: int) -> torch.Tensor:
        """Soft adjacency ``[n, L]`` of the first ``n`` unified nodes (eq. 2)."""
        return block_softmax(self.adjacency_logits[:n], self.owner, self.temperature)

    def forward(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unified label embedding ``[n, out_dim]`` and the soft adjacency ``[n, L]``."""
        adj = self.adjacency(n)
        n_labels = adj.shape[1]
        x = torch.cat([self.text + self.dataset_embedding[self.owner], self.unified_input[:n]])
        rows, cols = torch.meshgrid(
            torch.arange(n, device=adj.device),
            torch.arange(n_labels, device=adj.device),
            indexing="ij",
        )
        unified, labels = rows.flatten() + n_labels, cols.flatten()
        weights = adj.flatten()
        # adj_t[target, source]: unified nodes gather labels and labels gather unified nodes
        graph = torch.sparse_coo_tensor(
            torch.stack([torch.cat([unified, labels]), torch.cat([labels, unified])]),
            torch.cat([weights, weights]),
            (n_labels + n, n_labels + n),
            check_invariants=False,
        )
        h = self.inp(x)
        with warnings.catch_warnings():  # torch flags sparse CSR support (used by PyG) as beta
            warnings.simplefilter("ignore", UserWarning)
            for conv in self.convs:
                h = torch.tanh(conv(h, graph))
        return self.out(h[n_labels:]), adj


def orthogonality_loss(nodes: torch.Tensor) -> torch.Tensor:
    """Eq. 7: each unified node's embedding should pick itself out among all nodes.

    Cross-entropy of the softmax of ``X_u x_i`` against node i, averaged over nodes; it is
    smallest when the node embeddings are mutually orthogonal (and long).
    """
    gram = nodes @ nodes.t()
    return nn.functional.cross_entropy(gram, torch.arange(len(nodes), device=nodes.device))
