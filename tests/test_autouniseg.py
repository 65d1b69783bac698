"""AutoUniSeg pieces (merging ILP, label graph, UOT mappings, UniSegHead, unseen mappings) and a
tiny end-to-end run; also the Multi-SegHead baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_experiment

from mdseg.methods import METHODS
from mdseg.methods.autouniseg import Options, Schedule, extra_links
from mdseg.models.heads import UniSegHead
from mdseg.taxonomy.gnn import LabelGraph, block_softmax, orthogonality_loss
from mdseg.taxonomy.merge import agreement, merge_groups, mutual_preference
from mdseg.taxonomy.unseen import fit_many_to_one, iou_matrix
from mdseg.taxonomy.uot import boolean_mapping
from mdseg.train import build_model, load_model, train

OWNER = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])  # three datasets of 3, 4 and 3 labels


def _check_many_to_one(mapping: np.ndarray, owner: np.ndarray) -> None:
    for d in np.unique(owner):
        block = mapping[:, owner == d]
        assert (block.sum(axis=1) <= 1).all()  # a node links at most one label per dataset
        assert (block.sum(axis=0) >= 1).all()  # every label keeps a node


def test_block_softmax_sums_to_one_per_node_and_dataset() -> None:
    torch.manual_seed(0)
    adj = block_softmax(torch.randn(5, len(OWNER)), torch.from_numpy(OWNER), 0.07)
    for d in range(3):
        sums = adj[:, torch.from_numpy(d == OWNER)].sum(dim=1)
        torch.testing.assert_close(sums, torch.ones(5))


def test_label_graph_output_and_adjacency_gradient() -> None:
    torch.manual_seed(0)
    graph = LabelGraph(torch.randn(len(OWNER), 16), torch.from_numpy(OWNER), 10, 8, 4)
    nodes, adj = graph(6)
    assert nodes.shape == (6, 4) and adj.shape == (6, len(OWNER))
    nodes.square().sum().backward()
    assert graph.adjacency_logits.grad[:6].abs().sum() > 0
    assert graph.adjacency_logits.grad[6:].abs().sum() == 0  # unused slots take no part


@pytest.mark.parametrize("seed", range(5))
def test_uot_mapping_is_many_to_one_on_random_input(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = torch.from_numpy(rng.normal(size=(7, len(OWNER))) * rng.uniform(0.01, 1))
    adj = block_softmax(logits, torch.from_numpy(OWNER), 0.07).numpy()
    _check_many_to_one(boolean_mapping(adj, OWNER), OWNER)


def test_uot_recovers_a_planted_mapping() -> None:
    # nodes 3-5 belong to no label of some datasets (flat adjacency rows there)
    planted = {0: [0, 3, 7], 1: [1, 4, 8], 2: [2, 5, 9], 3: [2, 6], 4: [1], 5: [0]}
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=0.02, size=(6, len(OWNER)))
    for r, cols in planted.items():
        logits[r, cols] += 0.5
    adj = block_softmax(torch.from_numpy(logits), torch.from_numpy(OWNER), 0.07).numpy()
    mapping = boolean_mapping(adj, OWNER)
    _check_many_to_one(mapping, OWNER)
    found = {r: np.flatnonzero(mapping[r]).tolist() for r in range(6)}
    assert found == planted


def test_orthogonality_loss_is_smallest_for_orthogonal_nodes() -> None:
    torch.manual_seed(0)
    orthogonal = 5 * torch.eye(4)
    assert orthogonality_loss(orthogonal) < 1e-3
    for _ in range(5):
        other = torch.randn(4, 4)
        other = 5 * other / other.norm(dim=1, keepdim=True)
        assert orthogonality_loss(other) > orthogonality_loss(orthogonal)


def test_unisegh_head_logits_by_hand() -> None:
    torch.manual_seed(0)
    owner = torch.tensor([0, 0, 1])
    graph = LabelGraph(torch.randn(3, 4), owner, capacity=3, hidden=4, out_dim=2)
    head = UniSegHead(in_channels=2, graph=graph, embed_dim=2)
    with torch.no_grad():
        head.embed.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        head.embed.bias.zero_()
    mapping = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # label 2 merges both nodes
    head.configure(2, mapping, torch.tensor([True, True]), soft=False)
    x = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # pixel embedding (0.6, 0.8) after L2 norm
    nodes, _ = graph(2)
    u = 10.0 * torch.nn.functional.normalize(nodes, dim=1) @ torch.tensor([0.6, 0.8])
    torch.testing.assert_close(head(x).flatten(), u)
    expected = torch.stack([u[0], u[1], torch.logaddexp(u[0], u[1])])
    torch.testing.assert_close(head.dataset_logits(x).flatten(), expected)
    head.configure(2, mapping, torch.tensor([False, True]), soft=True)
    torch.testing.assert_close(head(x).flatten(), u[1:])
    _, adj = graph(2)
    torch.testing.assert_close(head.dataset_logits(x).flatten(), (u.exp() @ adj).log())


def test_merge_ilp_known_optimum() -> None:
    # datasets A (a0, a1), B (b0, b1), C (c0): a0-b0-c0 agree pairwise; a1 agrees with b0 and b1
    owner = np.array([0, 0, 1, 1, 2])
    agree = np.zeros((5, 5))
    for (i, j), w in {(0, 2): 0.9, (0, 4): 0.8, (2, 4): 0.7, (1, 2): 0.95, (1, 3): 0.6}.items():
        agree[i, j] = agree[j, i] = w
    # {a0,b0,c0} + {a1,b1} scores 0.9+0.8+0.7+0.6 = 3.0 > {a1,b0} + {a0,c0} = 1.75
    assert merge_groups(owner, agree, 0.5) == [[0, 2, 4], [1, 3]]
    assert merge_groups(owner, agree, 0.85) == [[0], [1, 2], [3], [4]]


def test_agreement_takes_the_weaker_direction() -> None:
    fractions = {(0, 1): np.array([[0.9, 0.1]]), (1, 0): np.array([[0.6], [0.2]])}
    agree = agreement(fractions, [1, 2])
    np.testing.assert_allclose(agree, [[0, 0.6, 0.1], [0.6, 0, 0], [0.1, 0, 0]])


def test_mutual_preference_keeps_only_mutual_best_matches() -> None:
    # a0 prefers b0, but b0 prefers a1 (and a1 prefers b0): only a1-b0 is mutual; b1 has no
    # mutual partner because both a-labels prefer b0
    owner = np.array([0, 0, 1, 1])
    score = np.zeros((4, 4))
    for (i, j), w in {(0, 2): 0.7, (1, 2): 0.9, (0, 3): 0.6, (1, 3): 0.5}.items():
        score[i, j] = score[j, i] = w
    kept = mutual_preference(score, owner)
    expected = np.zeros((4, 4))
    expected[1, 2] = expected[2, 1] = 0.9
    np.testing.assert_array_equal(kept, expected)


def test_extra_links_make_a_coarse_label_many_to_one() -> None:
    # A has rider (0); B has bicyclist (1) and motorcyclist (2); the merge paired rider with
    # bicyclist only; motorcyclist's node gains rider as it scores high enough with it
    owner = np.array([0, 1, 1])
    score = np.zeros((3, 3))
    score[0, 1] = score[1, 0] = 0.8
    score[0, 2] = score[2, 0] = 0.7
    mapping = extra_links([[0, 1], [2]], owner, score, 0.65)
    np.testing.assert_array_equal(mapping, [[True, True, False], [True, False, True]])
    assert not extra_links([[0, 1], [2]], owner, score, 0.75)[1, 0]


def test_min_cost_flow_unseen_mapping() -> None:
    confusion = np.array([[80, 10, 0], [30, 0, 5], [0, 40, 0], [0, 0, 0]])
    iou = iou_matrix(confusion)
    assert iou[0, 0] == pytest.approx(80 / (90 + 110 - 80))
    # node 1 overlaps class 0 most, but class 2 has no other node: coverage wins
    assert fit_many_to_one(iou) == {0: [0], 1: [2], 2: [1]}
    # without the need to cover, each node takes its best class
    assert fit_many_to_one(np.array([[0.5, 0.1], [0.4, 0.0], [0.1, 0.3]])) == {0: [0, 1], 1: [2]}


def test_schedule_stages_and_alternation() -> None:
    sched = Schedule.of(Options(), 300)
    assert (sched.stage2_start, sched.stage3_start, sched.alternate) == (100, 200, 20)
    phases = [sched.phase(s) for s in (0, 99, 100, 119, 120, 140, 179, 200, 299)]
    assert phases == [
        "multi_head",
        "multi_head",
        "graph",
        "graph",
        "segmentation",
        "graph",
        "segmentation",
        "finetune",
        "finetune",
    ]


def test_multi_head_matches_own_head_and_by_name(tiny_datasets: dict[str, Path]) -> None:
    from mdseg.data import SplitDataset

    city, mapi = ["road", "rider", "car"], ["road", "bicyclist", "motorcyclist", "car"]
    method = METHODS["multi_head"]({"cityscapes": city, "mapillary": mapi})
    assert method.classes[3] == "mapillary:road"
    data = SplitDataset(tiny_datasets["mapillary"], "val")
    found = method.target_matches(None, "mapillary", data, {}, torch.device("cpu"))
    assert found["own_head"] == {0: [3], 1: [4], 2: [5], 3: [6]}
    assert found["head_cityscapes"] == {0: [0], 3: [2]}
    model = build_model(method, "hrnet_w18_small_v2")
    labels = torch.randint(0, 3, (2, 32, 32))
    loss = method.loss(model, torch.randn(2, 3, 32, 32), labels, torch.tensor([0, 1]))
    assert torch.isfinite(loss)


def _write_features(path: Path, classes: dict[str, list[str]]) -> Path:
    """A ``features.pt`` like ``mdseg encode`` writes, with random 16-d features."""
    torch.manual_seed(0)
    datasets = {
        k: {"classes": v, "descriptions": v, "features": torch.randn(len(v), 16)}
        for k, v in classes.items()
    }
    torch.save({"encoder": "random", "dim": 16, "datasets": datasets}, path)
    return path


def _experiment(train_keys: list[str]) -> dict:
    """A 12-step autouniseg run: stages of 4 steps, GNN/segmentation alternating every step."""
    options = {"alternate_every": 1 / 12, "hidden_dim": 8, "embed_dim": 8}
    return tiny_experiment("autouniseg", train_keys, options, iterations=12, lr=0.005)


def test_autouniseg_trains_end_to_end(tiny_datasets: dict[str, Path], tmp_path: Path) -> None:
    from conftest import make_dataset

    from mdseg.data import SplitDataset
    from mdseg.evaluate import evaluate_dataset

    classes = {k: SplitDataset(d, "train").classes for k, d in tiny_datasets.items()}
    experiment = _experiment(list(tiny_datasets))
    features = _write_features(tmp_path / "features.pt", classes)
    out = tmp_path / "model"
    model_path = train(experiment, tiny_datasets, out, text_features=features)

    taxonomy = json.loads((out / "taxonomy.json").read_text())
    assert taxonomy["datasets"] == classes
    assert (out / "taxonomy.png").stat().st_size > 0
    linked = {(k, c) for node in taxonomy["unified"] for k, c in node["labels"].items()}
    assert linked == {(k, c) for k, v in classes.items() for c in v}  # every label keeps a node
    assert [n["id"] for n in taxonomy["unified"]] == list(range(len(taxonomy["unified"])))

    method, model, _ = load_model(model_path)
    assert method.classes == [n["name"] for n in taxonomy["unified"]]
    images = torch.randn(1, 3, 32, 32)
    assert method.scores(model, images).shape == (1, len(method.classes), 32, 32)
    own = method.target_matches(
        model,
        "cityscapes",
        SplitDataset(tiny_datasets["cityscapes"], "val"),
        {},
        torch.device("cpu"),
    )
    assert set(own["boolean_mapping"]) == {0, 1, 2}
    unseen = make_dataset(tmp_path, "camvid", ["Road", "Car", "Sky"], seed=3)
    result = evaluate_dataset(method, model, SplitDataset(unseen, "val"), {}, torch.device("cpu"))
    assert result["mapping"] == "iou_fit_on_evaluated_split"  # the tiny set has no holdout
    assert "zero_shot" in result["variants"]


def test_autouniseg_resumes_mid_stage_two_like_an_uninterrupted_run(
    tiny_datasets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped by SIGUSR1 in stage 2 (after merging, between GNN and segmentation phases) and
    resumed, the run ends with the same weights and taxonomy as an uninterrupted one."""
    import os
    import signal

    from mdseg.data import SplitDataset
    from mdseg.methods.autouniseg import AutoUniSeg

    classes = {k: SplitDataset(d, "train").classes for k, d in tiny_datasets.items()}
    features = _write_features(tmp_path / "features.pt", classes)
    experiment = _experiment(list(tiny_datasets))
    whole = train(experiment, tiny_datasets, tmp_path / "whole", text_features=features)

    original = AutoUniSeg.before_step

    def stop_at_six(self, step, model, run):
        original(self, step, model, run)
        if step == 6:
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(AutoUniSeg, "before_step", stop_at_six)
    with pytest.raises(SystemExit):
        train(experiment, tiny_datasets, tmp_path / "resumed", text_features=features)
    monkeypatch.setattr(AutoUniSeg, "before_step", original)
    resumed = train(experiment, tiny_datasets, tmp_path / "resumed", text_features=features)

    a = torch.load(whole, weights_only=False)
    b = torch.load(resumed, weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    taxonomy = (tmp_path / "whole" / "taxonomy.json").read_text()
    assert (tmp_path / "resumed" / "taxonomy.json").read_text() == taxonomy
