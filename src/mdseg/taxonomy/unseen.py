"""Mapping unified nodes to an unseen dataset's classes (many-to-one), as AutoUniSeg scores a
dataset it was not trained on.

Fitted (:func:`fit_unseen`): AutoUniSeg's protocol, a min-cost flow on cost ``1 - IoU`` between
each unified node's predicted region and each target class, over the target's ``holdout``
split (labelled images never evaluated on). Zero-shot (:class:`ZeroShot`): by text-feature
similarity between the descriptions of the labels a node stands for and of the target classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F

from mdseg.data import SplitDataset, same_size_batches
from mdseg.inference import Inference, ScoreFn, label_scores, split_batch
from mdseg.io import IGNORE_ID

if TYPE_CHECKING:
    from mdseg.labels.encoders import TextEncoder

COST_SCALE = 10_000  # networkx's flow solvers want integer costs
HOLDOUT = "holdout"  # the split of training images held out of training (``mdseg prepare``)


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


@torch.no_grad()
def node_confusion(
    score: ScoreFn,
    n_nodes: int,
    data: SplitDataset,
    device: torch.device,
    inference: Inference,
) -> np.ndarray:
    """Pixel counts ``[n_nodes, target classes]`` of argmax node vs ground truth.

    ``score`` maps images to the model's scores, whose first ``n_nodes`` channels are the
    nodes; the images are scored as the evaluation scores them (``inference``), so the fitted
    mapping reads the predictions it will be applied to.
    """
    c = len(data.classes)
    counts = torch.zeros(n_nodes * c, dtype=torch.long)
    for batch, batch_labels in same_size_batches(data):
        for images, labels in split_batch(batch, batch_labels):
            size = tuple(labels.shape[-2:])
            for (rows, cols), scores in label_scores(score, images.to(device), size, inference):
                pred = scores[:, :n_nodes].argmax(1).cpu()
                target = labels[:, rows, cols]
                valid = target != IGNORE_ID
                counts += torch.bincount(pred[valid] * c + target[valid], minlength=n_nodes * c)
    return counts.view(n_nodes, c).numpy()


def fit_unseen(
    score: ScoreFn,
    n_nodes: int,
    data: SplitDataset,
    device: torch.device,
    inference: Inference,
) -> tuple[str, dict[int, list[int]]]:
    """The fitted mapping ``{class: [nodes]}`` of ``data``'s dataset and its variant name:
    fitted on the dataset's ``holdout`` split where it has one, else on ``data`` itself."""
    fit_data, name = data, "iou_fit_on_evaluated_split"
    if HOLDOUT in data.manifest["splits"]:
        fit_data, name = SplitDataset(data.dir, HOLDOUT), "iou_fit_on_holdout"
    confusion = node_confusion(score, n_nodes, fit_data, device, inference)
    return name, fit_many_to_one(iou_matrix(confusion))


def class_texts(key: str, classes: list[str]) -> list[str]:
    """Description of each class: the packaged one where the dataset has it, else the template."""
    from mdseg.datasets.classnames import load_classnames
    from mdseg.datasets.info import DATASETS as KNOWN
    from mdseg.labels.descriptions import TEMPLATE, describe

    known: dict[str, str] = {}
    display = key
    if key in KNOWN:
        display = KNOWN[key].display
        known = dict(zip(load_classnames(key), describe(key), strict=True))
    return [known.get(c, TEMPLATE.format(label=c, dataset=display)) for c in classes]


class ZeroShot:
    """Zero-shot mapping by text with encoder ``encoder`` (a registered name, ``path`` its
    folder or hub id), built on first use: the training features may come from an encoder that
    is not at hand when evaluating, so the zero-shot one is chosen on its own."""

    def __init__(self, encoder: str, path: str | None = None) -> None:
        self.encoder_name = encoder
        self.path = path
        self._encoder: TextEncoder | None = None

    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            from mdseg.labels.encoders import build_encoder

            self._encoder = build_encoder(self.encoder_name, self.path)
        return self._encoder

    def matches(
        self,
        dataset_classes: dict[str, list[str]],
        mapping: np.ndarray,
        key: str,
        classes: list[str],
    ) -> dict[int, list[int]]:
        """``{class: [nodes]}`` for dataset ``key``'s ``classes``.

        ``mapping [nodes, labels]`` is boolean over the labels of ``dataset_classes`` in order;
        a node's feature is the mean of its labels' description features, unit-normalised.
        """
        encoder = self.encoder()
        texts = [t for d, names in dataset_classes.items() for t in class_texts(d, names)]
        label_feats = F.normalize(encoder.encode(texts), dim=1)
        node_feats = torch.stack(
            [label_feats[torch.from_numpy(np.flatnonzero(row))].mean(0) for row in mapping]
        )
        return zero_shot_many_to_one(node_feats, encoder.encode(class_texts(key, classes)))
