"""UniDet merge (AutoUniSeg Appendix B, authors' UniDet_learn_unify_label_space.py), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mdseg.taxonomy.merge import (
    authors_indexing,
    candidate_pairs,
    cluster_cost,
    cross_accuracy,
    grow_clusters,
    select_clusters,
    unidet_merge,
)

# Datasets A (a0=0, a1=1), B (b0=2, b1=3), C (c0=4, c1=5). Row g, column block h: the share of
# g's pixels that head h predicts as each of its labels (per 100 pixels per head).
SHARES = {
    0: ([80, 20], [78, 22], [76, 24]),  # a0: own 0.80
    1: ([10, 90], [16, 84], [50, 50]),  # a1: own 0.90; a1 -> c1 0.50 = 0.90 - tau exactly
    2: ([78, 22], [80, 20], [78, 22]),  # b0: own 0.80
    3: ([36, 64], [30, 70], [90, 10]),  # b1: own 0.70
    4: ([76, 24], [80, 20], [80, 20]),  # c0: own 0.80
    5: ([10, 90], [20, 80], [10, 90]),  # c1: own 0.90
}
SIZES = [2, 2, 2]
OWNER = np.array([0, 0, 1, 1, 2, 2])


def _counts() -> dict[tuple[int, int], np.ndarray]:
    return {
        (d, h): np.array([SHARES[2 * d + c][h] for c in range(2)], dtype=float)
        for d in range(3)
        for h in range(3)
    }


def test_cross_accuracy_is_the_row_share_and_empty_rows_are_zero() -> None:
    acc = cross_accuracy(_counts(), SIZES)
    np.testing.assert_allclose(np.diag(acc), [0.8, 0.9, 0.8, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(acc[3], [0.36, 0.64, 0.30, 0.70, 0.90, 0.10])
    counts = _counts()
    counts[0, 0] = np.array([[0.0, 0.0], [1.0, 9.0]])
    with np.errstate(all="raise"):
        assert cross_accuracy(counts, SIZES)[0, :2].tolist() == [0.0, 0.0]


def test_cross_accuracy_names_the_missing_or_misshaped_block() -> None:
    counts = _counts()
    del counts[1, 1]
    with pytest.raises(KeyError, match=r"dataset 1, head 1"):
        cross_accuracy(counts, SIZES)
    counts = _counts()
    counts[2, 0] = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"counts\[\(2, 0\)\] has shape \(2, 3\)"):
        cross_accuracy(counts, SIZES)


def test_candidate_pairs_and_their_costs() -> None:
    acc = cross_accuracy(_counts(), SIZES)
    pairs = candidate_pairs(acc, OWNER)
    # (a0,b0): (0.80 - (0.80+0.78)/2) + (0.80 - (0.78+0.80)/2) = 0.02; (a1,b1): 0.03 + 0.03;
    # (a0,c0): 0.02 + 0.02; (b0,c0): 0.01 + 0.00. b1 -> c0 is 0.90 but c0 -> b1 only 0.20.
    assert pairs.keys() == {(0, 2), (1, 3), (0, 4), (2, 4)}
    expected = {(0, 2): 0.02, (1, 3): 0.06, (0, 4): 0.04, (2, 4): 0.01}
    for pair, cost in expected.items():
        assert pairs[pair] == pytest.approx(cost)
    # tau boundary: a1 -> c1 is 0.50 = max(0.90 - 0.40, 0), not above it; at tau 0.41 it is,
    # and the pair costs (0.90 - (0.90+0.50)/2) + (0.90 - (0.90+0.90)/2) = 0.2
    assert (1, 5) not in pairs
    wider = candidate_pairs(acc, OWNER, tau=0.41)
    assert wider.keys() - pairs.keys() == {(1, 5)}
    assert wider[1, 5] == pytest.approx(0.2)


def test_three_label_cluster_cost() -> None:
    acc = cross_accuracy(_counts(), SIZES)
    # a0: 0.80 - (0.80+0.78+0.76)/3; b0: 0.80 - (0.78+0.80+0.78)/3; c0: 0.80 - (0.76+0.80+0.80)/3
    assert cluster_cost(acc, (0, 2, 4)) == pytest.approx(0.02 + 0.04 / 3 + 0.04 / 3)


def test_grow_clusters_keeps_cheap_pairs_and_their_cliques() -> None:
    acc = cross_accuracy(_counts(), SIZES)
    clusters = grow_clusters(candidate_pairs(acc, OWNER), acc, OWNER)
    # (a1,b1) costs 0.06 > pair_cost 0.05: dropped
    assert clusters.keys() == {(0, 2), (0, 4), (2, 4), (0, 2, 4)}
    assert clusters[0, 2, 4] == pytest.approx(0.02 + 0.08 / 3)
    # a triple costing more than tau is not kept
    assert grow_clusters(candidate_pairs(acc, OWNER), acc, OWNER, tau=0.04).keys() == {
        (0, 2),
        (0, 4),
        (2, 4),
    }


def test_grow_clusters_keeps_the_cheapest_pairs_of_each_row_or_column() -> None:
    # A (0, 1) x B (2, 3): with max_new[2] = 1 a pair stays when it is the cheapest of its row
    # or of its column; (1, 3) is neither (row 1: 0.02 < 0.03, column 3: 0.02 < 0.03)
    owner = np.array([0, 0, 1, 1])
    pairs = {(0, 2): 0.01, (0, 3): 0.02, (1, 2): 0.02, (1, 3): 0.03}
    kept = grow_clusters(pairs, np.zeros((4, 4)), owner, max_datasets=2, max_new={2: 1})
    assert kept == {(0, 2): 0.01, (0, 3): 0.02, (1, 2): 0.02}


def test_unidet_merge_prefers_the_triple_for_its_size_reward() -> None:
    # triple: 3 x 0.046667 - 0.5 x 2 = -0.86; best pair (b0,c0): 2 x 0.01 - 0.5 = -0.48
    assert unidet_merge(_counts(), SIZES) == [[0, 2, 4], [1], [3], [5]]
    # a pair_cost above 0.06 admits (a1,b1)
    assert unidet_merge(_counts(), SIZES, pair_cost=0.07) == [[0, 2, 4], [1, 3], [5]]
    # without the size reward no merge pays
    assert unidet_merge(_counts(), SIZES, size_reward=0.0) == [[a] for a in range(6)]


def test_select_clusters_trades_cost_against_size() -> None:
    # triple 3c - 1 vs two pairs (0.05 each): 2 x (0.1 - 0.5) = -0.8
    pairs = {(0, 2): 0.05, (1, 4): 0.05}
    assert select_clusters({**pairs, (0, 2, 4): 0.1}, 6) == [[0, 2], [1, 4], [3], [5]]
    assert select_clusters({**pairs, (0, 2, 4): 0.04}, 6) == [[0, 2, 4], [1], [3], [5]]
    # a dearer triple beats a free pair through the reward: 0.3 - 1.0 < 0.0 - 0.5
    assert select_clusters({(0, 2): 0.0, (0, 2, 4): 0.1}, 6)[0] == [0, 2, 4]
    assert select_clusters({(0, 2): 0.0, (0, 2, 4): 0.1}, 6, 0.1)[0] == [0, 2]


def test_max_datasets_caps_the_cluster_size() -> None:
    # without the triple the cheapest pair (b0,c0) wins
    assert unidet_merge(_counts(), SIZES, max_datasets=2) == [[0], [1], [2, 4], [3], [5]]
    assert unidet_merge(_counts(), SIZES, max_datasets=1) == [[a] for a in range(6)]
    with pytest.raises(ValueError, match=r"max_new lacks cluster sizes \[8\]"):
        unidet_merge(_counts(), SIZES, max_datasets=8)


def test_label_without_pixels_never_merges() -> None:
    counts = _counts()
    counts[1, 0] = np.zeros((2, 2))
    counts[1, 0][1] = [36, 64]
    counts[1, 1] = np.array([[0.0, 0.0], [30.0, 70.0]])
    counts[1, 2] = np.array([[0.0, 0.0], [90.0, 10.0]])
    with np.errstate(all="raise"):
        groups = unidet_merge(counts, SIZES)
    assert [2] in groups
    assert groups == [[0, 4], [1], [2], [3], [5]]


def test_authors_indexing() -> None:
    acc = cross_accuracy(_counts(), SIZES)
    test, own = authors_indexing(acc, SIZES)
    # mAPs_all[d][j, j] = own accuracy of d:j lands on the cross share of d:j by head A as a_j
    changed = acc.copy()
    changed[2, 0], changed[3, 1], changed[4, 0], changed[5, 1] = 0.8, 0.7, 0.8, 0.9
    np.testing.assert_allclose(test, changed)
    np.testing.assert_allclose(own, [0.8, 0.9, 0, 0, 0, 0])
    # (a1,b1) now costs (0.90 - 0.87) + (0 - (0.64+0.70)/2) = -0.64 and is kept
    assert unidet_merge(_counts(), SIZES, authors_quirks=True) == [[0, 2, 4], [1, 3], [5]]


def test_hidden_taxonomy_is_recovered_as_a_partition() -> None:
    # 4 datasets over 6 hidden concepts; heads find a label's concept where their dataset has
    # it and spread evenly otherwise; merged groups must be exactly the shared concepts
    rng = np.random.default_rng(0)
    concepts = [[0, 1, 2], [0, 2, 3, 4], [1, 2, 5], [0, 3, 5, 1]]
    sizes = [len(c) for c in concepts]
    counts = {}
    for d, rows in enumerate(concepts):
        for h, cols in enumerate(concepts):
            block = rng.integers(0, 2, size=(len(rows), len(cols))).astype(float)
            for r, concept in enumerate(rows):
                if concept in cols:
                    block[r, cols.index(concept)] += 95
                else:
                    block[r] += 30
            counts[d, h] = block
    owner = np.repeat(np.arange(4), sizes)
    label_concept = np.concatenate(concepts)
    expected = [np.flatnonzero(label_concept == c).tolist() for c in range(6)]
    for cap in (7, 2):
        groups = unidet_merge(counts, sizes, max_datasets=cap)
        assert sorted(a for g in groups for a in g) == list(range(len(owner)))
        assert all(len(set(owner[g].tolist())) == len(g) <= cap for g in groups)
        if cap == 7:
            assert groups == sorted(expected, key=min)
