"""UOT link rules (mdseg.taxonomy.uot): the authors' rule on hand-made plans, the label-marginal
update, and the former rule kept as an option."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mdseg.taxonomy import uot
from mdseg.taxonomy.gnn import block_softmax
from mdseg.taxonomy.uot import LinkRule, boolean_mapping, links_from_plan

OWNER = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])  # three datasets of 3, 4 and 3 labels
FORMER = LinkRule(cost="one_minus", solver="stabilized", link="min_share", marginal_momentum=None)


def _labels(links: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(row).tolist() for row in links]


def _check_many_to_one(mapping: np.ndarray, owner: np.ndarray) -> None:
    for d in np.unique(owner):
        block = mapping[:, owner == d]
        assert (block.sum(axis=1) <= 1).all()  # a node links at most one label per dataset
        assert (block.sum(axis=0) >= 1).all()  # every label keeps a node


def _random_adjacency(seed: int, n_nodes: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = torch.from_numpy(rng.normal(size=(n_nodes, len(OWNER))) * rng.uniform(0.01, 1))
    return block_softmax(logits, torch.from_numpy(OWNER), 0.07).numpy()


# argmax labels 0, 0, 0, 1: label 2 is empty; only label 0's nodes (0, 1, 2) can move.
# Masses on label 2: node 3 0.00 (label 1's only node), node 1 0.03, node 0 0.05, node 2 0.08.
WALK_PLAN = np.array(
    [
        [0.20, 0.00, 0.05],
        [0.15, 0.02, 0.03],
        [0.10, 0.05, 0.08],
        [0.02, 0.30, 0.00],
    ]
)


def test_empty_label_takes_the_lowest_mass_movable_node() -> None:
    # threshold 1/(4*3) = 0.083: label 0 keeps nodes 0 (0.20) and 2 (0.10)
    assert _labels(links_from_plan(WALK_PLAN)) == [[0], [2], [0], [1]]


def test_empty_label_takes_the_highest_mass_node_when_descending() -> None:
    links = links_from_plan(WALK_PLAN, empty_label="descending")
    assert _labels(links) == [[0], [0], [2], [1]]


def test_link_below_one_over_nl_is_dropped_on_a_shared_label() -> None:
    # threshold 1/(3*2) = 0.167: label 0 holds nodes 0 (0.50) and 1 (0.10 -> dropped)
    plan = np.array([[0.50, 0.05], [0.10, 0.05], [0.05, 0.25]])
    assert _labels(links_from_plan(plan)) == [[0], [], [1]]
    # drop_ratio 0.5 halves the threshold to 0.083: node 1 keeps its link
    assert _labels(links_from_plan(plan, drop_ratio=0.5)) == [[0], [0], [1]]


def test_larger_link_is_kept_when_all_fall_below_the_threshold() -> None:
    # threshold 1/(4*2) = 0.125: label 0's nodes 0 (0.10) and 1 (0.12) are both below
    plan = np.array([[0.10, 0.02], [0.12, 0.03], [0.01, 0.36], [0.02, 0.34]])
    assert _labels(links_from_plan(plan)) == [[], [0], [1], [1]]
    assert _labels(links_from_plan(3 * plan)) == [[], [0], [1], [1]]  # plan normalised first


def test_label_without_a_movable_node_stays_empty_with_a_warning() -> None:
    plan = np.array([[0.4, 0.1, 0.0], [0.1, 0.4, 0.0]])
    with pytest.warns(UserWarning, match="label 2 of 3 gets no node"):
        links = links_from_plan(plan)
    assert _labels(links) == [[0], [1]]


def test_marginal_update_is_a_running_average_of_plan_column_sums(monkeypatch) -> None:
    seen = []

    def fixed_plan(block: np.ndarray, label_marginal: np.ndarray, rule: LinkRule) -> np.ndarray:
        seen.append(label_marginal.copy())
        return np.array([[0.4, 0.2], [0.6, 0.8]])  # Q_bar column sums 0.5, 0.5

    monkeypatch.setattr(uot, "block_plan", fixed_plan)
    adjacency = np.array([[0.9, 0.1], [0.2, 0.8]])
    mapping, marginals = boolean_mapping(
        adjacency, np.array([0, 0]), marginals={0: np.array([0.8, 0.2])}
    )
    np.testing.assert_array_equal(seen[0], [0.8, 0.2])
    np.testing.assert_allclose(marginals[0], [0.7 * 0.8 + 0.15, 0.7 * 0.2 + 0.15], rtol=1e-12)
    assert _labels(mapping) == [[0], [1]]  # Q_bar rows (0.2, 0.1) and (0.3, 0.4)


def test_default_rule_is_the_authors() -> None:
    rule = LinkRule()
    assert (rule.reg, rule.reg_m, rule.cost, rule.solver, rule.link) == (
        0.01,
        5.0,
        "half",
        "knopp",
        "argmax",
    )
    assert (rule.drop_ratio, rule.empty_label, rule.marginal_momentum) == (1.0, "ascending", 0.7)


def test_unknown_option_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"LinkRule\.empty_label must be one of"):
        LinkRule(empty_label="random")


def test_marginals_of_the_wrong_size_are_refused() -> None:
    adjacency = _random_adjacency(0)
    with pytest.raises(ValueError, match=r"dataset 1: expected shape \(4,\)"):
        boolean_mapping(adjacency, OWNER, marginals={0: np.ones(3) / 3, 1: np.ones(3) / 3})


@pytest.mark.parametrize("seed", range(5))
def test_authors_rule_links_every_node_on_random_input(seed: int) -> None:
    mapping, marginals = boolean_mapping(_random_adjacency(seed), OWNER)
    _check_many_to_one(mapping, OWNER)
    for d in range(3):
        assert (mapping[:, d == OWNER].sum(axis=1) == 1).all()
        assert marginals[d].dtype == np.float64
        assert marginals[d].sum() == pytest.approx(1.0)  # Q_bar and the start both sum to one


def test_authors_rule_is_deterministic_and_resumes_from_json() -> None:
    adjacency = _random_adjacency(3)
    first, m1 = boolean_mapping(adjacency, OWNER)
    again, m1_again = boolean_mapping(adjacency, OWNER)
    np.testing.assert_array_equal(first, again)
    for d in m1:
        np.testing.assert_array_equal(m1[d], m1_again[d])
    stored = json.loads(json.dumps({str(d): m.tolist() for d, m in m1.items()}))
    resumed = {int(d): np.array(m) for d, m in stored.items()}
    second, m2 = boolean_mapping(adjacency, OWNER, marginals=m1)
    second_resumed, m2_resumed = boolean_mapping(adjacency, OWNER, marginals=resumed)
    np.testing.assert_array_equal(second, second_resumed)
    for d in m2:
        np.testing.assert_array_equal(m2[d], m2_resumed[d])


@pytest.mark.parametrize("seed", range(5))
def test_former_rule_is_many_to_one_on_random_input(seed: int) -> None:
    mapping, marginals = boolean_mapping(_random_adjacency(seed), OWNER, FORMER)
    _check_many_to_one(mapping, OWNER)
    for d, size in ((0, 3), (1, 4), (2, 3)):
        np.testing.assert_array_equal(marginals[d], np.full(size, 1.0 / size))


def test_former_rule_recovers_a_planted_mapping() -> None:
    # nodes 3-5 belong to no label of some datasets (flat adjacency rows there)
    planted = {0: [0, 3, 7], 1: [1, 4, 8], 2: [2, 5, 9], 3: [2, 6], 4: [1], 5: [0]}
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=0.02, size=(6, len(OWNER)))
    for r, cols in planted.items():
        logits[r, cols] += 0.5
    adj = block_softmax(torch.from_numpy(logits), torch.from_numpy(OWNER), 0.07).numpy()
    mapping, _ = boolean_mapping(adj, OWNER, FORMER)
    _check_many_to_one(mapping, OWNER)
    assert dict(enumerate(_labels(mapping))) == planted
    # the authors' argmax links the flat-row nodes too, where the former rule leaves them out
    authors, _ = boolean_mapping(adj, OWNER)
    _check_many_to_one(authors, OWNER)
    for r, cols in planted.items():
        assert set(cols) <= set(np.flatnonzero(authors[r]).tolist())
