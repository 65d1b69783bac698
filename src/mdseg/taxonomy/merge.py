"""Initial unified label nodes: merge dataset labels that stage-1 heads confuse both ways.

Stage-1 (one head per dataset) predictions on each dataset's held-out split give, for every
dataset d and head h, the fraction of d's class-c pixels that head h labels e. Two merges:

* :func:`unidet_merge`, the paper's (AutoUniSeg §3.2 "inspired by [53]" = UniDet; Appendix B,
  as implemented in the authors' ``auto_uni_seg/utils/UniDet_learn_unify_label_space.py``):
  a cluster of labels (at most one per dataset) costs the drop in cross-head accuracy its
  labels suffer when each is scored by the merged labels' heads; clusters grow dataset by
  dataset from mutually confused pairs, and an integer program picks disjoint clusters
  trading that cost against a reward per merge.
* :func:`merge_groups` on :func:`agreement` scores, the text-assisted option: choose pairs of
  maximum total agreement (the weaker of the two cross-head fractions) such that the merged
  groups are cliques (transitivity) and never hold two labels of one dataset.

Departure kept as an option (documented in :mod:`mdseg.methods.autouniseg`): the score
:func:`merge_groups` maximises may add the text similarity of the label descriptions (the
GNN's own input) to the visual agreement, and :func:`mutual_preference` keeps only pairs where
each label is the other's best match in the other dataset, which drops cross-domain noise and
keeps the program small.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import LinearConstraint, milp
from scipy.sparse import coo_array


def agreement(fractions: dict[tuple[int, int], np.ndarray], sizes: list[int]) -> np.ndarray:
    """Symmetric ``[L, L]`` agreement between all labels (global ids in dataset order).

    ``fractions[(i, j)][c, d]`` is the share of dataset i's class-c pixels that dataset j's head
    predicts as d; the agreement of (i:c, j:d) is the smaller of the two directions.
    """
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = int(offsets[-1])
    agree = np.zeros((total, total))
    for (i, j), frac in fractions.items():
        back = fractions.get((j, i))
        if back is None:
            raise KeyError(f"fractions has datasets ({i}, {j}) but not ({j}, {i})")
        block = np.minimum(frac, back.T)
        agree[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block
    return np.maximum(agree, agree.T)


def mutual_preference(score: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """``score`` with every pair zeroed but mutual best matches across two datasets.

    ``(a, b)`` of datasets i != j survives when b has the highest score with a among dataset j's
    labels and a the highest with b among dataset i's labels.
    """
    datasets = np.unique(owner)
    best = np.zeros((len(owner), int(datasets.max()) + 1), dtype=int)
    for d in datasets:
        cols = np.flatnonzero(owner == d)
        best[:, d] = cols[score[:, cols].argmax(axis=1)]
    keep = np.zeros(score.shape, dtype=bool)
    for a in range(len(owner)):
        for d in datasets:
            if d != owner[a] and best[best[a, d], owner[a]] == a:
                keep[a, best[a, d]] = True
    return np.where(keep & keep.T, score, 0.0)


def merge_groups(owner: np.ndarray, agree: np.ndarray, threshold: float) -> list[list[int]]:
    """Partition labels into merged groups by an integer program (scipy ``milp``, HiGHS).

    ``owner[l]`` is the dataset of label l. Variables are the candidate pairs (different
    datasets, agreement >= ``threshold``); the objective maximises the summed agreement of the
    chosen pairs; for every two candidate pairs sharing a label, ``x_ab + x_bc - x_ac <= 1``
    (``x_ac`` absent, i.e. fixed 0, when a and c are not a candidate pair), which makes the chosen
    pairs a union of cliques with at most one label per dataset. Returns every label's group
    (singletons included), groups ordered by their smallest label.
    """
    n = len(owner)
    pairs = [
        (a, b)
        for a, b in itertools.combinations(range(n), 2)
        if owner[a] != owner[b] and agree[a, b] >= threshold
    ]
    chosen: list[tuple[int, int]] = []
    if pairs:
        index = {p: k for k, p in enumerate(pairs)}
        neighbours: dict[int, list[int]] = {}
        for a, b in pairs:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
        rows: list[dict[int, float]] = []
        for mid, others in neighbours.items():
            for a, c in itertools.combinations(sorted(others), 2):
                row = {index[min(a, mid), max(a, mid)]: 1.0, index[min(c, mid), max(c, mid)]: 1.0}
                if (a, c) in index:
                    row[index[a, c]] = -1.0
                rows.append(row)
        weights = np.array([agree[a, b] for a, b in pairs])
        constraints = []
        if rows:
            entries = [(r, k, v) for r, row in enumerate(rows) for k, v in row.items()]
            r_idx, k_idx, vals = (np.array(t) for t in zip(*entries, strict=True))
            matrix = coo_array((vals, (r_idx, k_idx)), shape=(len(rows), len(pairs)))
            constraints.append(LinearConstraint(matrix, -np.inf, 1.0))
        result = milp(
            -weights,
            integrality=np.ones(len(pairs)),
            bounds=(0, 1),
            constraints=constraints,
        )
        if not result.success:
            raise RuntimeError(f"label-merging integer program failed: {result.message}")
        chosen = [p for p, x in zip(pairs, result.x, strict=True) if x > 0.5]
    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in chosen:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for a in range(n):
        groups.setdefault(root(a), []).append(a)
    return sorted(groups.values(), key=min)


#: Clusters of each size kept per parent cluster and added dataset (``max_new_nodes`` in the
#: authors' ``UniDet_learn_unify_label_space.py``; for size 2, per row and per column).
AUTHORS_MAX_NEW: dict[int, int] = {2: 3500, 3: 4000, 4: 3000, 5: 1500, 6: 1000, 7: 500}


def cross_accuracy(
    counts: Mapping[tuple[int, int], np.ndarray], sizes: Sequence[int]
) -> np.ndarray:
    """``[L, L]`` share of label g's pixels that the head of g''s dataset predicts as g'.

    ``counts[(d, h)]`` is ``[K_d, K_h]``: dataset d's classes (rows, on its held-out split) by
    head h's argmax, for every d and h including h = d (the diagonal block gives each label's
    own accuracy). This is the authors' ``seg_AP(d, c, h, e) = hist[d][h][c, e] /
    hist[d][h][c].sum()``; a label with no pixels gets a zero row (accuracy 0, never merged).
    """
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    accuracy = np.zeros((offsets[-1], offsets[-1]))
    for d, h in itertools.product(range(len(sizes)), repeat=2):
        if (d, h) not in counts:
            raise KeyError(f"counts lacks (dataset {d}, head {h}); unidet_merge needs every pair")
        block = np.asarray(counts[d, h], dtype=np.float64)
        if block.shape != (sizes[d], sizes[h]):
            raise ValueError(
                f"counts[({d}, {h})] has shape {block.shape}, expected ({sizes[d]}, {sizes[h]})"
            )
        total = block.sum(axis=1, keepdims=True)
        share = np.divide(block, total, out=np.zeros_like(block), where=total > 0)
        accuracy[offsets[d] : offsets[d + 1], offsets[h] : offsets[h + 1]] = share
    return accuracy


def authors_indexing(accuracy: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The pair-test matrix and the own accuracies in the cost, as the authors' code indexes them.

    In ``UniDet_learn_unify_label_space.py``, ``mAPs_all[d][j, j] = ori_map`` writes dataset
    d's own accuracy of class j at *global* row j, i.e. over the share of d's class j that
    the head owning global label j calls it (the first dataset's head while j < K_0; rows of
    d's own labels are unused); and
    ``calc_cost`` reads ``mAPs_all[s][c, ann_ind]`` with c global, which is that own accuracy
    only for the first dataset and 0 otherwise (own rows are never filled). Returns
    ``(test, own)``: ``test`` is ``accuracy`` with those entries overwritten, ``own`` the
    diagonal zeroed outside the first dataset.
    """
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    own = np.diag(accuracy).copy()
    test = accuracy.copy()
    for d, size in enumerate(sizes):
        for j in range(size):
            if owner[j] != d:
                test[offsets[d] + j, j] = own[offsets[d] + j]
    own[offsets[1] :] = 0.0
    return test, own


def cluster_cost(
    accuracy: np.ndarray, cluster: Sequence[int], own: np.ndarray | None = None
) -> float:
    """Accuracy drop of merging ``cluster`` (global label ids, one per dataset).

    Sum over its labels c of ``own[c]`` minus the mean over the cluster's labels cc (c
    included) of the share of c's pixels that cc's head calls cc (the authors' ``calc_cost``;
    UniDet's merge cost, AutoUniSeg Appendix B). ``own`` defaults to the diagonal.
    """
    idx = np.asarray(cluster)
    own = np.diag(accuracy) if own is None else own
    return float(own[idx].sum() - accuracy[np.ix_(idx, idx)].mean(axis=1).sum())


def candidate_pairs(
    accuracy: np.ndarray,
    owner: np.ndarray,
    *,
    tau: float = 0.4,
    test: np.ndarray | None = None,
    own: np.ndarray | None = None,
) -> dict[tuple[int, int], float]:
    """Mutually confused label pairs ``(a, b)``, ``a < b`` of different datasets, with costs.

    A pair is a candidate when head b calls more than ``max(acc_a - tau, 0)`` of a's pixels b
    and head a more than ``max(acc_b - tau, 0)`` of b's pixels a (acc = own accuracy, the
    authors' ``mAPs_ori``; tau 0.4 there). ``test`` replaces ``accuracy`` in that test and
    ``own`` the own accuracies in the cost (see :func:`authors_indexing`).
    """
    test = accuracy if test is None else test
    limit = np.maximum(np.diag(accuracy) - tau, 0.0)
    above = test > limit[:, None]
    mutual = above & above.T & (owner[:, None] != owner[None, :])
    return {
        (int(a), int(b)): cluster_cost(accuracy, (a, b), own)
        for a, b in zip(*np.nonzero(np.triu(mutual)), strict=True)
    }


def _best_pairs(
    pairs: dict[tuple[int, int], float], owner: np.ndarray, top: int
) -> dict[tuple[int, int], float]:
    """Pairs among the ``top`` cheapest of their label's row or column of a dataset pair."""
    ranked: dict[tuple[int, int], list[float]] = {}
    for (a, b), cost in pairs.items():
        ranked.setdefault((a, int(owner[b])), []).append(cost)
        ranked.setdefault((b, int(owner[a])), []).append(cost)
    bound = {k: sorted(v)[top - 1] if len(v) >= top else np.inf for k, v in ranked.items()}
    return {
        (a, b): cost
        for (a, b), cost in pairs.items()
        if cost <= bound[a, owner[b]] or cost <= bound[b, owner[a]]
    }


def grow_clusters(
    pairs: dict[tuple[int, int], float],
    accuracy: np.ndarray,
    owner: np.ndarray,
    *,
    pair_cost: float = 0.05,
    tau: float = 0.4,
    max_datasets: int = 7,
    max_new: Mapping[int, int] = AUTHORS_MAX_NEW,
    own: np.ndarray | None = None,
) -> dict[tuple[int, ...], float]:
    """Every candidate cluster (sorted global ids, at most one per dataset) with its cost.

    As the authors' code: candidate pairs costing at most ``pair_cost`` (``score_thresh``
    0.05) and among the ``max_new[2]`` cheapest of their row or column are kept; a cluster
    grows by one label of a dataset it lacks when every pair it then holds is a kept pair;
    per parent cluster and added dataset the ``max_new[size]`` cheapest children are kept,
    then those costing at most ``tau`` (0.4). Duplicates reached through different parents
    are kept once (the authors' ``remove_duplicate`` returns them all, which leaves the
    integer program's optimum unchanged). ``max_datasets`` caps a cluster's size (7 there).
    """
    missing = [size for size in range(2, max_datasets + 1) if size not in max_new]
    if missing:
        raise ValueError(f"max_new lacks cluster sizes {missing} (max_datasets={max_datasets})")
    if max_datasets < 2:
        return {}
    kept = {p: c for p, c in pairs.items() if c <= pair_cost}
    kept = _best_pairs(kept, owner, max_new[2])
    linked = np.zeros((len(owner), len(owner)), dtype=bool)
    for a, b in kept:
        linked[a, b] = linked[b, a] = True
    clusters: dict[tuple[int, ...], float] = dict(kept)
    level: list[tuple[int, ...]] = sorted(kept)
    for size in range(3, max_datasets + 1):
        grown: dict[tuple[int, ...], float] = {}
        for parent in level:
            fits = linked[list(parent)].all(axis=0)
            for d in sorted(set(owner.tolist()) - set(owner[list(parent)].tolist())):
                children = [
                    tuple(sorted((*parent, int(x)))) for x in np.flatnonzero(fits & (owner == d))
                ]
                costed = sorted((cluster_cost(accuracy, c, own), c) for c in children)
                grown.update((c, cost) for cost, c in costed[: max_new[size]] if cost <= tau)
        clusters.update(grown)
        level = sorted(grown)
    return clusters


def select_clusters(
    clusters: Mapping[tuple[int, ...], float], n_labels: int, size_reward: float = 0.5
) -> list[list[int]]:
    """Disjoint clusters minimising ``sum cost * |C| - size_reward * (|C| - 1)``, plus singletons.

    The integer program of UniDet's merge (AutoUniSeg Appendix B; ``lambda`` 0.5 in the authors'
    code, which solves it with CyLP's ``CyClpSimplex.primal``, an LP relaxation whose variables
    above 0.1 it keeps; here scipy ``milp`` (HiGHS) solves it exactly, so the groups are a
    partition). Each label is in at most one chosen cluster; unchosen labels stay singletons.
    Groups are ordered by their smallest label.
    """
    keys = sorted(clusters)
    chosen: list[tuple[int, ...]] = []
    if keys:
        weights = np.array([clusters[k] * len(k) - size_reward * (len(k) - 1) for k in keys])
        entries = [(label, k) for k, key in enumerate(keys) for label in key]
        rows, cols = (np.array(t) for t in zip(*entries, strict=True))
        matrix = coo_array((np.ones(len(entries)), (rows, cols)), shape=(n_labels, len(keys)))
        result = milp(
            weights,
            integrality=np.ones(len(keys)),
            bounds=(0, 1),
            constraints=[LinearConstraint(matrix, -np.inf, 1.0)],
        )
        if not result.success:
            raise RuntimeError(f"UniDet merge integer program failed: {result.message}")
        chosen = [k for k, x in zip(keys, result.x, strict=True) if x > 0.5]
    merged = {label for key in chosen for label in key}
    groups = [list(k) for k in chosen] + [[a] for a in range(n_labels) if a not in merged]
    return sorted(groups, key=min)


def unidet_merge(
    counts: Mapping[tuple[int, int], np.ndarray],
    sizes: Sequence[int],
    *,
    tau: float = 0.4,
    pair_cost: float = 0.05,
    size_reward: float = 0.5,
    max_datasets: int = 7,
    max_new: Mapping[int, int] = AUTHORS_MAX_NEW,
    authors_quirks: bool = False,
) -> list[list[int]]:
    """The paper's merge (Appendix B, as implemented in the authors'
    ``UniDet_learn_unify_label_space.py``): groups of global label ids, singletons included.

    ``counts[(d, h)]`` = ``[K_d, K_h]`` pixel counts of dataset d's classes (rows) by head h's
    argmax, h = d included. :func:`candidate_pairs` -> :func:`grow_clusters` ->
    :func:`select_clusters`. ``authors_quirks`` reproduces the authors' indexing of own
    accuracies (:func:`authors_indexing`), off by default: it zeroes the cost's own-accuracy
    term outside the first dataset, so that the cost no longer measures a drop.
    """
    accuracy = cross_accuracy(counts, sizes)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    test, own = authors_indexing(accuracy, sizes) if authors_quirks else (accuracy, None)
    pairs = candidate_pairs(accuracy, owner, tau=tau, test=test, own=own)
    clusters = grow_clusters(
        pairs,
        accuracy,
        owner,
        pair_cost=pair_cost,
        tau=tau,
        max_datasets=max_datasets,
        max_new=max_new,
        own=own,
    )
    return select_clusters(clusters, len(owner), size_reward)
