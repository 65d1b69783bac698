"""Initial unified label nodes: merge dataset labels that stage-1 heads confuse both ways.

Stage-1 (one head per dataset) predictions on each dataset's held-out split give, for every
ordered dataset pair (i, j), the fraction of class c's pixels of dataset i that head j labels d.
Two labels of different datasets are *mergeable* when both directions agree (the smaller of the
two fractions is at least a threshold). Which mergeable pairs to merge is an integer program:
choose pairs of maximum total agreement such that the merged groups are cliques (transitivity)
and never hold two labels of one dataset. N = number of labels - number of merges.

Departure (documented in :mod:`mdseg.methods.autouniseg`): the score the program maximises may
add the text similarity of the label descriptions (the GNN's own input) to the visual
agreement, and :func:`mutual_preference` keeps only pairs where each label is the other's best
match in the other dataset, which drops cross-domain noise and keeps the program small.
"""

from __future__ import annotations

import itertools

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
