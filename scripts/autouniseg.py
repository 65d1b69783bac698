"""AutoUniSeg costs on CPU: UOT mapping, UniDet merge and GNN step at the paper's size, head cost.

The paper trains on 7 label spaces (449 labels), merged into a few hundred unified nodes; this
prints what each piece of :mod:`mdseg.methods.autouniseg` costs at that size, to tell what a UOT
refresh, the merge at the stage switch, a graph step and the unified head add to a run:

1. the boolean-mapping solve (:func:`mdseg.taxonomy.uot.boolean_mapping`, one unbalanced
   Sinkhorn per dataset block) for 449 labels and 230 and 300 unified nodes, with the authors'
   rule (``LinkRule()``: POT's ``sinkhorn_knopp_unbalanced``, running label marginals) and the
   former one (``LinkRule(cost="one_minus", solver="stabilized", link="min_share",
   marginal_momentum=None)``), on a random soft adjacency (temperature 0.07);
2. the UniDet merge (:func:`mdseg.taxonomy.merge.unidet_merge`) on random but plausible
   stage-1 cross-head counts at the 7 real sizes (:func:`plausible_counts`: labels are drawn
   from a shared pool of concepts, a head finds a concept it knows slightly less well than the
   concept's own head), with the number of groups (unified nodes) it gives;
3. one forward + backward of the label graph (:class:`mdseg.taxonomy.gnn.LabelGraph`) at the
   authors' dims (4096-d llama-2 text features, hidden 2048, 512-d output) with the authors'
   other :class:`~mdseg.taxonomy.gnn.GraphOptions` (ReLU, dropout 0.5 in training mode,
   row-mean aggregation), 230 nodes, the loss of a graph phase in miniature: the orthogonality
   loss (:func:`mdseg.losses.orthogonality_loss`) plus a linear term in the soft adjacency;
4. one segmentation training step (forward, OHEM dataset losses with the authors' weights via
   :func:`mdseg.losses.dataset_losses`, backward, AdamW) of the default config's scale
   (hrnet_w18_small_v2, 64 px crops, batch 7 = one image per dataset, one thread, 64-d pixel
   embedding, the synthetic label spaces' 175 labels) with the Multi-SegHead's
   :class:`~mdseg.models.heads.DatasetPrototypes` and with the
   :class:`~mdseg.models.heads.UniSegHead` of a stage-2 segmentation phase (frozen node
   prototypes and graph, boolean mapping, every dataset's logits ``M u`` by
   :func:`~mdseg.models.heads.map_logits`), its node count that of :func:`plausible_counts`'
   merge at the synthetic sizes.

Usage: ``python scripts/autouniseg.py [--threads N] [--image-size 64] [--repeats 10]``.
``--threads`` sets torch's threads; POT's numpy runs on as many BLAS threads as the environment
allows (``OMP_NUM_THREADS``). Figures are medians; on shared cores they vary from run to run.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from mdseg.losses import AUTHORS_WEIGHTS, dataset_losses, orthogonality_loss
from mdseg.models.backbones import HRNetBranches
from mdseg.models.heads import DatasetLogits, DatasetPrototypes, PixelEmbedding, UniSegHead
from mdseg.models.segmentor import Segmentor
from mdseg.taxonomy.gnn import GraphOptions, LabelGraph, block_softmax
from mdseg.taxonomy.merge import unidet_merge
from mdseg.taxonomy.uot import LinkRule, boolean_mapping

DATASETS = ["cityscapes", "mapillary", "sunrgbd", "bdd", "idd", "ade20k", "coco"]
PAPER_SIZES = [19, 65, 37, 19, 26, 150, 133]
SYNTHETIC_SIZES = [19, 31, 17, 19, 24, 32, 33]  # the synthetic label spaces of the same sets
RULES = {
    "authors' rule": LinkRule(),
    "former rule": LinkRule(
        cost="one_minus", solver="stabilized", link="min_share", marginal_momentum=None
    ),
}


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


def uot_time(nodes: int, rule: LinkRule, repeats: int) -> float:
    """Seconds of one boolean mapping of 449 labels and ``nodes`` nodes, marginals carried on."""
    owner = owner_of(PAPER_SIZES)
    logits = torch.randn(nodes, len(owner), generator=torch.Generator().manual_seed(0)) * 0.1
    adjacency = block_softmax(logits, owner, 0.07).double().numpy()
    _, marginals = boolean_mapping(adjacency, owner.numpy(), rule)
    return timed(lambda: boolean_mapping(adjacency, owner.numpy(), rule, marginals), repeats)


def plausible_counts(sizes: list[int], seed: int = 0) -> dict[tuple[int, int], np.ndarray]:
    """Stage-1 cross-head pixel counts ``{(d, h): [K_d, K_h]}`` with some shared concepts.

    Every dataset draws its labels from a pool of ``1.3 x`` its largest label space concepts,
    popular ones more often (weight ``1 / (rank + 5)``). 1000 pixels of each label go to the
    heads' classes: its own head is right on a share in [0.5, 0.95]; a head with the same
    concept finds it on that share times [0.85, 1.05] (a small domain drop, so some pairs pass
    the merge's 0.05 cost and some not); the rest spreads over three random classes.
    """
    rng = np.random.default_rng(seed)
    pool = round(1.3 * max(sizes))
    weight = 1.0 / (np.arange(pool) + 5.0)
    concepts = [rng.choice(pool, size, replace=False, p=weight / weight.sum()) for size in sizes]
    accuracy = [rng.uniform(0.5, 0.95, size) for size in sizes]
    counts = {}
    for d, h in itertools.product(range(len(sizes)), repeat=2):
        index = {int(k): e for e, k in enumerate(concepts[h])}
        block = np.zeros((sizes[d], sizes[h]))
        for c, concept in enumerate(concepts[d].tolist()):
            share = np.zeros(sizes[h])
            hit = c if d == h else index.get(concept)
            found = 0.0
            if hit is not None:
                found = min(accuracy[d][c] * (1.0 if d == h else rng.uniform(0.85, 1.05)), 1.0)
                share[hit] = found
            others = rng.choice(sizes[h], 3, replace=False)
            share[others] += (1.0 - found) * rng.dirichlet(np.ones(3))
            block[c] = rng.multinomial(1000, share / share.sum())
        counts[d, h] = block
    return counts


def merge_time(repeats: int) -> tuple[float, int]:
    """Seconds of the UniDet merge at the paper's sizes and the number of groups it gives."""
    counts = plausible_counts(PAPER_SIZES)
    groups = unidet_merge(counts, PAPER_SIZES)
    return timed(lambda: unidet_merge(counts, PAPER_SIZES), repeats), len(groups)


def gnn_time(nodes: int, repeats: int) -> float:
    """Seconds of one forward + backward of the label graph at the authors' dims."""
    torch.manual_seed(0)
    owner = owner_of(PAPER_SIZES)
    options = GraphOptions(hidden=2048, out_dim=512)
    graph = LabelGraph(torch.randn(len(owner), 4096), owner, nodes, options).train()
    target = torch.rand(nodes, len(owner))

    def step() -> None:
        graph.zero_grad(set_to_none=True)
        x, adj = graph(nodes)
        (orthogonality_loss(x) + (adj * target).sum()).backward()

    return timed(step, repeats)


def step_times(image_size: int, repeats: int) -> tuple[float, float, int]:
    """Seconds per training step with the Multi-SegHead and with the UniSegHead, and its nodes."""
    torch.manual_seed(0)
    sizes = SYNTHETIC_SIZES
    owner = owner_of(sizes)
    n_labels = len(owner)
    offsets = [0, *np.cumsum(sizes).tolist()]
    weights = [AUTHORS_WEIGHTS.get(d, 1.0) for d in DATASETS]
    images = torch.randn(len(sizes), 3, image_size, image_size)
    labels = torch.stack([torch.randint(0, k, (image_size, image_size)) for k in sizes])
    dataset_idx = torch.arange(len(sizes))
    groups = unidet_merge(plausible_counts(sizes), sizes)
    nodes = len(groups)
    mapping = torch.zeros(nodes, n_labels)
    for r, group in enumerate(groups):
        mapping[r, group] = 1.0

    def make(head: torch.nn.Module) -> tuple[Segmentor, torch.optim.Optimizer]:
        model = Segmentor(HRNetBranches("hrnet_w18_small_v2"), {"main": head})
        params = [p for p in model.parameters() if p.requires_grad]
        return model, torch.optim.AdamW(params, lr=1e-3)

    width = Segmentor(HRNetBranches("hrnet_w18_small_v2"), {}).neck.out_channels
    multi = make(DatasetPrototypes(PixelEmbedding(width, 64), sizes))
    graph = LabelGraph(torch.randn(n_labels, 384), owner, n_labels, GraphOptions())
    unihead = UniSegHead(PixelEmbedding(width, 64), graph)
    with torch.no_grad():
        unihead.prototypes.normal_(0.0, 0.02)
    unihead.configure(nodes, False, mapping, soft=False)
    graph.requires_grad_(False)  # segmentation phase: graph and node prototypes are frozen
    unihead.prototypes.requires_grad_(False)
    unified = make(DatasetLogits(unihead))

    def step(model: Segmentor, opt: torch.optim.Optimizer) -> None:
        logits = model(images, head="main")
        loss = dataset_losses(logits, labels, dataset_idx, offsets, weights=weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(lambda: step(*multi), repeats), timed(lambda: step(*unified), repeats), nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} thread(s), median of {args.repeats} runs")
    for name, rule in RULES.items():
        for nodes in (230, 300):
            seconds = uot_time(nodes, rule, args.repeats)
            print(f"UOT boolean mapping, 449 labels x {nodes} nodes, {name}: {seconds:.3f} s")
    seconds, groups = merge_time(args.repeats)
    print(
        f"UniDet merge, 449 labels, plausible cross-head counts: {seconds:.3f} s -> {groups} nodes"
    )
    print(
        "GNN forward+backward, 449 labels + 230 nodes, 4096->2048->512: "
        f"{gnn_time(230, max(1, args.repeats // 3)):.3f} s"
    )
    multi, unified, nodes = step_times(args.image_size, args.repeats)
    print(
        f"training step, hrnet_w18_small_v2, batch 7 x {args.image_size}px, 175 labels, OHEM: "
        f"Multi-SegHead prototypes {multi:.3f} s, UniSegHead ({nodes} nodes, M u) "
        f"{unified:.3f} s, overhead {100 * (unified / multi - 1):+.1f}%"
    )


if __name__ == "__main__":
    main()
