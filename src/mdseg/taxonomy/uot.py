"""Boolean many-to-one label mappings from the soft adjacency by unbalanced optimal transport.

AutoUniSeg §3.2 turns each dataset's block of the soft adjacency into a boolean many-to-one
mapping by unbalanced OT; its details (Appendix C) are not in our copy of the paper, so
:class:`LinkRule`'s defaults follow the authors' ``sep_bipartite_graphs_by_uot`` in
``auto_uni_seg/modeling/GNN/ltbgnn_llama.py``.
Per dataset block (adjacency ``A_i``, ``[N nodes, L_i labels]``):

- cost ``(1 - A_i + 1e-8) / 2`` (``cost="half"``); node marginal uniform (``ot.unif``), label
  marginal ``beta_i`` kept across refreshes (``self.beta``, uniform at the start);
- plan ``Q`` by ``ot.unbalanced.sinkhorn_knopp_unbalanced`` (reg 0.01, reg_m 5, stopThr 1e-6,
  POT's 1000 iterations, which it mostly uses up) with the entropic term that was POT's default
  up to 0.9.4, current when the authors' file last changed (``solver="knopp"``; POT 0.9.5
  switched the default to a KL term); ``Q_bar = Q / Q.sum()``;
- :func:`links_from_plan`: every node links to its argmax label; each label left without a node,
  in label order, takes the first node, walking nodes by ascending ``Q_bar`` mass (``torch.sort``),
  whose label has several nodes; on a label with several nodes a link of mass below
  ``uot_ratio / (N * L_i)`` is dropped (``uot_ratio`` = 1 in the configs), the largest kept if
  all fall below;
- ``beta_i <- 0.7 * beta_i + 0.3 * Q_bar.sum(0)`` (``mu = 0.7``).

The rule this project used before issue 12 stays available as
``LinkRule(cost="one_minus", solver="stabilized", link="min_share", marginal_momentum=None)``:
cost ``1 - A``, POT's stabilised Sinkhorn with its current defaults, uniform label marginals, a
link kept only where the node's adjacency share of its argmax label reaches ``min_share`` (the
adjacency rows of a node no label claims stay flat), and every label without a node given the
node of highest adjacency that another label can spare.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

COSTS = ("half", "one_minus")
SOLVERS = ("knopp", "stabilized")
LINKS = ("argmax", "min_share")
WALKS = ("ascending", "descending")


@dataclass(frozen=True)
class LinkRule:
    """How :func:`boolean_mapping` turns a soft adjacency into links (defaults: the authors').

    ``cost``: ``"half"`` (1 - A + 1e-8) / 2, authors; ``"one_minus"`` 1 - A, former.
    ``solver``: ``"knopp"`` the authors' ``sinkhorn_knopp_unbalanced`` call with the entropic
    term of POT <= 0.9.4; ``"stabilized"`` the former ``sinkhorn_unbalanced(method=
    "sinkhorn_stabilized", numItermax=2000)`` with POT's current (KL) term.
    ``link``: ``"argmax"`` the authors' :func:`links_from_plan` (uses ``drop_ratio`` and
    ``empty_label``); ``"min_share"`` the former rule (uses ``min_share``).
    ``empty_label``: order in which a label left without a node tries nodes, ``"ascending"``
    plan mass (authors) or ``"descending"`` (largest mass first).
    ``marginal_momentum``: weight of the previous label marginal (authors 0.7); ``None`` keeps
    uniform label marginals at every refresh (former).
    """

    reg: float = 0.01
    reg_m: float = 5.0
    cost: str = "half"
    solver: str = "knopp"
    link: str = "argmax"
    min_share: float = 0.5
    drop_ratio: float = 1.0
    empty_label: str = "ascending"
    marginal_momentum: float | None = 0.7

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("cost", self.cost, COSTS),
            ("solver", self.solver, SOLVERS),
            ("link", self.link, LINKS),
            ("empty_label", self.empty_label, WALKS),
        ):
            if value not in allowed:
                raise ValueError(f"LinkRule.{name} must be one of {allowed}, got {value!r}")
        if self.marginal_momentum is not None and not 0.0 <= self.marginal_momentum <= 1.0:
            raise ValueError(
                "LinkRule.marginal_momentum must be in [0, 1] or None, "
                f"got {self.marginal_momentum}"
            )


def block_plan(block: np.ndarray, label_marginal: np.ndarray, rule: LinkRule) -> np.ndarray:
    """Unbalanced transport plan ``[N, L_i]`` of one dataset block (uniform node marginal)."""
    import ot  # imported on use: POT pulls in scikit-learn, about a second at every start

    alpha = np.full(block.shape[0], 1.0 / block.shape[0])
    cost = (1.0 - block + 1e-8) / 2 if rule.cost == "half" else 1.0 - block
    with warnings.catch_warnings():
        if rule.solver == "knopp":
            # c = 1 is POT's default up to 0.9.4; POT says so in a warning at every call
            warnings.filterwarnings("ignore", message="If reg_type = entropy")
            return ot.unbalanced.sinkhorn_knopp_unbalanced(
                alpha,
                label_marginal,
                cost,
                reg=rule.reg,
                reg_m=rule.reg_m,
                reg_type="entropy",
                stopThr=1e-6,
            )
        warnings.simplefilter("ignore", UserWarning)  # stabilised scaling hits numItermax
        return ot.unbalanced.sinkhorn_unbalanced(
            alpha,
            label_marginal,
            cost,
            rule.reg,
            rule.reg_m,
            method="sinkhorn_stabilized",
            numItermax=2000,
        )


def links_from_plan(
    plan: np.ndarray, drop_ratio: float = 1.0, empty_label: str = "ascending"
) -> np.ndarray:
    """The authors' links ``bool [N, L_i]`` from one block's plan (normalised here to sum one).

    Ties go to the lower index (stable sorts; ``torch.sort`` on the GPU gives no such promise).
    A label stays without a node only when every node is some label's only node (N < L_i);
    the authors print an error there, this warns.
    """
    if empty_label not in WALKS:
        raise ValueError(f"empty_label must be one of {WALKS}, got {empty_label!r}")
    q = plan / plan.sum()
    n, m = q.shape
    label = q.argmax(axis=1)
    for c in range(m):
        if (label == c).any():
            continue
        key = q[:, c] if empty_label == "ascending" else -q[:, c]
        order = np.argsort(key, kind="stable")
        counts = np.bincount(label, minlength=m)
        movable = order[counts[label[order]] > 1]
        if movable.size == 0:
            warnings.warn(f"UOT: label {c} of {m} gets no node: only {n} nodes", stacklevel=2)
            continue
        label[movable[0]] = c
    links = np.zeros((n, m), dtype=bool)
    links[np.arange(n), label] = True
    threshold = drop_ratio / (n * m)
    for c in range(m):
        nodes = np.flatnonzero(links[:, c])
        if nodes.size < 2:
            continue
        mass = q[nodes, c]
        links[nodes[mass < threshold], c] = False
        if not links[nodes, c].any():
            links[nodes[mass.argmax()], c] = True
    return links


def boolean_mapping(
    adjacency: np.ndarray,
    owner: np.ndarray,
    rule: LinkRule | None = None,
    marginals: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Boolean ``[N, L]`` mapping and the updated label marginals per dataset (keys: owner ids).

    ``adjacency`` is the soft adjacency ``[N, L]`` (rows sum to one within each dataset block);
    ``owner[l]`` is the dataset of label l. Per dataset block each row has at most one 1.
    ``marginals`` are the label marginals returned by the previous call (``None``: uniform).
    Everything is float64 and deterministic, so a resumed run repeats the mappings bit for bit.
    """
    rule = rule or LinkRule()
    n_nodes, n_labels = adjacency.shape
    mapping = np.zeros((n_nodes, n_labels), dtype=bool)
    updated: dict[int, np.ndarray] = {}
    for dataset in np.unique(owner).tolist():
        cols = np.flatnonzero(owner == dataset)
        block = adjacency[:, cols].astype(np.float64)
        beta = _label_marginal(marginals, dataset, len(cols), rule)
        plan = block_plan(block, beta, rule)
        if rule.link == "argmax":
            mapping[:, cols] = links_from_plan(plan, rule.drop_ratio, rule.empty_label)
        else:
            mapping[:, cols] = _min_share_links(plan, block, rule.min_share)
        if rule.marginal_momentum is None:
            updated[dataset] = beta
        else:
            mu = rule.marginal_momentum
            updated[dataset] = mu * beta + (1 - mu) * (plan / plan.sum()).sum(axis=0)
    return mapping, updated


def _label_marginal(
    marginals: dict[int, np.ndarray] | None, dataset: int, size: int, rule: LinkRule
) -> np.ndarray:
    """The stored label marginal of ``dataset``, or uniform at the start / without momentum."""
    if marginals is None or rule.marginal_momentum is None:
        return np.full(size, 1.0 / size)
    if dataset not in marginals:
        raise ValueError(f"UOT label marginals: no entry for dataset {dataset}")
    beta = np.asarray(marginals[dataset], dtype=np.float64)
    if beta.shape != (size,):
        raise ValueError(
            f"UOT label marginals of dataset {dataset}: expected shape ({size},), got {beta.shape}"
        )
    return beta


def _min_share_links(plan: np.ndarray, block: np.ndarray, min_share: float) -> np.ndarray:
    """The former rule: argmax link kept where the adjacency share reaches ``min_share``."""
    n, m = block.shape
    best = plan.argmax(axis=1)
    keep = block[np.arange(n), best] >= min_share
    link = np.where(keep, best, -1)
    _cover_every_label(link, block)
    links = np.zeros((n, m), dtype=bool)
    rows = np.flatnonzero(link >= 0)
    links[rows, link[rows]] = True
    return links


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
