"""AutoUniSeg costs on CPU: UOT mapping and GNN step at the paper's size, UniSegHead overhead.

Prints (1) the boolean-mapping solve (POT unbalanced Sinkhorn per dataset block) for the 7 real
training label spaces (449 labels) and 230 unified nodes, (2) one forward + backward of the label
graph at the authors' dims (4096-d llama text features, hidden 2048, 512-d output), and (3) the
time of a segmentation training step with the UniSegHead (boolean mapping, dataset logits of
all 7 datasets) against a plain 1x1 classifier over the same number of labels, on the default
config's scale (hrnet_w18_small_v2, 64 px crops, batch 7, one thread). Usage:
``python benchmarks/autouniseg.py [--threads N] [--image-size 64] [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mdseg.models.backbones import HRNetBranches
from mdseg.models.heads import DatasetLogits, LinearClassifier, UniSegHead
from mdseg.models.segmentor import Segmentor
from mdseg.taxonomy.gnn import LabelGraph, block_softmax
from mdseg.taxonomy.uot import boolean_mapping

PAPER_SIZES = [19, 65, 37, 19, 26, 150, 133]  # Cityscapes, Mapillary, SUN, BDD, IDD, ADE, COCO
SYNTHETIC_SIZES = [19, 31, 17, 19, 24, 32, 33]  # the synthetic label spaces of the same sets


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def owner_of(sizes: list[int]) -> torch.Tensor:
    return torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))


def uot_time(nodes: int, repeats: int) -> float:
    owner = owner_of(PAPER_SIZES)
    logits = torch.randn(nodes, len(owner)) * 0.1
    adjacency = block_softmax(logits, owner, 0.07).double().numpy()
    return timed(lambda: boolean_mapping(adjacency, owner.numpy()), repeats)


def gnn_time(nodes: int, repeats: int) -> float:
    owner = owner_of(PAPER_SIZES)
    graph = LabelGraph(torch.randn(len(owner), 4096), owner, nodes, hidden=2048, out_dim=512)

    def step() -> None:
        graph.zero_grad(set_to_none=True)
        x, adj = graph(nodes)
        (x.square().mean() + adj.mean()).backward()

    return timed(step, repeats)


def step_times(image_size: int, repeats: int) -> tuple[float, float]:
    """Seconds per training step with a plain 1x1 head and with the UniSegHead."""
    torch.manual_seed(0)
    owner = owner_of(SYNTHETIC_SIZES)
    n_labels, nodes = len(owner), 120
    images = torch.randn(7, 3, image_size, image_size)
    labels = torch.randint(0, min(SYNTHETIC_SIZES), (7, image_size, image_size))
    offsets = np.concatenate([[0], np.cumsum(SYNTHETIC_SIZES)])

    def make(head: torch.nn.Module) -> tuple[Segmentor, torch.optim.Optimizer]:
        model = Segmentor(HRNetBranches("hrnet_w18_small_v2"), {})
        model.heads["main"] = head
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3)

    width = Segmentor(HRNetBranches("hrnet_w18_small_v2"), {}).neck.out_channels
    plain, plain_opt = make(LinearClassifier(width, n_labels))
    graph = LabelGraph(torch.randn(n_labels, 384), owner, n_labels, hidden=256, out_dim=64)
    unihead = UniSegHead(width, graph, 64)
    mapping = torch.zeros(nodes, n_labels)
    mapping[torch.arange(nodes), torch.randint(0, n_labels, (nodes,))] = 1
    mapping[torch.randint(0, nodes, (n_labels,)), torch.arange(n_labels)] = 1
    unihead.configure(nodes, mapping, torch.ones(nodes, dtype=torch.bool), soft=False)
    graph.requires_grad_(False)  # segmentation phase: the graph is frozen
    unified, unified_opt = make(DatasetLogits(unihead))

    def step(model: Segmentor, opt: torch.optim.Optimizer) -> None:
        logits = model(images, head="main")
        loss = sum(
            F.cross_entropy(logits[i : i + 1, offsets[i] : offsets[i + 1]], labels[i : i + 1])
            for i in range(7)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(lambda: step(plain, plain_opt), repeats), timed(
        lambda: step(unified, unified_opt), repeats
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} thread(s), median of {args.repeats} runs")
    print(f"UOT boolean mapping, 449 labels x 230 nodes: {uot_time(230, args.repeats):.3f} s")
    print(
        "GNN forward+backward, 449 labels + 230 nodes, 4096->2048->512: "
        f"{gnn_time(230, max(1, args.repeats // 3)):.3f} s"
    )
    plain, unified = step_times(args.image_size, args.repeats)
    print(
        f"training step, hrnet_w18_small_v2, batch 7 x {args.image_size}px, 175 labels: "
        f"1x1 head {plain:.3f} s, UniSegHead (120 nodes) {unified:.3f} s, "
        f"overhead {100 * (unified / plain - 1):+.1f}%"
    )


if __name__ == "__main__":
    main()
