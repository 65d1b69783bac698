"""``autouniseg``: a unified label space learned by a GNN, boolean mappings by UOT (AutoUniSeg §3).

Stages (fractions of the run's iterations; the authors train 100k + 100k + 100k):

1. Multi-SegHead: shared network, one 1x1 head per dataset, each dataset's own CE.
2. At the stage switch the stage-1 heads label every dataset's ``holdout`` split; labels that
   two heads confuse both ways are merged by an integer program (:mod:`mdseg.taxonomy.merge`),
   giving N unified nodes and the initial adjacency (each node peaked on its group's labels,
   flat towards datasets it has none in). Then the label graph (:mod:`mdseg.taxonomy.gnn`) and
   the segmentation network train in alternation, the other frozen, starting with the graph
   (the authors alternate every 20k iterations): the graph phase reads dataset logits through
   the soft adjacency and adds the orthogonality loss (eq. 7, weight 10 as eq. 8's lambda_2);
   the segmentation phase through the boolean mapping from unbalanced OT
   (:mod:`mdseg.taxonomy.uot`), refreshed at the start of each segmentation phase and every
   ``refresh_every`` of the run while it lasts (authors: 100 iterations).

   Departure from the paper's merge: its score is the cosine similarity of the two labels'
   description text features (the GNN's input; ``text_weight``) plus ``visual_weight`` times
   the stage-1 agreement (the weaker of the two cross-head fractions), and a pair is a
   candidate only when each label is the other's best match in the other dataset
   (``mutual_preference``). At the synthetic benchmark's scale (a few hundred 64 px steps)
   stage-1 heads are too weak for cross-head confusions alone to find the shared concepts
   (taxonomy-recovery F1 0.26 with ``text_weight=0, visual_weight=1``); the paper trains
   100k iterations before merging. The initial mapping (and adjacency) then also links a
   node to the label of a dataset it has none in whose mean score with the node's labels
   reaches ``extra_link_threshold`` (:func:`extra_links`), so that a coarse label (Cityscapes
   rider) starts linked to the several nodes it covers (bicyclist, motorcyclist): the paper's
   mappings are many-to-one, the merge alone only one-to-one. On the synthetic default run
   (7 datasets, 360 steps) these give F1 0.84 (merge) and 0.87 (with extra links); the text
   term carries most of it (0.83 with ``visual_weight=0``).
3. A last refresh, unified nodes that no label maps to are dropped, and the segmentation
   network is fine-tuned on the fixed mapping.

Unseen datasets are scored through a many-to-one mapping from unified nodes to their classes,
fitted by min-cost flow on ``1 - IoU`` over the target's ``holdout`` split, and zero-shot by
text similarity: the zero-shot encoder (``zero_shot_encoder``, MiniLM by default, because the
training features may come from an encoder that is not at hand when evaluating) encodes the
descriptions of the labels each node stands for and of the target's classes.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdseg.data import SplitDataset, same_size_batches
from mdseg.inference import (
    Inference,
    all_reduce_sum,
    label_scores,
    rank_share,
    split_batch,
    training_scale_tiles,
)
from mdseg.io import IGNORE_ID, write_json
from mdseg.methods.base import METHODS, Matches, Method, TrainRun
from mdseg.methods.multi_head import own_head_loss
from mdseg.models.heads import DatasetHeads, DatasetLogits, UniSegHead
from mdseg.models.segmentor import Segmentor
from mdseg.taxonomy.gnn import LabelGraph, orthogonality_loss
from mdseg.taxonomy.merge import agreement, merge_groups, mutual_preference
from mdseg.taxonomy.unseen import fit_many_to_one, iou_matrix, zero_shot_many_to_one
from mdseg.taxonomy.uot import boolean_mapping

if TYPE_CHECKING:
    from mdseg.labels.encoders import TextEncoder

MULTI, UNIFIED, DATASETS = "multi", "unified", "datasets"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class Options:
    """``method_options`` of ``autouniseg``; defaults sized for the synthetic benchmark.

    Stage lengths and periods are fractions of the run's iterations (authors, of 300k: stages
    1/3 each, alternation 20k = 1/15, refresh 100 = 1/3000); dims are the authors' 2048 and 512
    scaled to a small backbone and a 384-d text encoder.
    """

    stage1: float = 1 / 3
    stage2: float = 1 / 3
    alternate_every: float = 1 / 15
    refresh_every: float = 1 / 3000
    hidden_dim: int = 256
    embed_dim: int = 64
    logit_scale: float = 10.0
    temperature: float = 0.07
    ce_weight: float = 1.0
    orth_weight: float = 10.0
    uot_reg: float = 0.01
    uot_reg_m: float = 5.0
    link_min_share: float = 0.5
    merge_threshold: float = 0.5
    text_weight: float = 1.0
    visual_weight: float = 0.2
    mutual_preference: bool = True
    extra_link_threshold: float = 0.65
    init_adjacency_logit: float = 1.0
    zero_shot_encoder: str = "minilm"
    zero_shot_encoder_path: str | None = None


@dataclass(frozen=True)
class Schedule:
    """Stage boundaries and periods in steps for a run of ``total`` steps."""

    stage2_start: int
    stage3_start: int
    alternate: int
    refresh: int

    @classmethod
    def of(cls, opts: Options, total: int) -> Schedule:
        s2 = max(1, round(opts.stage1 * total))
        s3 = max(s2 + 1, round((opts.stage1 + opts.stage2) * total))
        return cls(
            s2,
            s3,
            max(1, round(opts.alternate_every * total)),
            max(1, round(opts.refresh_every * total)),
        )

    def phase(self, step: int) -> str:
        """``multi_head``, ``graph``, ``segmentation`` (stage 2) or ``finetune``."""
        if step < self.stage2_start:
            return "multi_head"
        if step >= self.stage3_start:
            return "finetune"
        return (
            "graph" if ((step - self.stage2_start) // self.alternate) % 2 == 0 else "segmentation"
        )


@METHODS.register("autouniseg")
class AutoUniSeg(Method):
    name = "autouniseg"
    needs_text_features = True

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        text = options.pop("text_features", None)
        known = {f.name for f in fields(Options)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"method 'autouniseg': unknown options {unknown}; known: {sorted(known)}"
            )
        super().__init__(dataset_classes)
        self.opts = Options(**options)
        if text is None:
            raise ValueError("method 'autouniseg' needs text_features (one tensor per dataset)")
        self.text = torch.cat([label_features(k, dataset_classes[k], text) for k in self.datasets])
        sizes = [len(dataset_classes[d]) for d in self.datasets]
        self.offsets = [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])]
        self.owner = np.repeat(np.arange(len(sizes)), sizes)
        self.labels = [(d, c) for d in self.datasets for c in dataset_classes[d]]
        # learnt state: unified node count, boolean mapping [nodes, L], active nodes, milestones
        self.nodes = 0
        self.mapping = np.zeros((0, len(self.labels)), dtype=bool)
        self.active = np.zeros(0, dtype=bool)
        self.groups: list[list[int]] = []
        self.pruned = False
        self.refreshed_at = -1
        self._encoder: TextEncoder | None = None
        self._update_classes()

    # ------------------------------------------------------------------ network

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        graph = LabelGraph(
            self.text,
            torch.from_numpy(self.owner),
            capacity=len(self.labels),
            hidden=self.opts.hidden_dim,
            out_dim=self.opts.embed_dim,
            temperature=self.opts.temperature,
        )
        unified = UniSegHead(in_channels, graph, self.opts.embed_dim, self.opts.logit_scale)
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        return {
            MULTI: DatasetHeads(in_channels, sizes),
            UNIFIED: unified,
            DATASETS: DatasetLogits(unified),
        }

    @staticmethod
    def _head(model: nn.Module) -> UniSegHead:
        bare = getattr(model, "module", model)  # DDP wraps the Segmentor
        return bare.heads[UNIFIED]

    def _configure(self, model: nn.Module, soft: bool = False) -> None:
        self._head(model).configure(
            self.nodes, torch.from_numpy(self.mapping).float(), torch.from_numpy(self.active), soft
        )

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        if not self.nodes:
            return model(images, head=MULTI)
        self._configure(model)
        return model(images, head=UNIFIED)

    # ------------------------------------------------------------------ training

    def before_step(self, step: int, model: Segmentor, run: TrainRun) -> None:
        sched = Schedule.of(self.opts, run.total_steps)
        phase = sched.phase(step)
        if phase != "multi_head" and not self.nodes:
            self._initialise_nodes(model, run)
        if phase == "segmentation":
            since = step - sched.stage2_start
            if since % sched.alternate == 0 or since % sched.refresh == 0 or self.refreshed_at < 0:
                self._refresh(model, step)
        if phase == "finetune" and not self.pruned:
            self._refresh(model, step)
            self.active = self.mapping.any(axis=1)
            self.pruned = True
            self._update_classes()
        seg_trains = phase != "graph"
        for part in (model.backbone, model.neck, self._head(model).embed):
            part.requires_grad_(seg_trains)
            part.train(seg_trains)
        self._head(model).graph.requires_grad_(phase == "graph")
        if self.nodes:
            self._configure(model, soft=phase == "graph")
        self._phase = phase

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        if not self.nodes:
            return own_head_loss(model(images, head=MULTI), labels, dataset_idx, self.offsets)
        ce = own_head_loss(model(images, head=DATASETS), labels, dataset_idx, self.offsets)
        if getattr(self, "_phase", "") != "graph":
            return ce
        nodes, _ = self._head(model).node_embedding()
        return self.opts.ce_weight * ce + self.opts.orth_weight * orthogonality_loss(nodes)

    @torch.no_grad()
    def _initialise_nodes(self, model: Segmentor, run: TrainRun) -> None:
        """Merge labels by stage-1 cross-dataset predictions; set nodes and initial adjacency.

        The counts come from each dataset's held-out images at the training scale, tile by
        tile; under DDP each rank counts every world-th image and the counts are summed.
        """
        sizes = [len(self.dataset_classes[d]) for d in self.datasets]
        counts = {}
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
                if j != i:
                    counts[i, j] = block[:, self.offsets[j] : self.offsets[j + 1]]
        model.train(was_training)
        fractions = {k: c / np.maximum(c.sum(1, keepdims=True), 1) for k, c in counts.items()}
        score = self._merge_score(fractions, sizes)
        candidates = mutual_preference(score, self.owner) if self.opts.mutual_preference else score
        self.groups = merge_groups(self.owner, candidates, self.opts.merge_threshold)
        self.nodes = len(self.groups)
        self.mapping = extra_links(self.groups, self.owner, score, self.opts.extra_link_threshold)
        graph = self._head(model).graph
        graph.adjacency_logits.zero_()
        graph.adjacency_logits[: self.nodes] = torch.from_numpy(
            self.mapping * self.opts.init_adjacency_logit
        ).to(graph.adjacency_logits)
        self.active = np.ones(self.nodes, dtype=bool)
        self._update_classes()

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
        of dataset ``owner``): row c is its class c, column block j the argmax of head j;
        the owner's own block stays zero. Tile by tile at the training scale."""
        sizes = [end - start for start, end in itertools.pairwise(self.offsets)]
        counts = torch.zeros(sizes[owner], self.offsets[-1], dtype=torch.long, device=device)
        tiles = training_scale_tiles(data, indices, device, window, short_side, workers)
        for images, labels in tiles:
            logits = model(images, head=MULTI)
            valid = labels != IGNORE_ID
            gt = labels[valid]
            for j, (start, end) in enumerate(itertools.pairwise(self.offsets)):
                if j == owner:
                    continue
                pred = logits[:, start:end].argmax(1)[valid]
                flat = torch.bincount(gt * sizes[j] + pred, minlength=sizes[owner] * sizes[j])
                counts[:, start:end] += flat.view(sizes[owner], sizes[j])
        return counts

    def _merge_score(
        self, fractions: dict[tuple[int, int], np.ndarray], sizes: list[int]
    ) -> np.ndarray:
        """``text_weight`` x description similarity + ``visual_weight`` x stage-1 agreement."""
        score = self.opts.visual_weight * agreement(fractions, sizes)
        if self.opts.text_weight:
            text = F.normalize(self.text, dim=1)
            score = score + self.opts.text_weight * (text @ text.t()).double().numpy()
        score[self.owner[:, None] == self.owner[None, :]] = 0.0
        return score

    @torch.no_grad()
    def _refresh(self, model: Segmentor, step: int) -> None:
        """Boolean mapping from the current soft adjacency by unbalanced OT."""
        adjacency = self._head(model).graph.adjacency(self.nodes).cpu().double().numpy()
        self.mapping = boolean_mapping(
            adjacency,
            self.owner,
            reg=self.opts.uot_reg,
            reg_m=self.opts.uot_reg_m,
            min_share=self.opts.link_min_share,
        )
        self.refreshed_at = step
        self._update_classes()

    # ------------------------------------------------------------------ state

    def _update_classes(self) -> None:
        """``classes``: the stage-1 heads' channels, then the active unified nodes' names."""
        if not self.nodes:
            self.classes = [f"{d}:{c}" for d, c in self.labels]
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
        self.classes = names

    def state_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "mapping": self.mapping.tolist(),
            "active": self.active.tolist(),
            "groups": self.groups,
            "pruned": self.pruned,
            "refreshed_at": self.refreshed_at,
            "options": asdict(self.opts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nodes = int(state["nodes"])
        self.mapping = np.array(state["mapping"], dtype=bool).reshape(self.nodes, len(self.labels))
        self.active = np.array(state["active"], dtype=bool)
        self.groups = [list(g) for g in state["groups"]]
        self.pruned = bool(state["pruned"])
        self.refreshed_at = int(state["refreshed_at"])
        self._update_classes()

    # ------------------------------------------------------------------ outputs

    def taxonomy(self) -> dict[str, Any]:
        """``{"datasets": {key: classes}, "unified": [{"id", "name", "labels": {key: class}}]}``."""
        unified = []
        for channel, r in enumerate(np.flatnonzero(self.active)):
            linked = {self.labels[c][0]: self.labels[c][1] for c in np.flatnonzero(self.mapping[r])}
            unified.append({"id": channel, "name": self.classes[channel], "labels": linked})
        return {
            "datasets": {k: list(v) for k, v in self.dataset_classes.items()},
            "unified": unified,
        }

    def write_artefacts(self, model: Segmentor, out_dir: Path) -> list[Path]:
        taxonomy = self.taxonomy()
        json_path = Path(out_dir) / "taxonomy.json"
        write_json(json_path, taxonomy)
        from mdseg.taxonomy.draw import draw_taxonomy  # matplotlib only where a run ends

        return [json_path, draw_taxonomy(taxonomy, Path(out_dir) / "taxonomy.png")]

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
        self._configure(model)
        channels = np.cumsum(self.active) - 1  # node id -> score channel
        if dataset_key in self.datasets:
            start = self.offsets[self.datasets.index(dataset_key)]
            matches = {
                c: [
                    int(channels[r])
                    for r in np.flatnonzero(self.mapping[:, start + c] & self.active)
                ]
                for c in range(len(data.classes))
            }
            return {"boolean_mapping": {c: js for c, js in matches.items() if js}}
        fit_data, fit_name = data, "iou_fit_on_evaluated_split"
        if HOLDOUT in data.manifest["splits"]:
            fit_data, fit_name = SplitDataset(data.dir, HOLDOUT), "iou_fit_on_holdout"
        confusion = self._confusion(model, fit_data, device, inference or Inference())
        fitted = fit_many_to_one(iou_matrix(confusion))
        return {fit_name: fitted, "zero_shot": self._zero_shot(dataset_key, data.classes)}

    @torch.no_grad()
    def _confusion(
        self,
        model: Segmentor,
        data: SplitDataset,
        device: torch.device,
        inference: Inference,
    ) -> np.ndarray:
        """Pixel counts ``[active nodes, target classes]`` of argmax node vs ground truth, the
        images scored as the evaluation scores them (``inference``), so the fitted mapping
        reads the predictions it will be applied to."""
        n, c = len(self.classes), len(data.classes)
        counts = torch.zeros(n * c, dtype=torch.long)

        def score(images: torch.Tensor) -> torch.Tensor:
            return self.scores(model, images)

        for batch, batch_labels in same_size_batches(data):
            for images, labels in split_batch(batch, batch_labels):
                size = tuple(labels.shape[-2:])
                for (rows, cols), scores in label_scores(score, images.to(device), size, inference):
                    pred = scores.argmax(1).cpu()
                    target = labels[:, rows, cols]
                    valid = target != IGNORE_ID
                    counts += torch.bincount(pred[valid] * c + target[valid], minlength=n * c)
        return counts.view(n, c).numpy()

    def _zero_shot(self, dataset_key: str, classes: list[str]) -> Matches:
        """Nodes to target classes by text similarity (see the module docstring)."""
        encoder = self._zero_shot_encoder()
        label_texts = [t for d in self.datasets for t in class_texts(d, self.dataset_classes[d])]
        label_feats = F.normalize(encoder.encode(label_texts), dim=1)
        node_feats = torch.stack(
            [
                label_feats[torch.from_numpy(np.flatnonzero(self.mapping[r]))].mean(0)
                for r in np.flatnonzero(self.active)
            ]
        )
        target = encoder.encode(class_texts(dataset_key, classes))
        return zero_shot_many_to_one(node_feats, target)

    def _zero_shot_encoder(self) -> TextEncoder:
        if self._encoder is None:
            from mdseg.labels.encoders import build_encoder

            self._encoder = build_encoder(
                self.opts.zero_shot_encoder, self.opts.zero_shot_encoder_path
            )
        return self._encoder


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


def _holdout_or_train(run: TrainRun, key: str) -> SplitDataset:
    """The dataset's held-out split; its training split where it has none (real datasets)."""
    from mdseg.data import SplitDataset

    directory = run.dataset_dirs[key]
    manifest = json.loads((Path(directory) / "manifest.json").read_text())
    if HOLDOUT in manifest["splits"]:
        return SplitDataset(directory, HOLDOUT)
    return run.splits[key]
