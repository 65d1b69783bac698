"""AutoUniSeg pieces (merging ILP, label graph, UniSegHead, unseen mappings) and a
tiny end-to-end run; also the Multi-SegHead baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_experiment

from mdseg.build import build_model, load_model
from mdseg.methods import METHODS
from mdseg.methods.autouniseg import extra_links, prune_links
from mdseg.methods.autouniseg_options import AutoUniSegOptions, Schedule
from mdseg.models.heads import DatasetPrototypes, PixelEmbedding, UniSegHead
from mdseg.taxonomy.gnn import GraphOptions, LabelGraph, block_softmax
from mdseg.taxonomy.merge import agreement, merge_groups, mutual_preference
from mdseg.taxonomy.unseen import ZeroShot, fit_many_to_one, fit_unseen, iou_matrix
from mdseg.train import train

OWNER = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])  # three datasets of 3, 4 and 3 labels


def test_block_softmax_sums_to_one_per_node_and_dataset() -> None:
    torch.manual_seed(0)
    adj = block_softmax(torch.randn(5, len(OWNER)), torch.from_numpy(OWNER), 0.07)
    for d in range(3):
        sums = adj[:, torch.from_numpy(d == OWNER)].sum(dim=1)
        torch.testing.assert_close(sums, torch.ones(5))


def test_label_graph_output_and_adjacency_gradient() -> None:
    torch.manual_seed(0)
    options = GraphOptions(hidden=8, out_dim=4)
    graph = LabelGraph(torch.randn(len(OWNER), 16), torch.from_numpy(OWNER), 10, options)
    nodes, adj = graph(6)
    assert nodes.shape == (6, 4) and adj.shape == (6, len(OWNER))
    nodes.square().sum().backward()
    assert graph.adjacency_logits.grad[:6].abs().sum() > 0
    assert graph.adjacency_logits.grad[6:].abs().sum() == 0  # unused slots take no part


def _head() -> UniSegHead:
    """A UniSegHead on 2-d features whose pixel embedding is the identity."""
    torch.manual_seed(0)
    owner = torch.tensor([0, 0, 1])
    graph = LabelGraph(torch.randn(3, 4), owner, 3, GraphOptions(hidden=4, out_dim=2))
    head = UniSegHead(PixelEmbedding(2, 2), graph)
    with torch.no_grad():
        head.embedding.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        head.embedding.conv.bias.zero_()
        head.prototypes[:2] = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    return head.eval()  # no graph dropout


def test_unisegh_head_maps_node_logits_linearly_by_hand() -> None:
    head = _head()
    mapping = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # label 2 merges both nodes
    head.configure(2, False, mapping, soft=False)
    x = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # pixel embedding (0.6, 0.8) after L2 norm
    u = torch.tensor([1.2, 1.4])  # (2, 0).(0.6, 0.8) and (1, 1).(0.6, 0.8)
    torch.testing.assert_close(head(x).flatten(), u)
    # eq. 5, M u: a merged label sums its nodes' logits
    torch.testing.assert_close(head.dataset_logits(x).flatten(), torch.tensor([1.2, 1.4, 2.6]))
    head.combine = "logsumexp"
    torch.testing.assert_close(
        head.dataset_logits(x).flatten(), torch.stack([u[0], u[1], torch.logaddexp(u[0], u[1])])
    )
    head.combine = "linear"
    # a graph phase: prototypes from the graph, the UOT mapping's block then the soft one's
    head.configure(2, True, mapping, soft=True)
    nodes, adj = head.graph(2)
    u = nodes @ torch.tensor([0.6, 0.8])
    torch.testing.assert_close(head.dataset_logits(x).flatten(), torch.cat([u @ mapping, u @ adj]))
    torch.testing.assert_close(head.last_prototypes, nodes)
    head.logit_scale = 10.0  # the former head: unit node embeddings times a scale
    torch.testing.assert_close(
        head(x).flatten(),
        10 * torch.nn.functional.normalize(nodes, dim=1) @ torch.tensor([0.6, 0.8]),
    )


def test_dataset_prototypes_score_the_unit_embedding_times_a_scale() -> None:
    torch.manual_seed(0)
    heads = DatasetPrototypes(PixelEmbedding(2, 2), [1, 2], scale=10.0)
    with torch.no_grad():
        heads.embedding.conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        heads.embedding.conv.bias.zero_()
        heads.prototypes[0].copy_(torch.tensor([[1.0, 0.0]]))
        heads.prototypes[1].copy_(torch.tensor([[0.0, 2.0], [1.0, 1.0]]))
    x = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # unit embedding (0.6, 0.8)
    torch.testing.assert_close(heads(x).flatten(), 10 * torch.tensor([0.6, 1.6, 1.4]))
    assert heads.prototypes[0].shape == (1, 2) and len(heads.prototypes) == 2


def test_stage_one_and_two_share_the_pixel_embedding() -> None:
    method = METHODS["autouniseg"](
        {"cityscapes": ["road", "car"], "mapillary": ["road", "car", "sky"]},
        text_features={"cityscapes": torch.randn(2, 8), "mapillary": torch.randn(3, 8)},
        hidden_dim=8,
        embed_dim=4,
    )
    heads = method.build_heads(16)
    assert heads["multi"].embedding is heads["unified"].embedding
    assert heads["datasets"].head is heads["unified"]


def test_prune_links_drops_barely_used_links_by_hand() -> None:
    block = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)  # label 0: nodes 0, 1
    usage = np.array([[995, 5, 3, 0], [0, 0, 0, 0]])  # node 1 has 5 / 1000 of label 0
    pruned = prune_links(block, usage, 0.01)
    np.testing.assert_array_equal(pruned, [[1, 0], [0, 0], [0, 1], [0, 1]])  # label 1 unused
    np.testing.assert_array_equal(prune_links(block, usage, 0.004), block)


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


def test_fit_unseen_counts_on_the_holdout_split_when_there_is_one(tmp_path: Path) -> None:
    from conftest import make_dataset
    from PIL import Image

    from mdseg.data import SplitDataset
    from mdseg.inference import Inference
    from mdseg.io import read_json, sha256, write_json, write_split_list

    root = make_dataset(tmp_path, "camvid", ["Road", "Car", "Sky"], seed=3)
    data = SplitDataset(root, "val")

    def node_one(images: torch.Tensor) -> torch.Tensor:  # every pixel on node 1 of 2
        return torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).expand(len(images), 2, *images.shape[2:])

    name, whole = fit_unseen(node_one, 2, data, torch.device("cpu"), Inference())
    assert name == "iou_fit_on_evaluated_split"
    labels = np.concatenate([np.asarray(Image.open(label)).ravel() for _, label in data.pairs])
    assert whole == {int(np.bincount(labels[labels != 255]).argmax()): [1]}

    write_split_list(root / "holdout.lst", [("images/1.png", "labels/1.png")])
    manifest = read_json(root / "manifest.json")
    manifest["splits"]["holdout"] = {"count": 1, "list": "holdout.lst"}
    manifest["checksums"]["holdout.lst"] = sha256(root / "holdout.lst")
    write_json(root / "manifest.json", manifest)
    name, fitted = fit_unseen(
        node_one, 2, SplitDataset(root, "val"), torch.device("cpu"), Inference()
    )
    held = np.asarray(Image.open(root / "labels" / "1.png")).ravel()
    assert name == "iou_fit_on_holdout"
    assert fitted == {int(np.bincount(held[held != 255]).argmax()): [1]} != whole


def test_zero_shot_node_is_the_mean_text_feature_of_its_labels() -> None:
    words = ["road", "car", "sky"]

    class Words:
        """A stand-in text encoder: which of ``words`` a text names, one-hot."""

        def encode(self, texts: list[str]) -> torch.Tensor:
            return torch.tensor([[float(w in t.split()) for w in words] for t in texts])

    zero_shot = ZeroShot("minilm")
    zero_shot._encoder = Words()
    spaces = {"first": ["road", "car"], "second": ["sky", "road"]}
    mapping = np.array(
        [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=bool
    )  # road+road, car, sky
    found = zero_shot.matches(spaces, mapping, "third", ["sky", "car", "road"])
    assert found == {0: [2], 1: [1], 2: [0]}


def test_schedule_stages_alternation_blend_and_pruning() -> None:
    sched = Schedule.of(AutoUniSegOptions(), 300)
    assert (sched.stage2_start, sched.stage3_start, sched.alternate) == (100, 200, 20)
    assert (sched.blend, sched.refresh, sched.prune_step) == (15, 1, 250)
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
    assert sched.since_phase(147) == (2, 7)
    assert METHODS["autouniseg"].schedule_starts(_bare(), 300) == [0, 100, 200]


def _bare() -> object:
    """An AutoUniSeg method on two tiny label sets (for its schedule)."""
    return METHODS["autouniseg"](
        {"a": ["x"], "b": ["y"]}, text_features={"a": torch.randn(1, 4), "b": torch.randn(1, 4)}
    )


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
    assert method.node_names == [n["name"] for n in taxonomy["unified"]]
    n_labels = sum(len(v) for v in classes.values())
    assert method.classes[len(method.node_names) :] == [
        f"{k}:{c}" for k, v in classes.items() for c in v
    ]
    images = torch.randn(1, 3, 32, 32)
    scores = method.scores(model, images)
    assert scores.shape == (1, len(method.node_names) + n_labels, 32, 32)
    own = method.target_matches(
        model,
        "cityscapes",
        SplitDataset(tiny_datasets["cityscapes"], "val"),
        {},
        torch.device("cpu"),
    )
    nodes = len(method.node_names)
    assert own["mapped_logits"] == {c: [nodes + c] for c in range(3)}  # M u channels
    assert set(own["best_node"]) <= {0, 1, 2}

    stages = pd.read_csv(out / "stages.csv")
    assert stages["phase"].tolist() == [
        "multi_head",
        "graph",
        "segmentation",
        "graph",
        "segmentation",
        "finetune",
    ]
    assert stages["start"].tolist() == [0, 4, 5, 6, 7, 8]
    assert stages["end"].tolist() == [4, 5, 6, 7, 8, 12]
    assert stages["cosine_p95"].iloc[1:].between(-1, 1).all()
    log = pd.read_csv(out / "train_log.csv")
    assert stages["first_loss"].iloc[1] == log["dataset_loss"].iloc[4]  # step index 4
    assert (out / "stages.png").stat().st_size > 0
    merges = json.loads((out / "merges.json").read_text())
    assert merges["used"] == "unidet" and {"unidet", "text_assisted"} <= set(merges)
    assert "prune" in method.done and "finetune" in method.done
    unseen = make_dataset(tmp_path, "camvid", ["Road", "Car", "Sky"], seed=3)
    result = evaluate_dataset(method, model, SplitDataset(unseen, "val"), {}, torch.device("cpu"))
    assert result["mapping"] == "iou_fit_on_evaluated_split"  # the tiny set has no holdout
    assert "zero_shot" in result["variants"]


@pytest.fixture(scope="module")
def shared_datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``tiny_datasets`` made once for the module's resume tests."""
    from conftest import make_dataset

    tmp = tmp_path_factory.mktemp("datasets")
    return {
        "cityscapes": make_dataset(tmp, "cityscapes", ["road", "rider", "car"], seed=1),
        "mapillary": make_dataset(
            tmp, "mapillary", ["road", "bicyclist", "motorcyclist", "car"], seed=2
        ),
    }


@pytest.fixture(scope="module")
def uninterrupted(
    shared_datasets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """One uninterrupted 12-step run's ``model.pt`` and its text features."""
    from mdseg.data import SplitDataset

    tmp = tmp_path_factory.mktemp("whole")
    classes = {k: SplitDataset(d, "train").classes for k, d in shared_datasets.items()}
    features = _write_features(tmp / "features.pt", classes)
    experiment = _experiment(list(shared_datasets))
    return train(experiment, shared_datasets, tmp / "whole", text_features=features), features


# resume at each phase switch: stage 2 (merge, first graph phase), a segmentation phase,
# stage 3 (last UOT, trainable prototypes) and the pruning halfway through it
@pytest.mark.parametrize("resume_at", [4, 5, 8, 10])
def test_autouniseg_resumes_at_every_phase_switch_like_an_uninterrupted_run(
    shared_datasets: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: tuple[Path, Path],
    resume_at: int,
) -> None:
    """Stopped by SIGUSR1 just before a phase switch and resumed, the run ends with the same
    weights, taxonomy and phase records as an uninterrupted one."""
    import os
    import signal

    from mdseg.methods.autouniseg import AutoUniSeg

    whole, features = uninterrupted
    experiment = _experiment(list(shared_datasets))
    original = AutoUniSeg.before_step

    def stop_before_switch(self, step, model, run):
        original(self, step, model, run)
        if step == resume_at - 1:
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(AutoUniSeg, "before_step", stop_before_switch)
    with pytest.raises(SystemExit):
        train(experiment, shared_datasets, tmp_path / "resumed", text_features=features)
    monkeypatch.setattr(AutoUniSeg, "before_step", original)
    resumed = train(experiment, shared_datasets, tmp_path / "resumed", text_features=features)

    a = torch.load(whole, weights_only=False)
    b = torch.load(resumed, weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["method_state"] == b["method_state"]
    for name in ("taxonomy.json", "stages.csv"):
        assert (tmp_path / "resumed" / name).read_text() == (whole.parent / name).read_text()
