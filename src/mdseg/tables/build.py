"""Every table of both papers: the paper's number in ``paper``, ours in ``ours`` (empty if not run).

One builder per table gives our value row by row from one seed's runs in ``results/eval``; rows
whose dimension value is ``mean`` get the mean of their group. ``ours`` is the mean of those
values over seeds, ``ours_std`` their spread and ``ours_seeds`` how many seeds had one;
``ours_experiments`` names the runs. A printed Mean that is not the mean of its printed row is
flagged in ``note``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdseg.experiments import expand_experiments
from mdseg.io import atomic_path, read_manifest, read_table
from mdseg.tables.claims import check_claims
from mdseg.tables.plots import plot_claims, plot_paper_vs_ours, plot_training_curves
from mdseg.tables.reference import REFERENCE_TABLES, load_reference
from mdseg.tables.results import (
    AUTOUNISEG_TRAIN,
    AUTOUNISEG_UNSEEN,
    RERUN_RELATIONS,
    RERUN_TRAINING,
    UNISEG_TRAIN,
    Results,
    load_results,
    spread,
    train_set,
)
from mdseg.tables.taxonomy_recovery import recovery_table
from mdseg.taxonomy.stages import stages_summary

# AutoUniSeg's cross-dataset means count the target classes a model cannot predict as IoU 0
ALL_CLASSES = "miou_all_classes"
Lookup = tuple[float, str]
RowBuilder = Callable[[pd.Series, Results, dict[str, Any]], Lookup]


@dataclass(frozen=True)
class Context:
    results: Results
    config: dict[str, Any]
    datasets_dir: Path
    models_dir: Path | None = None


@dataclass(frozen=True)
class TableSpec:
    """How one table gets our values: per row (numeric tables, plotted) or as a whole."""

    dimension: str | None = None  # column whose "mean" rows average the other rows of a group
    row: RowBuilder | None = None
    whole: Callable[[pd.DataFrame, Context], pd.DataFrame] | None = None


TABLES: dict[str, TableSpec] = {}


def builder(name: str, dimension: str | None) -> Callable[[RowBuilder], RowBuilder]:
    def add(fn: RowBuilder) -> RowBuilder:
        TABLES[name] = TableSpec(dimension=dimension, row=fn)
        return fn

    return add


def whole_table(name: str) -> Callable:
    def add(fn: Callable[[pd.DataFrame, Context], pd.DataFrame]) -> Callable:
        TABLES[name] = TableSpec(whole=fn)
        return fn

    return add


def _uniseg_unseen(row: pd.Series, res: Results, _: dict[str, Any]) -> Lookup:
    if row.method == "single_best":
        return res.single_best(row.backbone, UNISEG_TRAIN, row.dataset)
    return res.miou(row.method, row.backbone, train_set(row.train_datasets), row.dataset)


builder("uniseg_table1", "dataset")(_uniseg_unseen)
builder("uniseg_table2", "dataset")(_uniseg_unseen)


@builder("uniseg_table3", "held_out")
def _uniseg_leave_one_out(row: pd.Series, res: Results, _: dict[str, Any]) -> Lookup:
    train = frozenset(UNISEG_TRAIN) - {row.held_out}
    return res.miou(row.method, row.backbone, train, row.held_out)


@builder("uniseg_table4", None)
def _uniseg_wilddash2(row: pd.Series, res: Results, cfg: dict[str, Any]) -> Lookup:
    if row.metric != "class_miou":  # negative-class mIoU and meta average need the WD2 server
        return np.nan, ""
    backbone = cfg["tables"].get("uniseg_table4_backbone", row.backbone)
    return res.miou(row.method, backbone, frozenset(UNISEG_TRAIN), "wilddash2")


@builder("uniseg_tableA2", "dataset")
def _uniseg_seen(row: pd.Series, res: Results, _: dict[str, Any]) -> Lookup:
    return res.miou(row.method, row.backbone, frozenset(UNISEG_TRAIN), row.dataset)


@builder("autouniseg_table2", "dataset")
def _autouniseg_training_sets(row: pd.Series, res: Results, cfg: dict[str, Any]) -> Lookup:
    backbone = cfg["tables"]["autouniseg_backbone"]
    if row.method == "single":
        return res.miou("single", backbone, frozenset([row.dataset]), row.dataset)
    return res.miou(row.method, backbone, frozenset(AUTOUNISEG_TRAIN), row.dataset)


@builder("autouniseg_table3", None)
def _autouniseg_baselines(row: pd.Series, res: Results, cfg: dict[str, Any]) -> Lookup:
    backbone = cfg["tables"]["autouniseg_backbone"]
    datasets = AUTOUNISEG_TRAIN if row.eval_set == "train_mean" else AUTOUNISEG_UNSEEN
    if row.model == "single":
        train = frozenset([row.trained])
        found = [res.miou("single", backbone, train, d, ALL_CLASSES) for d in datasets]
    elif row.model == "autouniseg":
        train = frozenset(AUTOUNISEG_TRAIN)
        found = [res.miou("autouniseg", backbone, train, d, ALL_CLASSES) for d in datasets]
    else:  # Multi-SegHead read through the head of the dataset in ``trained``
        train, head = frozenset(AUTOUNISEG_TRAIN), f"head_{row.trained}"
        found = [res.miou("multi_head", backbone, train, d, ALL_CLASSES, head) for d in datasets]
    return _mean(found)


def _mean(found: list[Lookup]) -> Lookup:
    values = [v for v, _ in found if np.isfinite(v)]
    if not values:
        return np.nan, ""
    return float(np.mean(values)), ";".join(sorted({e for _, e in found if e}))


def fill_ours(name: str, ref: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Add ``ours``, ``ours_std``, ``ours_seeds``, ``ours_experiments`` and ``note`` to a numeric
    reference table.

    ``ours`` is the mean over seeds of the row builder's value on each seed's runs (mean rows:
    of that seed's group mean), ``ours_std`` its sample std (empty with one seed) and
    ``ours_seeds`` how many seeds had a value.
    """
    spec = TABLES[name]
    per_seed = [
        _ours_on(spec, ref, ctx.results.for_seed(seed), ctx.config)
        for seed in ctx.results.seeds() or [None]
    ]
    out = ref.copy()
    stats = [spread([found[i][0] for found in per_seed]) for i in range(len(ref))]
    out["ours"] = [round(m, 2) for m, _, _ in stats]
    out["ours_std"] = [round(sd, 2) for _, sd, _ in stats]
    out["ours_seeds"] = [n for _, _, n in stats]
    out["ours_experiments"] = [
        ";".join(sorted({e for found in per_seed for e in found[i][1].split(";") if e}))
        for i in range(len(ref))
    ]
    out["note"] = ""
    out.loc[_cib_cr_bce(name, out), "note"] = CIB_CR_BCE
    if name == "uniseg_table4":
        out.loc[out.metric != "class_miou", "note"] = "needs the WildDash 2 benchmark server"
    if spec.dimension is not None:
        _flag_misprints(out, spec.dimension)
    return out


def _ours_on(spec: TableSpec, ref: pd.DataFrame, res: Results, cfg: dict[str, Any]) -> list[Lookup]:
    """One seed's value per row; a ``mean`` row gets its group's mean if every part is there."""
    dimension = spec.dimension
    found = [
        spec.row(row, res, cfg) if dimension is None or row[dimension] != "mean" else (np.nan, "")
        for _, row in ref.iterrows()
    ]
    if dimension is None:
        return found
    for is_mean, parts in _mean_groups(ref, dimension):
        values = [found[i][0] for i in parts]
        if all(np.isfinite(values)):
            runs = {e for i in parts for e in found[i][1].split(";") if e}
            found[is_mean] = (float(np.mean(values)), ";".join(sorted(runs)))
    return found


def _mean_groups(ref: pd.DataFrame, dimension: str) -> list[tuple[int, list[int]]]:
    """(position of the ``mean`` row, positions of the rows it averages) per group."""
    keys = [c for c in ref.columns if c not in (dimension, "paper", "footnote")]
    groups = []
    for _, group in ref.reset_index(drop=True).groupby(keys, sort=False, dropna=False):
        is_mean = group[dimension] == "mean"
        if is_mean.any():
            groups.append((int(group.index[is_mean][0]), list(group.index[~is_mean])))
    return groups


CIB_CR_BCE = (
    "ours only: the paper reports no C-R BCE run on C+I+B (no multi-labels in its label space);"
    " ours fine-tunes with the C+I+B+M relations restricted to C+I+B"
)


def _cib_cr_bce(name: str, out: pd.DataFrame) -> pd.Series:
    """The C-R BCE cells trained on C+I+B (Tables 1-2 rows, Table 3's held-out Mapillary)."""
    if name in ("uniseg_table1", "uniseg_table2"):
        return (out.method == "cr_bce") & (out.train_datasets == "C+I+B")
    if name == "uniseg_table3":
        return (out.method == "cr_bce") & (out.held_out == "mapillary")
    return pd.Series(False, index=out.index)


def _flag_misprints(out: pd.DataFrame, dimension: str) -> None:
    """Flag a printed Mean that is not the mean of the printed row in ``note``."""
    paper = out.paper.to_numpy()
    for is_mean, parts in _mean_groups(out.drop(columns=_OURS_COLUMNS), dimension):
        printed = paper[is_mean]
        if pd.notna(printed) and pd.notna(paper[parts]).all():
            row_mean = float(np.mean(paper[parts]))
            if abs(printed - row_mean) > 0.05 + 1e-9:
                out.iloc[is_mean, out.columns.get_loc("note")] = (
                    f"printed Mean {printed} is not the mean of the row ({row_mean:.2f})"
                )


_OURS_COLUMNS = ["ours", "ours_std", "ours_seeds", "ours_experiments", "note"]


@whole_table("uniseg_tableA3")
def union_membership(ref: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """UniSeg Table A-3 in long form: is each class in each dataset's label space, paper vs ours."""
    long = ref.melt(id_vars="class", var_name="dataset", value_name="paper")
    ours: dict[str, set[str]] = {}
    for key in long.dataset.unique():
        manifest = ctx.datasets_dir / key / "manifest.json"
        if manifest.exists():
            ours[key] = {c.lower() for c in read_manifest(manifest)["classes"]}
    long["ours"] = [
        (int(c in ours[d]) if d in ours else np.nan)
        for c, d in zip(long["class"], long.dataset, strict=True)
    ]
    extra = [
        {"class": c, "dataset": d, "paper": 0, "ours": 1}
        for d, names in ours.items()
        for c in sorted(names - set(ref["class"]))
    ]
    return pd.concat([long, pd.DataFrame(extra)], ignore_index=True)


@whole_table("autouniseg_table1")
def dataset_roles(ref: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """AutoUniSeg Table 1: each dataset's role in the paper and in our configured runs."""
    experiments = expand_experiments(ctx.config).values()
    trained = {k for e in experiments for k in e["train"]}
    evaluated = {k for e in experiments for k in e["evaluate"]}
    out = ref.rename(columns={"role": "paper"})
    out["ours"] = [
        "train" if d in trained else "unseen" if d in evaluated else "" for d in out.dataset
    ]
    return out


@whole_table("uniseg_tableA1")
def multi_label_pairs(ref: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """UniSeg Table A-1: the paper's multi-label pairs and ours (from C-R BCE on C+I+B+M).

    ``ours`` is 1/0 where we ran C-R BCE on the four datasets and nan otherwise; pairs we
    generated that the paper does not list are added with ``paper`` 0. ``ours_score`` is the
    highest similarity score behind a generated pair.
    """
    table = ref.assign(paper=1)
    runs = sorted(Path(ctx.models_dir or "").glob("cr_bce-*-C+I+B+M/relations.csv"))
    if not runs:
        return table.assign(ours=np.nan, ours_score=np.nan, ours_experiments="")
    rel = pd.concat([read_table(p, RERUN_RELATIONS).assign(experiment=p.parent.name) for p in runs])
    ours = rel.groupby(["class", "related_class"]).agg(
        ours_score=("score", "max"),
        ours_experiments=("experiment", lambda e: ";".join(sorted(set(e)))),
    )
    ours.index = ours.index.set_names(["primary", "secondary"])
    merged = table.merge(ours.reset_index(), on=["primary", "secondary"], how="outer")
    merged["paper"] = merged.paper.fillna(0).astype(int)
    merged["ours"] = merged.ours_score.notna().astype(int)
    merged["ours_experiments"] = merged.ours_experiments.fillna("")
    return merged[["primary", "secondary", "paper", "ours", "ours_score", "ours_experiments"]]


def build_tables(
    cfg: dict[str, Any], eval_dir: Path, datasets_dir: Path, models_dir: Path, out_dir: Path
) -> list[Path]:
    """Write ``<paper>_<table>.csv`` for every reference table and a PNG for the numeric ones,
    the claims (``claims.csv`` and its summary figure ``claims.png``), taxonomy recovery and
    each trained model's curves (``curves/<experiment>.png``).

    All of them are built in a staging folder beside ``out_dir`` and moved in at the end, so a
    bad input (a damaged result or log) leaves the tables of the last good run as they were.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as staging:
        built = [
            p.relative_to(staging)
            for p in _build_tables(cfg, eval_dir, datasets_dir, models_dir, Path(staging))
        ]
        for path in built:
            (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(staging) / path, out_dir / path)
    return [out_dir / path for path in built]


def _build_tables(
    cfg: dict[str, Any], eval_dir: Path, datasets_dir: Path, models_dir: Path, out_dir: Path
) -> list[Path]:
    ctx = Context(Results(load_results(eval_dir)), cfg, Path(datasets_dir), Path(models_dir))
    logs = {
        p.parent.name: read_table(p, RERUN_TRAINING)
        for p in sorted(Path(models_dir).glob("*/train_log.csv"))
    }
    written = []
    for name in REFERENCE_TABLES:
        spec = TABLES[name]
        ref = load_reference(name)
        table = fill_ours(name, ref, ctx) if spec.row else spec.whole(ref, ctx)
        table["benchmark"] = cfg["benchmark"]
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        written.append(path)
        if spec.row:
            png = out_dir / f"{name}.png"
            plot_paper_vs_ours(table, spec.dimension, name, png)
            written.append(png)
    claims = check_claims(ctx.results, Path(models_dir)).assign(benchmark=cfg["benchmark"])
    recovery = recovery_table(Path(models_dir), Path(datasets_dir)).assign(
        benchmark=cfg["benchmark"]
    )
    for name, table in (("claims", claims), ("taxonomy_recovery", recovery)):
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        written.append(path)
    plot_claims(claims, out_dir / "claims.png")
    written.append(out_dir / "claims.png")
    (out_dir / "curves").mkdir()
    for name, log in logs.items():
        curves = out_dir / "curves" / f"{name}.png"
        plot_training_curves(name, log, curves)
        written.append(curves)
    return written + stages_summary(Path(models_dir), out_dir)
