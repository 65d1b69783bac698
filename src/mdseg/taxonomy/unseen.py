"""Mapping unified nodes to an unseen dataset's classes (many-to-one).

Fitted: AutoUniSeg's protocol, a min-cost flow on cost ``1 - IoU`` between each unified node's
predicted region and each target class on labelled target images. Zero-shot: by text-feature
similarity between the labels a node stands for and the target class descriptions.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F

COST_SCALE = 10_000  # networkx's flow solvers want integer costs


def iou_matrix(confusion: np.ndarray) -> np.ndarray:
    """IoU ``[N, C]`` of predicted node n and ground-truth class c from pixel counts ``[N, C]``."""
    inter = confusion.astype(np.float64)
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def fit_many_to_one(iou: np.ndarray) -> dict[int, list[int]]:
    """Each node to at most one class, minimising the summed ``1 - IoU`` by min-cost flow.

    A node may stay unmapped at cost 1 (so it maps where IoU > 0); a node maps only to classes
    it overlaps. Each class's first node earns a bonus larger than any total cost, so every
    class some node overlaps gets at least one node. Returns ``{class: [nodes]}``.
    """
    n_nodes, n_classes = iou.shape
    graph = nx.DiGraph()
    graph.add_node("source", demand=-n_nodes)
    graph.add_node("sink", demand=n_nodes)
    bonus = COST_SCALE * (n_nodes + 1)
    for r in range(n_nodes):
        graph.add_edge("source", ("node", r), capacity=1, weight=0)
        graph.add_edge(("node", r), "sink", capacity=1, weight=COST_SCALE)
        for c in np.flatnonzero(iou[r] > 0):
            cost = round(COST_SCALE * (1.0 - float(iou[r, c])))
            graph.add_edge(("node", r), ("class", int(c)), capacity=1, weight=cost)
    for c in range(n_classes):
        # two parallel routes to the sink: the first unit earns the coverage bonus
        graph.add_edge(("class", c), ("first", c), capacity=1, weight=-bonus)
        graph.add_edge(("first", c), "sink", capacity=1, weight=0)
        graph.add_edge(("class", c), "sink", capacity=n_nodes, weight=0)
    flow = nx.min_cost_flow(graph)
    matches: dict[int, list[int]] = {}
    for r in range(n_nodes):
        for target, units in flow[("node", r)].items():
            if units and target != "sink":
                matches.setdefault(target[1], []).append(r)
    return dict(sorted(matches.items()))


def zero_shot_many_to_one(
    node_features: torch.Tensor, class_features: torch.Tensor
) -> dict[int, list[int]]:
    """Each node to the target class whose text feature is most cosine-similar to its own."""
    sim = F.normalize(node_features, dim=1) @ F.normalize(class_features, dim=1).t()
    matches: dict[int, list[int]] = {}
    for r, c in enumerate(sim.argmax(dim=1).tolist()):
        matches.setdefault(c, []).append(r)
    return dict(sorted(matches.items()))
