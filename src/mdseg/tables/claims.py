"""The papers' qualitative claims, each checked on our results: ``results/tables/claims.csv``.

A claim compares methods on the datasets the paper compares them on. Where the compared runs
exist for several backbones or training sets, each pairing is listed in ``figures`` and the
verdict is taken on the average over pairings. ``holds`` is ``yes``, ``no`` or ``not run``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdseg.tables.results import (
    AUTOUNISEG_TRAIN,
    AUTOUNISEG_UNSEEN,
    UNISEG_TRAIN,
    UNISEG_UNSEEN,
    Results,
)

NOT_RUN = "not run"


@dataclass(frozen=True)
class Verdict:
    holds: str
    figures: str


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    check: Callable[[Results, Path], Verdict]


def _mean_over(
    res: Results, method: str, backbone: str, train: frozenset[str], datasets: list[str], metric
) -> float:
    values = [res.miou(method, backbone, train, d, metric)[0] for d in datasets]
    return float(np.mean(values)) if all(np.isfinite(values)) else np.nan


def _pairings(res: Results, method: str) -> list[tuple[str, frozenset[str]]]:
    f = res.frame[res.frame.method == method]
    return sorted({(b, t) for b, t in zip(f.backbone, f.train, strict=True)}, key=str)


def _label(backbone: str, train: frozenset[str]) -> str:
    return f"{backbone} {'+'.join(sorted(train))}"


def beats(
    better: str, worse: str, datasets: list[str], metric: str = "miou"
) -> Callable[[Results, Path], Verdict]:
    """``better`` has a higher mean over ``datasets`` than ``worse`` on the same backbone and
    training set, on average over every such pairing we ran."""

    def check(res: Results, _: Path) -> Verdict:
        gaps, figures = [], []
        for backbone, train in _pairings(res, better):
            a = _mean_over(res, better, backbone, train, datasets, metric)
            b = _mean_over(res, worse, backbone, train, datasets, metric)
            if np.isfinite(a) and np.isfinite(b):
                gaps.append(a - b)
                figures.append(f"{_label(backbone, train)}: {better} {a:.2f} vs {worse} {b:.2f}")
        return _verdict(gaps, figures)

    return check


def beats_single_best(datasets: list[str], candidates: list[str]) -> Callable:
    """Every multi-dataset method trained on all of ``candidates`` beats the single-best model
    (per test set, the best single-dataset model trained on one of ``candidates``)."""

    def check(res: Results, _: Path) -> Verdict:
        gaps, figures = [], []
        f = res.frame
        multi = f[f.train.apply(frozenset(candidates).__eq__) & (f.method != "single")]
        for method, backbone in sorted(set(zip(multi.method, multi.backbone, strict=True))):
            a = _mean_over(res, method, backbone, frozenset(candidates), datasets, "miou")
            best = [res.single_best(backbone, candidates, d)[0] for d in datasets]
            if np.isfinite(a) and all(np.isfinite(best)):
                gaps.append(a - float(np.mean(best)))
                figures.append(f"{backbone}: {method} {a:.2f} vs single-best {np.mean(best):.2f}")
        return _verdict(gaps, figures, every=True)

    return check


def beats_every_single(method: str, datasets: list[str], train: list[str], metric: str):
    """``method`` trained on ``train`` beats each single-dataset model, all scored on the mean
    over ``datasets`` (AutoUniSeg Table 3)."""

    def check(res: Results, _: Path) -> Verdict:
        gaps, figures = [], []
        for backbone, trained in _pairings(res, method):
            if trained != frozenset(train):
                continue
            a = _mean_over(res, method, backbone, trained, datasets, metric)
            for key in train:
                b = _mean_over(res, "single", backbone, frozenset([key]), datasets, metric)
                if np.isfinite(a) and np.isfinite(b):
                    gaps.append(a - b)
                    figures.append(f"{backbone}: {method} {a:.2f} vs single {key} {b:.2f}")
        return _verdict(gaps, figures, every=True)

    return check


def relation_generated(primary: str, secondary: str) -> Callable[[Results, Path], Verdict]:
    """C-R BCE generated the multi-label ``primary`` → ``secondary`` in some run."""

    def check(_: Results, models_dir: Path) -> Verdict:
        runs = sorted(Path(models_dir).glob("cr_bce-*/relations.csv"))
        if not runs:
            return Verdict(NOT_RUN, "")
        figures, found = [], False
        for path in runs:
            rel = pd.read_csv(path)
            hit = rel[(rel["class"] == primary) & (rel["related_class"] == secondary)]
            found |= not hit.empty
            scores = ", ".join(
                f"{r.dataset}→{r.related_dataset} {r.score:.3f}" for r in hit.itertuples()
            )
            tau = f"τ {rel.tau.iloc[0]:.3f}" if not rel.empty else "no relations"
            figures.append(f"{path.parent.name}: {scores or 'not generated'} ({tau})")
        return Verdict("yes" if found else "no", "; ".join(figures))

    return check


def _verdict(gaps: list[float], figures: list[str], every: bool = False) -> Verdict:
    if not gaps:
        return Verdict(NOT_RUN, "")
    holds = all(g > 0 for g in gaps) if every else float(np.mean(gaps)) > 0
    summary = f"mean gap {np.mean(gaps):+.2f} over {len(gaps)} comparison(s)"
    return Verdict("yes" if holds else "no", "; ".join([summary, *figures]))


CLAIMS = [
    Claim(
        "uniseg",
        "Null BCE beats multi-dataset CE on the unseen datasets on average",
        beats("null_bce", "multi_ce", UNISEG_UNSEEN),
    ),
    Claim(
        "uniseg",
        "C-R BCE beats Null BCE on the unseen datasets on average",
        beats("cr_bce", "null_bce", UNISEG_UNSEEN),
    ),
    Claim(
        "uniseg",
        "Multi-dataset training on C+I+B+M beats the single-best model on the unseen datasets",
        beats_single_best(UNISEG_UNSEEN, UNISEG_TRAIN),
    ),
    Claim(
        "uniseg", "C-R BCE generates bicyclist → rider", relation_generated("bicyclist", "rider")
    ),
    Claim(
        "uniseg",
        "C-R BCE generates motorcyclist → rider",
        relation_generated("motorcyclist", "rider"),
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats Multi-SegHead on the mean of the training datasets",
        beats("autouniseg", "multi_head", AUTOUNISEG_TRAIN),
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats Multi-SegHead on the mean of the unseen datasets",
        beats("autouniseg", "multi_head", AUTOUNISEG_UNSEEN, "miou_all_classes"),
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats every single-dataset model on the mean of the training datasets",
        beats_every_single("autouniseg", AUTOUNISEG_TRAIN, AUTOUNISEG_TRAIN, "miou_all_classes"),
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats every single-dataset model on the mean of the unseen datasets",
        beats_every_single("autouniseg", AUTOUNISEG_UNSEEN, AUTOUNISEG_TRAIN, "miou_all_classes"),
    ),
]


def check_claims(results: Results, models_dir: Path) -> pd.DataFrame:
    """One row per claim: ``paper``, ``claim``, ``holds`` and the ``figures`` behind it."""
    rows = []
    for claim in CLAIMS:
        verdict = claim.check(results, Path(models_dir))
        rows.append(
            {
                "paper": claim.paper,
                "claim": claim.claim,
                "holds": verdict.holds,
                "figures": verdict.figures,
            }
        )
    return pd.DataFrame(rows)
