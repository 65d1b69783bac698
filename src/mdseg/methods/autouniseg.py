"""``autouniseg``: a unified label space learned by a GNN, boolean mappings by UOT (AutoUniSeg §3),
trained as the authors train it (Mrhonor/AutoUniSeg; configs/7_datasets/train_stage{1,2}.yaml,
train_final_stage.yaml). Stage lengths and periods are fractions of the run's iterations (the
authors: 100k + 100k + 100k).

1. **Multi-SegHead** (``HRNetv2_mulhead.py``): a shared L2-normalised pixel embedding
   (:class:`~mdseg.models.heads.PixelEmbedding`) scored against per-dataset prototypes, each
   dataset's OHEM loss weighted and summed (:class:`~mdseg.losses.HeadLoss`).
2. **Label graph and segmentation in alternation.** At the switch the stage-1 heads label every
   dataset's ``holdout`` split, tile by tile at the training scale; labels are merged by the
   UniDet procedure of the paper's Appendix B (``merge: unidet``,
   :func:`mdseg.taxonomy.merge.unidet_merge`, ``utils/UniDet_learn_unify_label_space.py``),
   giving N nodes and the initial adjacency (logit 1 on each node's labels at temperature 0.07,
   flat towards datasets it has none in: ``init_adjacency.pt``). The stage keeps stage 1's
   embedding (the authors' stages share ``proj_head``). Graph (``graph``) and segmentation
   (``segmentation``) phases alternate every ``alternate_every`` (20k), graph first
   (``HRNetv2_model.py`` ``env_init``):

   - graph phase: the network is frozen in eval mode, the GNN trains with dropout. Over the
     first ``blend`` of the phase (15k of 20k, ``FIRST_STAGE_GNN_ITERS``) the loss blends the
     soft adjacency's into the UOT mapping's, ``r L(UOT) + (1 - r) L(soft)`` with r rising
     from 0 to 1, the UOT mapping refreshed every ``refresh_every`` (100); then the adjacency
     freezes, its UOT mapping is taken once, and the rest of the GNN trains on it. The
     orthogonality loss (weight 10) is added.
   - segmentation phase: the UOT mapping of the final adjacency and the GNN's output as fixed
     node prototypes; the network trains.
3. **Fine-tuning** (``HRNetv2_model_finetune.py``): a last UOT mapping, the node prototypes
   become trainable, loss weights drop to ``finetune_weights``; halfway (``prune_at``) every link
   used by less than ``prune_share`` (1 %) of its label's held-out pixels is dropped
   (``utils/evaluate.py`` ``find_unuse_hook``).

Each stage restarts warm-up and poly decay with fresh optimiser moments (each is a separate
detectron2 run; ``restart_schedule``); the backbone's 0.1 learning-rate multiplier and gradient
clipping are training options (``training.backbone_lr_multiplier``, ``clip_grad_norm``).
Dataset logits are ``M u`` (eq. 5) in training and evaluation.

Departures, each a named option (the former behaviour of this project, kept reachable):
``merge: text_assisted`` (description similarity plus stage-1 agreement, mutual preference and
extra links: :mod:`mdseg.taxonomy.merge`); ``graph_mapping: soft`` (soft adjacency only in graph
phases, UOT refreshed during segmentation phases); the GNN's former layers (``gnn_*``);
``logit_scale`` (unit node embeddings times a scale); ``dataset_scores: logsumexp``;
``orthogonality: identity_ce``; the former UOT rule (``uot_*``); ``prune: unlinked`` (drop nodes
no label maps to at the start of stage 3); ``restart_schedule: false``;
``train_prototypes: false``; ``loss: ce``.

Unseen datasets are scored through a many-to-one mapping from unified nodes to their classes
(:mod:`mdseg.taxonomy.unseen`): fitted by min-cost flow on ``1 - IoU`` over the target's
``holdout`` split, and zero-shot by text similarity, the zero-shot encoder
(``zero_shot_encoder``) encoding the descriptions of the labels each node stands for and of
the target's classes. Every option is documented in :class:`AutoUniSegOptions`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdseg.data import SplitDataset
from mdseg.inference import Inference, all_reduce_sum, rank_share, training_scale_tiles
from mdseg.io import IGNORE_ID, write_json
from mdseg.losses import orthogonality_loss
from mdseg.methods.autouniseg_options import AutoUniSegOptions, Schedule
from mdseg.methods.base import METHODS, Matches, Method, TrainRun
from mdseg.models.heads import (
    DatasetLogits,
    DatasetPrototypes,
    PixelEmbedding,
    UniSegHead,
    map_logits,
)
from mdseg.models.segmentor import Segmentor
from mdseg.taxonomy.gnn import LabelGraph, pairwise_cosine
from mdseg.taxonomy.merge import agreement, merge_groups, mutual_preference, unidet_merge
from mdseg.taxonomy.unseen import HOLDOUT, ZeroShot, fit_unseen
from mdseg.taxonomy.uot import boolean_mapping

MULTI, UNIFIED, DATASETS = "multi", "unified", "datasets"


@METHODS.register("autouniseg")
class AutoUniSeg(Method):
    needs_text_features = True
    Options = AutoUniSegOptions
    opts: AutoUniSegOptions

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        text = options.pop("text_features", None)
        super().__init__(dataset_classes, **options)
        if text is None:
            raise ValueError("method 'autouniseg' needs text_features (one tensor per dataset)")
        self.text = torch.cat([label_features(k, dataset_classes[k], text) for k in self.datasets])
        sizes = [len(dataset_classes[d]) for d in self.datasets]
        self.offsets = [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]
        self.owner = np.repeat(np.arange(len(sizes)), sizes)
        self.labels = [(d, c) for d in self.datasets for c in dataset_classes[d]]
        # learnt state: unified node count, boolean mapping [nodes, L], active nodes, UOT label
        # marginals, the merges, milestones and one diagnostics row per phase
        self.nodes = 0
        self.mapping = np.zeros((0, len(self.labels)), dtype=bool)
        self.active = np.zeros(0, dtype=bool)
        self.marginals: dict[int, np.ndarray] | None = None
        self.groups: list[list[int]] = []
        self.merges: dict[str, list[list[int]]] = {}
        self.done: list[str] = []  # events taken, e.g. "seg@40", so a resume never repeats one
        self.stages: list[dict[str, Any]] = []
        self._phase = "multi_head"
        self._blend = 1.0
        self._losses: list[float] = []
        self._zero_shot = ZeroShot(self.opts.zero_shot_encoder, self.opts.zero_shot_encoder_path)
        self._update_classes()

    # ------------------------------------------------------------------ network

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        graph = LabelGraph(
            self.text, torch.from_numpy(self.owner), len(self.labels), self.opts.graph()
        )
        embedding = PixelEmbedding(in_channels, self.opts.embed_dim)
        unified = UniSegHead(
            embedding,
            graph,
            self.opts.logit_scale,
            self.opts.dataset_scores,
            self.opts.prototype_scale,
        )
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        stage1 = DatasetPrototypes(
            embedding, sizes, self.opts.prototype_init_std, self.opts.prototype_scale
        )
        return {
            MULTI: stage1,
            UNIFIED: unified,
            DATASETS: DatasetLogits(unified),
        }

    @staticmethod
    def _head(model: nn.Module) -> UniSegHead:
        bare = getattr(model, "module", model)  # DDP wraps the Segmentor
        return bare.heads[UNIFIED]

    def _mapping_tensor(self) -> torch.Tensor:
        return torch.from_numpy(self.mapping).float()

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        """Stage 1: the heads' channels. Later: the active nodes' logits, then every training
        label's logit through the mapping (``M u``), the channels of :attr:`classes`."""
        if not self.nodes:
            return model(images, head=MULTI)
        mapping = self._mapping_tensor()
        self._head(model).configure(self.nodes, False, mapping, soft=False)
        u = model(images, head=UNIFIED)
        mapped = map_logits(u, mapping.to(u), self.opts.dataset_scores)
        return torch.cat([u[:, torch.from_numpy(self.active).to(u.device)], mapped], dim=1)

    # ------------------------------------------------------------------ training

    def schedule_starts(self, total_steps: int) -> list[int]:
        if not self.opts.restart_schedule:
            return [0]
        sched = Schedule.of(self.opts, total_steps)
        return [0, sched.stage2_start, sched.stage3_start]

    def before_step(self, step: int, model: Segmentor, run: TrainRun) -> None:
        sched = Schedule.of(self.opts, run.total_steps)
        phase = sched.phase(step)
        head = self._head(model)
        if phase != "multi_head" and not self.nodes:
            self._initialise_nodes(model, run)
        if phase == "graph":
            self._graph_step(step, sched, model)
        elif phase == "segmentation":
            start = step - sched.since_phase(step)[1]
            self._event(f"segmentation@{start}", lambda: self._to_segmentation(model, step))
        elif phase == "finetune":
            self._event("finetune", lambda: self._to_finetune(model, step))
            if self.opts.prune == "usage" and step >= sched.prune_step:
                self._event("prune", lambda: self._prune(model, run))
        self._set_trainable(model, phase)
        if self.nodes:
            soft = phase == "graph" and (self.opts.graph_mapping == "soft" or self._blend < 1.0)
            uot = not (phase == "graph" and self.opts.graph_mapping == "soft")
            head.configure(
                self.nodes,
                phase == "graph",
                self._mapping_tensor() if uot else None,
                soft=soft,
            )
        self._phase = phase

    def _event(self, name: str, action: Any) -> None:
        """Run ``action`` once per run (the name is kept in the state, so resumes skip it)."""
        if name not in self.done:
            action()
            self.done.append(name)

    def _graph_step(self, step: int, sched: Schedule, model: Segmentor) -> None:
        """Blend weight and UOT refreshes of a graph phase (see the module docstring)."""
        since = sched.since_phase(step)[1]
        start = step - since
        self._event(f"graph@{start}", lambda: self._record(model, "graph", step))
        if self.opts.graph_mapping == "soft":
            self._blend = 0.0
            return
        self._blend = min(1.0, since / sched.blend)
        if since < sched.blend:
            if since % sched.refresh == 0:
                self._event(f"uot@{step}", lambda: self._refresh(model))
        else:
            self._event(f"freeze@{start}", lambda: self._refresh(model))

    def _set_trainable(self, model: Segmentor, phase: str) -> None:
        """Freeze what the phase does not train; eval mode for frozen parts (authors' env_init)."""
        head = self._head(model)
        network = phase != "graph"
        for part in (model.backbone, model.neck, head.embedding, model.heads[MULTI]):
            part.requires_grad_(network)
            part.train(network)
        graph_trains = phase == "graph"
        head.graph.requires_grad_(graph_trains)
        head.graph.train(graph_trains)
        if graph_trains and self.opts.graph_mapping == "blend":
            head.graph.adjacency_logits.requires_grad_(self._blend < 1.0)
        head.prototypes.requires_grad_(phase == "finetune" and self.opts.train_prototypes)

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        if not self.nodes:
            ce = self.opts(
                model(images, head=MULTI), labels, dataset_idx, self.offsets, self.datasets
            )
            self._losses.append(float(ce.detach()))
            return ce
        weights = self.opts.finetune_weights if self._phase == "finetune" else None
        logits = model(images, head=DATASETS)
        blocks = [
            self.opts(b, labels, dataset_idx, self.offsets, self.datasets, weights)
            for b in logits.split(self.offsets[-1], dim=1)
        ]
        if len(blocks) == 2:  # graph phase blend: UOT mapping first, soft adjacency second
            ce = self._blend * blocks[0] + (1.0 - self._blend) * blocks[1]
        else:
            ce = blocks[0]
        self._losses.append(float(ce.detach()))
        if self._phase != "graph":
            return ce
        nodes = self._head(model).last_prototypes
        orth = orthogonality_loss(nodes, self.opts.orthogonality, self.opts.orth_temperature)
        return self.opts.ce_weight * ce + self.opts.orth_weight * orth

    def log_fields(self) -> dict[str, Any]:
        """The phase and the dataset loss (without the orthogonality term) of the step."""
        loss = round(float(np.mean(self._losses)), 6) if self._losses else None
        self._losses = []
        return {"phase": self._phase, "dataset_loss": loss}

    # ------------------------------------------------------------------ phase switches

    @torch.no_grad()
    def _node_embedding(self, model: Segmentor, from_graph: bool) -> torch.Tensor:
        """Node prototypes ``[nodes, D]``: the GNN's output in eval mode, or the snapshot."""
        head = self._head(model)
        if not from_graph:
            return head.prototypes[: self.nodes].detach().clone()
        was = head.graph.training
        head.graph.eval()
        nodes, _ = head.graph(self.nodes)
        head.graph.train(was)
        return nodes.detach()

    def _record(self, model: Segmentor, phase: str, step: int) -> None:
        """A ``stages.csv`` row: the phase, its first step and the node embeddings' spread."""
        from_graph = phase == "graph"
        median, p95 = pairwise_cosine(self._node_embedding(model, from_graph).float())
        self.stages.append(
            {
                "phase": phase,
                "start": step,
                "cosine_median": round(median, 4),
                "cosine_p95": round(p95, 4),
                "nodes": int(self.active.sum()),
                "links": int(self.mapping.sum()),
            }
        )

    @torch.no_grad()
    def _snapshot(self, model: Segmentor) -> None:
        """The GNN's output (eval mode) becomes the node prototypes (``set_unify_prototype``)."""
        head = self._head(model)
        head.prototypes[: self.nodes] = self._node_embedding(model, True).to(head.prototypes)

    def _to_segmentation(self, model: Segmentor, step: int) -> None:
        """Graph -> segmentation: UOT of the final adjacency, frozen node prototypes."""
        self._refresh(model)
        self._snapshot(model)
        self._record(model, "segmentation", step)

    def _to_finetune(self, model: Segmentor, step: int) -> None:
        """Stage 3 (``HRNetv2_model_finetune.py`` ``env_init``): a last UOT mapping and the
        GNN's output as prototypes (trained on from here unless ``train_prototypes`` is off)."""
        self._refresh(model)
        self._snapshot(model)
        if self.opts.prune == "unlinked":
            self.active = self.mapping.any(axis=1)
            self._update_classes()
        self._record(model, "finetune", step)

    @torch.no_grad()
    def _refresh(self, model: Segmentor) -> None:
        """Boolean mapping from the current soft adjacency by unbalanced OT."""
        adjacency = self._head(model).graph.adjacency(self.nodes).cpu().double().numpy()
        self.mapping, self.marginals = boolean_mapping(
            adjacency, self.owner, self.opts.link_rule(), self.marginals
        )
        self._update_classes()

    @torch.no_grad()
    def _prune(self, model: Segmentor, run: TrainRun) -> None:
        """Drop every link used by less than ``prune_share`` of its label's held-out pixels
        among the label's nodes (argmax over all nodes; a label none of whose nodes is used
        keeps them all), as the authors' ``find_unuse_hook`` (utils/evaluate.py)."""
        was_training = model.training
        model.eval()
        head = self._head(model)
        head.configure(self.nodes, False, self._mapping_tensor(), soft=False)
        for i, key in enumerate(self.datasets):
            data = _holdout_or_train(run, key)
            cols = np.arange(self.offsets[i], self.offsets[i + 1])
            hist = torch.zeros(len(cols), self.nodes, dtype=torch.long, device=run.device)
            tiles = training_scale_tiles(
                data,
                rank_share(range(len(data)), run.ctx),
                run.device,
                run.crop_size,
                run.resize_short_side,
                run.workers,
            )
            for images, labels in tiles:
                pred = model(images, head=UNIFIED).argmax(1)
                valid = labels != IGNORE_ID
                flat = labels[valid] * self.nodes + pred[valid]
                hist += torch.bincount(flat, minlength=hist.numel()).view(hist.shape)
            all_reduce_sum([hist], run.ctx)
            self.mapping[:, cols] = prune_links(
                self.mapping[:, cols], hist.cpu().numpy(), self.opts.prune_share
            )
        model.train(was_training)
        self._update_classes()

    @torch.no_grad()
    def _initialise_nodes(self, model: Segmentor, run: TrainRun) -> None:
        """Merge labels by stage-1 cross-head predictions; set nodes and initial adjacency.

        The counts come from each dataset's held-out images at the training scale, tile by
        tile; under DDP each rank counts every world-th image and the counts are summed.
        """
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        counts: dict[tuple[int, int], np.ndarray] = {}
        was_training = model.training
        model.eval()
        for i, key in enumerate(self.datasets):
            data = _holdout_or_train(run, key)
            block = self.cross_head_counts(
                model,
                data,
                i,
                rank_share(range(len(data)), run.ctx),
                run.device,
                run.crop_size,
                run.resize_short_side,
                run.workers,
            )
            all_reduce_sum([block], run.ctx)
            block = block.cpu().numpy().astype(np.float64)
            for j in range(len(sizes)):
                counts[i, j] = block[:, self.offsets[j] : self.offsets[j + 1]]
        model.train(was_training)
        text_groups, text_mapping = self._text_assisted_merge(counts, sizes)
        self.merges = {
            "unidet": unidet_merge(
                counts,
                sizes,
                tau=self.opts.unidet_tau,
                pair_cost=self.opts.unidet_pair_cost,
                size_reward=self.opts.unidet_size_reward,
                max_datasets=self.opts.unidet_max_datasets,
            ),
            "text_assisted": text_groups,
        }
        self.groups = self.merges[self.opts.merge]
        self.nodes = len(self.groups)
        if self.opts.merge == "text_assisted":
            self.mapping = text_mapping
        else:
            self.mapping = np.zeros((self.nodes, len(self.labels)), dtype=bool)
            for r, group in enumerate(self.groups):
                self.mapping[r, group] = True
        graph = self._head(model).graph
        graph.adjacency_logits.zero_()
        graph.adjacency_logits[: self.nodes] = torch.from_numpy(
            self.mapping * self.opts.init_adjacency_logit
        ).to(graph.adjacency_logits)
        self.active = np.ones(self.nodes, dtype=bool)
        self._update_classes()

    def _text_assisted_merge(
        self, counts: dict[tuple[int, int], np.ndarray], sizes: list[int]
    ) -> tuple[list[list[int]], np.ndarray]:
        """The former merge: ``text_weight`` x description similarity + ``visual_weight`` x
        stage-1 agreement, mutual best matches only, then :func:`extra_links`."""
        fractions = {
            k: c / np.maximum(c.sum(1, keepdims=True), 1) for k, c in counts.items() if k[0] != k[1]
        }
        score = self.opts.visual_weight * agreement(fractions, sizes)
        if self.opts.text_weight:
            text = F.normalize(self.text, dim=1)
            score = score + self.opts.text_weight * (text @ text.t()).double().numpy()
        score[self.owner[:, None] == self.owner[None, :]] = 0.0
        candidates = mutual_preference(score, self.owner) if self.opts.mutual_preference else score
        groups = merge_groups(self.owner, candidates, self.opts.merge_threshold)
        return groups, extra_links(groups, self.owner, score, self.opts.extra_link_threshold)

    @torch.no_grad()
    def cross_head_counts(
        self,
        model: Segmentor,
        data: SplitDataset,
        owner: int,
        indices: list[int],
        device: torch.device,
        window: int | None = None,
        short_side: int | None = None,
        workers: int = 0,
    ) -> torch.Tensor:
        """Pixel counts ``[K_owner, L]`` (int64, on ``device``) over ``data[indices]`` (a split
        of dataset ``owner``): row c is its class c, column block j the argmax of head j (its
        own head included). Tile by tile at the training scale."""
        sizes = [end - start for start, end in itertools.pairwise(self.offsets)]
        counts = torch.zeros(sizes[owner], self.offsets[-1], dtype=torch.long, device=device)
        tiles = training_scale_tiles(data, indices, device, window, short_side, workers)
        for images, labels in tiles:
            logits = model(images, head=MULTI)
            valid = labels != IGNORE_ID
            gt = labels[valid]
            for j, (start, end) in enumerate(itertools.pairwise(self.offsets)):
                pred = logits[:, start:end].argmax(1)[valid]
                flat = torch.bincount(gt * sizes[j] + pred, minlength=sizes[owner] * sizes[j])
                counts[:, start:end] += flat.view(sizes[owner], sizes[j])
        return counts

    # ------------------------------------------------------------------ state

    def _update_classes(self) -> None:
        """``classes``: the stage-1 heads' channels; once there are nodes, the active nodes'
        names (``node_names``) followed by every training label's mapped channel."""
        label_channels = [f"{d}:{c}" for d, c in self.labels]
        if not self.nodes:
            self.node_names: list[str] = []
            self.classes = label_channels
            return
        names, seen = [], set()
        for r in np.flatnonzero(self.active):
            linked = [self.labels[c][1] for c in np.flatnonzero(self.mapping[r])]
            name = "/".join(dict.fromkeys(linked)) or f"unlinked {r}"
            unique, k = name, 2
            while unique in seen:
                unique, k = f"{name} #{k}", k + 1
            seen.add(unique)
            names.append(unique)
        self.node_names = names
        self.classes = names + label_channels

    def state_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "mapping": self.mapping.tolist(),
            "active": self.active.tolist(),
            "marginals": None
            if self.marginals is None
            else {str(k): v.tolist() for k, v in self.marginals.items()},
            "groups": self.groups,
            "merges": self.merges,
            "done": self.done,
            "stages": self.stages,
            "options": asdict(self.opts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nodes = int(state["nodes"])
        self.mapping = np.array(state["mapping"], dtype=bool).reshape(self.nodes, len(self.labels))
        self.active = np.array(state["active"], dtype=bool)
        marginals = state["marginals"]
        self.marginals = (
            None
            if marginals is None
            else {int(k): np.array(v, dtype=np.float64) for k, v in marginals.items()}
        )
        self.groups = [list(g) for g in state["groups"]]
        self.merges = {k: [list(g) for g in v] for k, v in state["merges"].items()}
        self.done = list(state["done"])
        self.stages = [dict(r) for r in state["stages"]]
        self._update_classes()

    # ------------------------------------------------------------------ outputs

    def taxonomy(self) -> dict[str, Any]:
        """``{"datasets": {key: classes}, "unified": [{"id", "name", "labels": {key: class}}]}``."""
        unified = []
        for channel, r in enumerate(np.flatnonzero(self.active)):
            linked = {self.labels[c][0]: self.labels[c][1] for c in np.flatnonzero(self.mapping[r])}
            unified.append({"id": channel, "name": self.node_names[channel], "labels": linked})
        return {
            "datasets": {k: list(v) for k, v in self.dataset_classes.items()},
            "unified": unified,
        }

    def merge_taxonomies(self) -> dict[str, Any]:
        """Each merge's groups at the stage switch (the one trained from and the other) in
        :meth:`taxonomy`'s ``unified`` format, for the taxonomy-recovery table."""
        return {
            name: {
                "unified": [
                    {"labels": {self.labels[c][0]: self.labels[c][1] for c in group}}
                    for group in groups
                ]
            }
            for name, groups in self.merges.items()
        } | {"used": self.opts.merge}

    def write_artefacts(self, model: Segmentor, out_dir: Path) -> list[Path]:
        out_dir = Path(out_dir)
        taxonomy = self.taxonomy()
        json_path = out_dir / "taxonomy.json"
        write_json(json_path, taxonomy)
        merges_path = out_dir / "merges.json"
        write_json(merges_path, self.merge_taxonomies())
        # matplotlib and pandas only where a run ends
        import pandas as pd

        from mdseg.taxonomy.draw import draw_taxonomy
        from mdseg.taxonomy.stages import plot_stages, stages_table

        log = pd.read_csv(out_dir / "train_log.csv")
        table = stages_table(self.stages, log)
        stages_path = out_dir / "stages.csv"
        table.to_csv(stages_path, index=False)
        runs, logs = {out_dir.name: table}, {out_dir.name: log}
        return [
            json_path,
            draw_taxonomy(taxonomy, out_dir / "taxonomy.png"),
            merges_path,
            stages_path,
            plot_stages(runs, logs, out_dir / "stages.png"),
        ]

    def target_matches(
        self,
        model: Segmentor,
        dataset_key: str,
        data: SplitDataset,
        aliases: dict[str, list[str]],
        device: torch.device,
        inference: Inference | None = None,
    ) -> dict[str, Matches]:
        if not self.nodes:
            raise RuntimeError(
                "autouniseg: the model has no unified label space yet (stage 1 only)"
            )
        channels = np.cumsum(self.active) - 1  # node id -> score channel
        if dataset_key in self.datasets:
            # the authors score a training dataset through its labels' M u (eq. 5); the
            # best single node of each label is kept as a variant
            start = self.offsets[self.datasets.index(dataset_key)]
            mapped = {c: [len(self.node_names) + start + c] for c in range(len(data.classes))}
            best_node = {
                c: [
                    int(channels[r])
                    for r in np.flatnonzero(self.mapping[:, start + c] & self.active)
                ]
                for c in range(len(data.classes))
            }
            return {
                "mapped_logits": mapped,
                "best_node": {c: js for c, js in best_node.items() if js},
            }
        fit_name, fitted = fit_unseen(
            lambda images: self.scores(model, images),
            len(self.node_names),
            data,
            device,
            inference or Inference(),
        )
        zero_shot = self._zero_shot.matches(
            self.dataset_classes, self.mapping[self.active], dataset_key, data.classes
        )
        return {fit_name: fitted, "zero_shot": zero_shot}


def prune_links(block: np.ndarray, usage: np.ndarray, share: float) -> np.ndarray:
    """One dataset's mapping ``block [N, K]`` without the links its labels barely use.

    ``usage[c, r]`` counts label c's pixels whose argmax node is r. A link (r, c) stays when r
    takes more than ``share`` of the pixels that c's linked nodes take together; a label none
    of whose nodes takes any pixel keeps them all (the authors' ``find_unuse_hook``,
    Mrhonor/AutoUniSeg auto_uni_seg/utils/evaluate.py: ``rate > 0.01``).
    """
    out = block.copy()
    for c in range(block.shape[1]):
        linked = np.flatnonzero(block[:, c])
        total = usage[c, linked].sum()
        if total > 0:
            out[linked[usage[c, linked] / total <= share], c] = False
    return out


def extra_links(
    groups: list[list[int]], owner: np.ndarray, score: np.ndarray, threshold: float
) -> np.ndarray:
    """Boolean ``[len(groups), L]`` mapping: each group's labels, plus per dataset the group has
    no label in, that dataset's label of highest mean ``score`` with the group's labels where
    it reaches ``threshold`` (a label may so gain several nodes: many-to-one)."""
    mapping = np.zeros((len(groups), len(owner)), dtype=bool)
    for r, group in enumerate(groups):
        mapping[r, group] = True
        for d in np.unique(owner):
            cols = np.flatnonzero(owner == d)
            if mapping[r, cols].any():
                continue
            mean = score[np.ix_(group, cols)].mean(axis=0)
            if mean.max() >= threshold:
                mapping[r, cols[mean.argmax()]] = True
    return mapping


def label_features(key: str, classes: list[str], text: dict[str, torch.Tensor]) -> torch.Tensor:
    """Text features ``[len(classes), dim]`` of ``key``'s classes.

    ``mdseg encode`` encodes a dataset's full registered class list; a dataset that keeps a
    subset of it (the synthetic ones) takes its classes' rows by name.
    """
    from mdseg.datasets.classnames import load_classnames
    from mdseg.datasets.info import DATASETS as KNOWN

    if key not in text:
        raise KeyError(f"autouniseg: no text features for dataset {key!r}")
    feats = torch.as_tensor(text[key]).float()
    if len(feats) == len(classes):
        return feats
    names = load_classnames(key) if key in KNOWN else []
    missing = [c for c in classes if c not in names]
    if len(feats) != len(names) or missing:
        raise ValueError(
            f"autouniseg: {key} has {len(classes)} classes but {len(feats)} text features "
            f"(not its registered class list either; unmatched: {missing[:5]})"
        )
    return feats[[names.index(c) for c in classes]]


def _holdout_or_train(run: TrainRun, key: str) -> SplitDataset:
    """The dataset's held-out split; its training split where it has none (real datasets)."""
    directory = run.dataset_dirs[key]
    manifest = json.loads((Path(directory) / "manifest.json").read_text())
    if HOLDOUT in manifest["splits"]:
        return SplitDataset(directory, HOLDOUT)
    return run.splits[key]
