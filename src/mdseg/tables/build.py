"""Every table of both papers: the paper's number in ``paper``, ours in ``ours`` (empty if not run).

One builder per table fills ``ours`` (and ``ours_experiments``: which runs the number comes
from) row by row from ``results/eval``; rows whose dimension value is ``mean`` get the mean of
their group. A printed Mean that is not the mean of its printed row is flagged in ``note``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdseg.experiments import expand_experiments
from mdseg.io import atomic_path, read_manifest
from mdseg.tables.claims import check_claims
from mdseg.tables.plots import plot_paper_vs_ours, plot_training_curves
from mdseg.tables.reference import REFERENCE_TABLES, load_reference
from mdseg.tables.results import (
    AUTOUNISEG_TRAIN,
    AUTOUNISEG_UNSEEN,
    UNISEG_TRAIN,
    Results,
    load_results,
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
    """Add ``ours``, ``ours_experiments`` and ``note`` to a numeric reference table."""
    spec = TABLES[name]
    dimension = spec.dimension
    out = ref.copy()
    found = [
        spec.row(row, ctx.results, ctx.config)
        if dimension is None or row[dimension] != "mean"
        else (np.nan, "")
        for _, row in ref.iterrows()
    ]
    out["ours"] = [round(v, 2) if np.isfinite(v) else np.nan for v, _ in found]
    out["ours_experiments"] = [e for _, e in found]
    out["note"] = ""
    out.loc[_cib_cr_bce(name, out), "note"] = CIB_CR_BCE
    if name == "uniseg_table4":
        out.loc[out.metric != "class_miou", "note"] = "needs the WildDash 2 benchmark server"
    if dimension is not None:
        _fill_means(out, dimension)
    return out


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


def _fill_means(out: pd.DataFrame, dimension: str) -> None:
    """Mean rows: ours = mean of the group's other rows (if all present); flag paper misprints."""
    keys = [
        c
        for c in out.columns
        if c not in (dimension, "paper", "ours", "ours_experiments", "note", "footnote")
    ]
    for _, group in out.groupby(keys, sort=False, dropna=False):
        is_mean = group[dimension] == "mean"
        if not is_mean.any():
            continue
        parts = group[~is_mean]
        mean_index = group.index[is_mean][0]
        if parts.ours.notna().all():
            out.loc[mean_index, "ours"] = round(parts.ours.mean(), 2)
            out.loc[mean_index, "ours_experiments"] = ";".join(
                sorted({e for es in parts.ours_experiments for e in es.split(";") if e})
            )
        printed = out.loc[mean_index, "paper"]
        if pd.notna(printed) and parts.paper.notna().all():
            row_mean = parts.paper.mean()
            if abs(printed - row_mean) > 0.05 + 1e-9:
                out.loc[mean_index, "note"] = (
                    f"printed Mean {printed} is not the mean of the row ({row_mean:.2f})"
                )


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
    rel = pd.concat([pd.read_csv(p).assign(experiment=p.parent.name) for p in runs])
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
    """Write ``<paper>_<table>.csv`` for every reference table and a PNG for the numeric ones."""
    ctx = Context(Results(load_results(eval_dir)), cfg, Path(datasets_dir), Path(models_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
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
    for name, table in (
        ("claims", check_claims(ctx.results, Path(models_dir))),
        ("taxonomy_recovery", recovery_table(Path(models_dir), Path(datasets_dir))),
    ):
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            table.assign(benchmark=cfg["benchmark"]).to_csv(tmp, index=False)
        written.append(path)
    logs = {p.parent.name: pd.read_csv(p) for p in sorted(Path(models_dir).glob("*/train_log.csv"))}
    if logs:
        curves = out_dir / "training_curves.png"
        plot_training_curves(logs, curves)
        written.append(curves)
    return written + stages_summary(Path(models_dir), out_dir)
