"""The ``method_options`` of ``autouniseg`` and the stage schedule they give a run.

Defaults follow the authors (Mrhonor/AutoUniSeg); each field names its source in
:class:`AutoUniSegOptions`. :class:`Schedule` turns the fractions into steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdseg.losses import AUTHORS_FINETUNE_WEIGHTS, HeadLoss
from mdseg.taxonomy.gnn import GraphOptions
from mdseg.taxonomy.uot import LinkRule


@dataclass(frozen=True)
class AutoUniSegOptions(HeadLoss):
    """``method_options`` of ``autouniseg``: the loss fields of :class:`~mdseg.losses.HeadLoss`
    and the fields below. Stage lengths and periods are fractions of the run's iterations (the
    authors: 300k = stages of 100k, ``train_stage{1,2}.yaml``, ``train_final_stage.yaml``).
    Defaults are the authors' except the sizes, which are scaled to a small backbone and a
    384-d text encoder (``experiments/autouniseg.yaml`` sets the authors').

    Args:
        stage1 (float, default 1 / 3): share of the run in stage 1, Multi-SegHead (authors: 100k
            of 300k).
        stage2 (float, default 1 / 3): share in stage 2, graph and segmentation phases in
            alternation (authors: 100k of 300k); stage 3 takes the rest.
        alternate_every (float, default 1 / 15): length of one graph or segmentation phase
            (authors: 20k of 300k, ``HRNetv2_model.py`` ``env_init``).
        refresh_every (float, default 1 / 3000): period of the UOT mapping refreshes while a
            graph phase blends (authors: every 100 steps).
        blend (float, default 0.75): share of a graph phase blending the soft adjacency's loss
            into the UOT mapping's, then the adjacency freezes (authors: 15k of 20k,
            ``FIRST_STAGE_GNN_ITERS``).
        graph_mapping (str, default "blend"): ``blend`` (authors); ``soft``: graph phases train
            on the soft adjacency only, UOT refreshed in segmentation phases (former).
        restart_schedule (bool, default True): warm-up, poly decay and fresh optimiser moments
            per stage, as each of the authors' stages is a separate detectron2 run; False: one
            schedule (former).
        train_prototypes (bool, default True): stage 3 trains the node prototypes (authors:
            ``HRNetv2_model_finetune.py``); False keeps them frozen (former).
        finetune_weights (dict[str, float], default AUTHORS_FINETUNE_WEIGHTS): stage 3's
            per-dataset loss weights (authors: ``loss_weight_dict`` of
            ``HRNetv2_model_finetune.py``), missing keys 1.
        prune (str, default "usage"): ``usage``: drop links barely used on held-out pixels at
            ``prune_at`` (authors: ``find_unuse_hook``, ``utils/evaluate.py``); ``unlinked``: drop
            nodes no label maps to at stage 3's start (former).
        prune_at (float, default 0.5): share of stage 3 before pruning (authors:
            ``FINETUNE_STAGE1_ITERS`` 50k of 100k).
        prune_share (float, default 0.01): a link is kept when its node takes more than this
            share of its label's pixels (authors: ``rate > 0.01``).
        hidden_dim (int, default 256): width of the GNN's layers; the authors' 2048
            (``NFEAT_OUT``) scaled to a 384-d text encoder.
        embed_dim (int, default 64): size of the pixel and node embeddings; the authors' 512
            (``OUTPUT_FEAT_DIM``) scaled to a small backbone.
        temperature (float, default 0.07): of the per-dataset adjacency softmax (eq. 2; authors:
            ``calc_adjacency_matrix``).
        gnn_input_relu (bool, default True): a ReLU after the GNN's input Linear (authors:
            ``ltbgnn_llama.py``); False is the former graph.
        gnn_dropout (float, default 0.5): dropout before every GraphSAGE layer in training
            (authors: ``dropout_rate``); 0 is the former graph.
        gnn_aggregation (str, default "row_mean"): neighbours through ``D^-1 A`` (authors:
            ``normalize_adj``); ``sum`` through ``A`` (former).
        dataset_embedding (bool, default True): a learnable per-dataset embedding added to the
            text features (paper eq. 1; the authors' released configs turn it off).
        gnn_init_std (float | None, default 0.02): std of the unified nodes' input features and
            the dataset embedding (authors: ``trunc_normal_(std=0.02)``); None: normal at the
            text features' std (former).
        text_scale (str, default "none"): text features fed as they are (authors); ``rms``
            divides them by their RMS, an aid for small unit-norm encoders.
        init_adjacency_logit (float, default 1.0): adjacency logit of each node's merged labels
            at the stage switch (authors: ``init_adjacency.pt``), flat elsewhere.
        prototype_init_std (float, default 0.02): std of the stage-1 prototypes'
            truncated-normal start (authors: ``HRNetv2_mulhead.py``).
        prototype_scale (float, default 1.0): stage-1 and unified logits times this; 1 as the
            authors, larger lets a short run's logits grow fast enough (README).
        logit_scale (float | None, default None): None: node embeddings unnormalised (authors);
            a number: unit node embeddings times it (former: 10).
        dataset_scores (str, default "linear"): dataset logits ``M u`` (eq. 5, authors);
            ``logsumexp``: log of the summed probabilities of the mapped nodes (former).
        ce_weight (float, default 1.0): weight of the dataset loss in graph phases.
        orth_weight (float, default 10.0): weight of the orthogonality loss in graph phases
            (authors: 10).
        orthogonality (str, default "row_entropy"): the orthogonality loss (eq. 7), the rows'
            entropy (authors: ``similarity_dsb``, ``HRNetv2_model.py``) or ``identity_ce``
            (former).
        orth_temperature (float, default 0.07): temperature of ``row_entropy``'s softmax.
        uot_reg (float, default 0.01): entropic regularisation of the unbalanced Sinkhorn
            (authors: ``sep_bipartite_graphs_by_uot``, ``ltbgnn_llama.py``, as the UOT
            fields below).
        uot_reg_m (float, default 5.0): weight of the relaxed marginals (authors).
        uot_cost (str, default "half"): cost ``(1 - A + 1e-8) / 2`` (authors); ``one_minus``:
            ``1 - A`` (former).
        uot_solver (str, default "knopp"): the authors' ``sinkhorn_knopp_unbalanced`` with
            POT <= 0.9.4's entropic term; ``stabilized``: POT's stabilised solver (former).
        uot_link (str, default "argmax"): every node to its argmax label, empty labels filled
            (authors); ``min_share``: the former rule.
        link_min_share (float, default 0.5): ``min_share`` only: the adjacency share a node's
            argmax link must reach.
        uot_drop_ratio (float, default 1.0): ``argmax`` only: on a label with several nodes,
            links of plan mass below this / (N L_i) drop (authors: ``uot_ratio``).
        uot_empty_label (str, default "ascending"): order in which a label left without a node
            tries nodes, by ascending plan mass (authors) or ``descending``.
        uot_marginal_momentum (float | None, default 0.7): weight of the previous label
            marginal at each refresh (authors: ``mu``); None: uniform marginals (former).
        merge (str, default "unidet"): the merge at the stage switch, UniDet's (Appendix B;
            authors: ``UniDet_learn_unify_label_space.py``) or ``text_assisted`` (former).
        unidet_tau (float, default 0.4): largest cost of a cluster (authors: 0.4).
        unidet_pair_cost (float, default 0.05): largest cost of a candidate pair (authors:
            ``score_thresh``).
        unidet_size_reward (float, default 0.5): reward per merge in the integer program
            (authors: ``lambda``).
        unidet_max_datasets (int, default 7): most labels in one cluster, one per dataset
            (authors: 7).
        merge_threshold (float, default 0.5): ``text_assisted`` only, as the four below: the
            score two labels need to merge.
        text_weight (float, default 1.0): weight of the descriptions' similarity in the score.
        visual_weight (float, default 0.2): weight of the stage-1 heads' agreement in it.
        mutual_preference (bool, default True): merge only labels that are each other's best
            match in the other dataset, which drops cross-domain noise.
        extra_link_threshold (float, default 0.65): a node also links, in a dataset it has no
            label in, that dataset's best-scoring label when its mean score reaches this.
        zero_shot_encoder (str, default "minilm"): text encoder of the zero-shot mapping of
            unseen datasets: one at hand when evaluating, whatever encoded the training labels.
        zero_shot_encoder_path (str | None, default None): its folder or hub id; None: the
            bundled copy.
    """

    stage1: float = 1 / 3
    stage2: float = 1 / 3
    alternate_every: float = 1 / 15
    refresh_every: float = 1 / 3000
    blend: float = 0.75
    graph_mapping: str = "blend"
    restart_schedule: bool = True
    # stage 3
    train_prototypes: bool = True
    finetune_weights: dict[str, float] = field(
        default_factory=lambda: dict(AUTHORS_FINETUNE_WEIGHTS)
    )
    prune: str = "usage"
    prune_at: float = 0.5
    prune_share: float = 0.01
    # label graph (mdseg.taxonomy.gnn.GraphOptions)
    hidden_dim: int = 256
    embed_dim: int = 64
    temperature: float = 0.07
    gnn_input_relu: bool = True
    gnn_dropout: float = 0.5
    gnn_aggregation: str = "row_mean"
    dataset_embedding: bool = True
    gnn_init_std: float | None = 0.02
    text_scale: str = "none"
    init_adjacency_logit: float = 1.0
    # heads
    prototype_init_std: float = 0.02
    prototype_scale: float = 1.0
    logit_scale: float | None = None
    dataset_scores: str = "linear"
    # losses of the graph phases
    ce_weight: float = 1.0
    orth_weight: float = 10.0
    orthogonality: str = "row_entropy"
    orth_temperature: float = 0.07
    # UOT (mdseg.taxonomy.uot.LinkRule)
    uot_reg: float = 0.01
    uot_reg_m: float = 5.0
    uot_cost: str = "half"
    uot_solver: str = "knopp"
    uot_link: str = "argmax"
    link_min_share: float = 0.5
    uot_drop_ratio: float = 1.0
    uot_empty_label: str = "ascending"
    uot_marginal_momentum: float | None = 0.7
    # merge at the stage switch
    merge: str = "unidet"
    unidet_tau: float = 0.4
    unidet_pair_cost: float = 0.05
    unidet_size_reward: float = 0.5
    unidet_max_datasets: int = 7
    merge_threshold: float = 0.5
    text_weight: float = 1.0
    visual_weight: float = 0.2
    mutual_preference: bool = True
    extra_link_threshold: float = 0.65
    # unseen datasets
    zero_shot_encoder: str = "minilm"
    zero_shot_encoder_path: str | None = None

    def graph(self) -> GraphOptions:
        return GraphOptions(
            hidden=self.hidden_dim,
            out_dim=self.embed_dim,
            temperature=self.temperature,
            input_relu=self.gnn_input_relu,
            dropout=self.gnn_dropout,
            aggregation=self.gnn_aggregation,
            dataset_embedding=self.dataset_embedding,
            init_std=self.gnn_init_std,
            input_scale=self.text_scale,
        )

    def link_rule(self) -> LinkRule:
        return LinkRule(
            reg=self.uot_reg,
            reg_m=self.uot_reg_m,
            cost=self.uot_cost,
            solver=self.uot_solver,
            link=self.uot_link,
            min_share=self.link_min_share,
            drop_ratio=self.uot_drop_ratio,
            empty_label=self.uot_empty_label,
            marginal_momentum=self.uot_marginal_momentum,
        )


@dataclass(frozen=True)
class Schedule:
    """Stage boundaries and periods in steps for a run of ``total`` steps."""

    stage2_start: int
    stage3_start: int
    alternate: int
    refresh: int
    blend: int
    prune_step: int
    total: int

    @classmethod
    def of(cls, opts: AutoUniSegOptions, total: int) -> Schedule:
        s2 = max(1, round(opts.stage1 * total))
        s3 = max(s2 + 1, round((opts.stage1 + opts.stage2) * total))
        alternate = max(1, round(opts.alternate_every * total))
        return cls(
            s2,
            s3,
            alternate,
            max(1, round(opts.refresh_every * total)),
            min(alternate, max(1, round(opts.blend * alternate))),
            s3 + round(opts.prune_at * (total - s3)),
            total,
        )

    def phase(self, step: int) -> str:
        """``multi_head``, ``graph``, ``segmentation`` (stage 2) or ``finetune``."""
        if step < self.stage2_start:
            return "multi_head"
        if step >= self.stage3_start:
            return "finetune"
        return "graph" if (self.since_phase(step)[0] % 2 == 0) else "segmentation"

    def since_phase(self, step: int) -> tuple[int, int]:
        """Stage-2 phase number of ``step`` and the steps since that phase began."""
        return divmod(step - self.stage2_start, self.alternate)

    def phase_starts(self) -> list[int]:
        """First step of every phase, in order."""
        return [0, *range(self.stage2_start, self.stage3_start, self.alternate), self.stage3_start]
