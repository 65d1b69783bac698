"""Boolean many-to-one label mappings from the soft adjacency by unbalanced optimal transport.

Per dataset block, POT's entropic unbalanced Sinkhorn transports the unified nodes' mass onto
the dataset's labels at cost ``1 - adjacency`` (authors' settings: entropic reg 0.01, marginal
relaxation 5); each unified node takes the label of its largest plan entry. The adjacency rows
of a node that no label of the dataset claims stay flat (every share near ``1/|L_i|``), and
transport alone would still place such a node somewhere, so a link is kept only where the
node's adjacency share of that label reaches ``min_share``. Finally every label without a node
takes the node of highest adjacency among those it can have without emptying another label.
"""

from __future__ import annotations

import warnings

import numpy as np


def block_plan(adjacency: np.ndarray, reg: float = 0.01, reg_m: float = 5.0) -> np.ndarray:
    """Unbalanced transport plan ``[N, |L_i|]`` of one dataset block (uniform marginals)."""
    import ot  # imported on use: POT pulls in scikit-learn, about a second at every start

    n, m = adjacency.shape
    cost = 1.0 - adjacency.astype(np.float64)
    with warnings.catch_warnings():  # POT warns when the stabilised scaling hits numItermax
        warnings.simplefilter("ignore", UserWarning)
        return ot.unbalanced.sinkhorn_unbalanced(
            np.full(n, 1.0 / n),
            np.full(m, 1.0 / m),
            cost,
            reg,
            reg_m,
            method="sinkhorn_stabilized",
            numItermax=2000,
        )


def boolean_mapping(
    adjacency: np.ndarray,
    owner: np.ndarray,
    *,
    reg: float = 0.01,
    reg_m: float = 5.0,
    min_share: float = 0.5,
) -> np.ndarray:
    """Boolean ``[N, L]`` mapping: per dataset block each row has at most one 1, each column one+.

    ``adjacency`` is the soft adjacency ``[N, L]`` (rows sum to one within each dataset block);
    ``owner[l]`` is the dataset of label l.
    """
    n_nodes, n_labels = adjacency.shape
    mapping = np.zeros((n_nodes, n_labels), dtype=bool)
    for dataset in np.unique(owner):
        cols = np.flatnonzero(owner == dataset)
        block = adjacency[:, cols]
        plan = block_plan(block, reg, reg_m)
        best = plan.argmax(axis=1)
        keep = block[np.arange(n_nodes), best] >= min_share
        link = np.where(keep, best, -1)
        _cover_every_label(link, block)
        for r in np.flatnonzero(link >= 0):
            mapping[r, cols[link[r]]] = True
    return mapping


def _cover_every_label(link: np.ndarray, block: np.ndarray) -> None:
    """Give each label without a node its best node that is not another label's only node."""
    m = block.shape[1]
    for c in np.argsort(-block.max(axis=0)):
        if (link == c).any():
            continue
        counts = np.bincount(link[link >= 0], minlength=m)
        free = (link < 0) | (counts[np.maximum(link, 0)] > 1)
        if not free.any():
            raise ValueError(
                f"cannot give every label a unified node: {len(link)} nodes for {m} labels"
            )
        scores = np.where(free, block[:, c], -np.inf)
        link[int(scores.argmax())] = c
