"""AutoUniSeg's orthogonality loss on the unified nodes' embeddings (eq. 7), added to the
dataset losses in its graph phases."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ORTHOGONALITY_KINDS = ("row_entropy", "identity_ce")


def orthogonality_loss(
    nodes: torch.Tensor, kind: str = "row_entropy", temperature: float = 0.07
) -> torch.Tensor:
    """Eq. 7: each unified node's embedding should pick itself out among all nodes.

    ``"row_entropy"`` (the authors' ``similarity_dsb`` in ``auto_uni_seg/HRNetv2_model.py``,
    ``reduce='mean'``): with ``z = X_u X_u^T / temperature``, minus the mean over all N^2
    entries of ``softmax(z) * log_softmax(z)`` along rows, i.e. the rows' entropy / N.
    ``"identity_ce"`` (the former loss): cross-entropy of the rows of ``X_u X_u^T`` against the
    identity, averaged over nodes, without a temperature. Both are smallest when the node
    embeddings are mutually orthogonal and long.
    """
    if kind not in ORTHOGONALITY_KINDS:
        raise ValueError(
            f"orthogonality loss kind: expected one of {ORTHOGONALITY_KINDS}, got {kind!r}"
        )
    gram = nodes @ nodes.t()
    if kind == "identity_ce":
        return F.cross_entropy(gram, torch.arange(len(nodes), device=nodes.device))
    z = gram / temperature
    return -(z.softmax(dim=1) * z.log_softmax(dim=1)).mean()
