"""The label graph (authors' and former options) and its collapse diagnostic, against
hand-written computations (the orthogonality loss: tests/test_losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from mdseg.taxonomy.gnn import GraphOptions, LabelGraph, block_softmax, pairwise_cosine

OWNER = torch.tensor([0, 0, 1, 1, 1])  # two datasets of 2 and 3 labels
FORMER = GraphOptions(
    hidden=6, out_dim=3, input_relu=False, dropout=0.0, aggregation="sum", init_std=None
)


def _graph(options: GraphOptions) -> LabelGraph:
    torch.manual_seed(0)
    graph = LabelGraph(torch.randn(len(OWNER), 4), OWNER, capacity=4, options=options)
    with torch.no_grad():
        graph.adjacency_logits.copy_(torch.randn(4, len(OWNER)))
    return graph


def _by_hand(graph: LabelGraph, n: int, relu: bool, row_normalise: bool) -> torch.Tensor:
    """The bipartite adjacency built as one (L+n)x(L+n) matrix, then SAGE layers on it."""
    n_labels = len(OWNER)
    adj = block_softmax(graph.adjacency_logits[:n], OWNER, graph.temperature)
    full = torch.zeros(n_labels + n, n_labels + n)
    full[:n_labels, n_labels:] = adj.t()
    full[n_labels:, :n_labels] = adj
    if row_normalise:
        full = full / full.sum(dim=1, keepdim=True)
    x = graph.text + graph.dataset_embedding[OWNER]
    h = torch.cat([x, graph.unified_input[:n]]) @ graph.inp.weight.t() + graph.inp.bias
    if relu:
        h = h.clamp(min=0)
    for conv in graph.convs:
        hidden = h.shape[1]
        self_w, neighbour_w = conv.weight[:hidden], conv.weight[hidden:]
        h = torch.tanh(h @ self_w + (full @ h) @ neighbour_w + conv.bias)
    return h[n_labels:] @ graph.out.weight.t() + graph.out.bias


def test_sum_aggregation_is_the_former_graph() -> None:
    graph = _graph(FORMER)
    nodes, adj = graph(3)
    assert nodes.shape == (3, 3) and adj.shape == (3, len(OWNER))
    torch.testing.assert_close(nodes, _by_hand(graph, 3, relu=False, row_normalise=False))


def test_authors_graph_is_row_normalised_with_input_relu_in_eval_mode() -> None:
    graph = _graph(GraphOptions(hidden=6, out_dim=3)).eval()
    torch.testing.assert_close(graph(3)[0], _by_hand(graph, 3, relu=True, row_normalise=True))


def test_dropout_only_in_training_mode() -> None:
    graph = _graph(GraphOptions(hidden=64, out_dim=3))
    assert not torch.equal(graph(3)[0], graph(3)[0])  # a new dropout draw each forward
    graph.eval()
    assert torch.equal(graph(3)[0], graph(3)[0])
    former = _graph(FORMER)
    assert torch.equal(former(3)[0], former.eval()(3)[0])


def test_a_label_no_node_reaches_aggregates_zero_and_gradients_stay_finite() -> None:
    graph = _graph(GraphOptions(hidden=6, out_dim=3)).eval()
    with torch.no_grad():
        graph.adjacency_logits[:, 0] = -1000.0  # label 0's softmax weight underflows to 0
    nodes, adj = graph(3)
    assert (adj[:, 0] == 0).all()
    nodes.square().sum().backward()
    grads = [p.grad for p in graph.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)


def test_inputs_follow_the_init_options() -> None:
    text = 3.0 * torch.randn(200, 64)
    owner = torch.arange(200) % 4
    authors = LabelGraph(text, owner, 300, GraphOptions())
    assert authors.unified_input.std().item() == pytest.approx(0.02, rel=0.05)
    assert authors.dataset_embedding.shape == (4, 64)
    former = LabelGraph(text, owner, 300, GraphOptions(init_std=None))
    assert former.unified_input.std().item() == pytest.approx(3.0, rel=0.05)
    bare = LabelGraph(text, owner, 300, GraphOptions(dataset_embedding=False))
    assert "dataset_embedding" not in dict(bare.named_parameters())
    scaled = LabelGraph(text, owner, 300, GraphOptions(input_scale="rms"))
    assert scaled.text.square().mean().sqrt().item() == pytest.approx(1.0)
    torch.testing.assert_close(scaled.text * text.square().mean().sqrt(), text)
    bound = 1 / math.sqrt(authors.options.hidden)
    for conv in authors.convs:
        assert conv.weight.shape == (2 * 256, 256)
        assert conv.weight.abs().max() <= bound and conv.bias.abs().max() <= bound


@pytest.mark.parametrize(
    ("field", "value"),
    [("aggregation", "mean"), ("input_scale", "std"), ("dropout", 1.0), ("init_std", 0.0)],
)
def test_graph_options_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        GraphOptions(**{field: value})


def test_pairwise_cosine_by_hand() -> None:
    # pairs: ab 0.6, ac 0, ad -0.8, bc 0.8, bd 0, cd 0.6 -> sorted -0.8 0 0 0.6 0.6 0.8
    rows = torch.tensor([[2.0, 0.0], [0.6, 0.8], [0.0, 5.0], [-0.8, 0.6]])
    median, p95 = pairwise_cosine(rows)
    assert median == pytest.approx(0.3)  # (0 + 0.6) / 2
    assert p95 == pytest.approx(0.75)  # numpy's linear rule: 0.6 + 0.75 * (0.8 - 0.6)
    with pytest.raises(ValueError, match="2 rows"):
        pairwise_cosine(rows[:1])
