"""The papers' qualitative claims, judged on our results: ``results/tables/claims.csv``.

A claim compares methods on the datasets the paper compares them on. Each seed is an independent
reproduction, so a claim is judged on its paired per-seed gaps: per seed the gap over that
seed's runs (the mean over the pairings of backbone and training set; for a claim against every
compared model the smallest gap), then over seeds the mean gap against twice its standard error.
The verdict is ``holds``, ``reversed``, ``within noise`` or ``not run``; the ``rule`` says
which rule decided it and ``figures`` the compared values of every seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdseg.experiments import parse_experiment_id
from mdseg.io import read_table
from mdseg.tables.results import (
    AUTOUNISEG_TRAIN,
    AUTOUNISEG_UNSEEN,
    RERUN_RELATIONS,
    UNISEG_TRAIN,
    UNISEG_UNSEEN,
    Results,
    spread,
)

HOLDS, REVERSED, NOISE, NOT_RUN = "holds", "reversed", "within noise", "not run"
Seed = int | None


@dataclass(frozen=True)
class Evidence:
    """One seed's evidence: its gap (relation claims: 1 generated, 0 not), figures and runs."""

    gap: float
    figures: str
    runs: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    # one seed's evidence (None: nothing compared on that seed) from its results and models dir
    check: Callable[[Results, Path, Seed], Evidence | None]
    per_seed: str  # how one seed's gap is taken, for the rule column
    relation: bool = False


def _mean_over(
    res: Results, method: str, backbone: str, train: frozenset[str], datasets: list[str], metric
) -> tuple[float, list[str]]:
    """Mean ``metric`` over ``datasets`` (nan unless all were run) and the runs behind it."""
    found = [res.miou(method, backbone, train, d, metric) for d in datasets]
    values = [v for v, _ in found]
    if not all(np.isfinite(values)):
        return np.nan, []
    return float(np.mean(values)), [e for _, e in found]


def _pairings(res: Results, method: str) -> list[tuple[str, frozenset[str]]]:
    f = res.frame[res.frame.method == method]
    return sorted({(b, t) for b, t in zip(f.backbone, f.train, strict=True)}, key=str)


def _label(backbone: str, train: frozenset[str]) -> str:
    return f"{backbone} {'+'.join(sorted(train))}"


def beats(
    better: str, worse: str, datasets: list[str], metric: str = "miou"
) -> Callable[[Results, Path, Seed], Evidence | None]:
    """``better`` has a higher mean over ``datasets`` than ``worse`` on the same backbone and
    training set, on average over every such pairing of the seed."""

    def check(res: Results, _: Path, __: Seed) -> Evidence | None:
        gaps, figures, runs = [], [], []
        for backbone, train in _pairings(res, better):
            a, a_runs = _mean_over(res, better, backbone, train, datasets, metric)
            b, b_runs = _mean_over(res, worse, backbone, train, datasets, metric)
            if np.isfinite(a) and np.isfinite(b):
                gaps.append(a - b)
                runs += [*a_runs, *b_runs]
                figures.append(f"{_label(backbone, train)}: {better} {a:.2f} vs {worse} {b:.2f}")
        return _evidence(float(np.mean(gaps)) if gaps else np.nan, figures, runs)

    return check


def beats_single_best(datasets: list[str], candidates: list[str]) -> Callable:
    """Every multi-dataset method trained on all of ``candidates`` beats the single-best model
    (per test set, the best single-dataset model trained on one of ``candidates``)."""

    def check(res: Results, _: Path, __: Seed) -> Evidence | None:
        gaps, figures, runs = [], [], []
        f = res.frame
        multi = f[f.train.apply(frozenset(candidates).__eq__) & (f.method != "single")]
        for method, backbone in sorted(set(zip(multi.method, multi.backbone, strict=True))):
            a, a_runs = _mean_over(res, method, backbone, frozenset(candidates), datasets, "miou")
            best = [res.single_best(backbone, candidates, d) for d in datasets]
            b = float(np.mean([v for v, _ in best]))
            if np.isfinite(a) and np.isfinite(b):
                gaps.append(a - b)
                runs += [*a_runs, *(e for _, e in best)]
                figures.append(f"{backbone}: {method} {a:.2f} vs single-best {b:.2f}")
        return _evidence(min(gaps, default=np.nan), figures, runs)

    return check


def beats_every_single(method: str, datasets: list[str], train: list[str], metric: str):
    """``method`` trained on ``train`` beats each single-dataset model, all scored on the mean
    over ``datasets`` (AutoUniSeg Table 3)."""

    def check(res: Results, _: Path, __: Seed) -> Evidence | None:
        gaps, figures, runs = [], [], []
        for backbone, trained in _pairings(res, method):
            if trained != frozenset(train):
                continue
            a, a_runs = _mean_over(res, method, backbone, trained, datasets, metric)
            for key in train:
                b, b_runs = _mean_over(res, "single", backbone, frozenset([key]), datasets, metric)
                if np.isfinite(a) and np.isfinite(b):
                    gaps.append(a - b)
                    runs += [*a_runs, *b_runs]
                    figures.append(f"{backbone}: {method} {a:.2f} vs single {key} {b:.2f}")
        return _evidence(min(gaps, default=np.nan), figures, runs)

    return check


def relation_generated(
    primary: str, secondary: str
) -> Callable[[Results, Path, Seed], Evidence | None]:
    """C-R BCE generated the multi-label ``primary`` → ``secondary`` in some run of the seed."""

    def check(_: Results, models_dir: Path, seed: Seed) -> Evidence | None:
        paths = _relation_runs(models_dir).get(seed, [])
        if not paths:
            return None
        figures, found = [], False
        for path in paths:
            rel = read_table(path, RERUN_RELATIONS)
            hit = rel[(rel["class"] == primary) & (rel["related_class"] == secondary)]
            found |= not hit.empty
            scores = ", ".join(
                f"{r.dataset}→{r.related_dataset} {r.score:.3f}" for r in hit.itertuples()
            )
            tau = f"τ {rel.tau.iloc[0]:.3f}" if not rel.empty else "no relations"
            figures.append(f"{path.parent.name}: {scores or 'not generated'} ({tau})")
        return Evidence(float(found), "; ".join(figures), tuple(p.parent.name for p in paths))

    return check


def _relation_runs(models_dir: Path) -> dict[Seed, list[Path]]:
    """The C-R BCE runs' ``relations.csv`` by seed, seeds sorted (None first)."""
    runs: dict[Seed, list[Path]] = {}
    for path in sorted(Path(models_dir).glob("cr_bce-*/relations.csv")):
        runs.setdefault(parse_experiment_id(path.parent.name)[3], []).append(path)
    return dict(sorted(runs.items(), key=lambda item: (item[0] is not None, item[0] or 0)))


def _evidence(gap: float, figures: list[str], runs: list[str]) -> Evidence | None:
    if not np.isfinite(gap):
        return None
    return Evidence(gap, "; ".join(figures), tuple(dict.fromkeys(runs)))


MEAN_GAP = "per seed the mean gap over its pairings"
MIN_GAP = "per seed the smallest gap (the claim must hold against every compared model)"
GENERATED = "per seed generated or not"

CLAIMS = [
    Claim(
        "uniseg",
        "Null BCE beats multi-dataset CE on the unseen datasets on average",
        beats("null_bce", "multi_ce", UNISEG_UNSEEN),
        MEAN_GAP,
    ),
    Claim(
        "uniseg",
        "C-R BCE beats Null BCE on the unseen datasets on average",
        beats("cr_bce", "null_bce", UNISEG_UNSEEN),
        MEAN_GAP,
    ),
    Claim(
        "uniseg",
        "Multi-dataset training on C+I+B+M beats the single-best model on the unseen datasets",
        beats_single_best(UNISEG_UNSEEN, UNISEG_TRAIN),
        MIN_GAP,
    ),
    Claim(
        "uniseg",
        "C-R BCE generates bicyclist → rider",
        relation_generated("bicyclist", "rider"),
        GENERATED,
        relation=True,
    ),
    Claim(
        "uniseg",
        "C-R BCE generates motorcyclist → rider",
        relation_generated("motorcyclist", "rider"),
        GENERATED,
        relation=True,
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats Multi-SegHead on the mean of the training datasets",
        beats("autouniseg", "multi_head", AUTOUNISEG_TRAIN),
        MEAN_GAP,
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats Multi-SegHead on the mean of the unseen datasets",
        beats("autouniseg", "multi_head", AUTOUNISEG_UNSEEN, "miou_all_classes"),
        MEAN_GAP,
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats every single-dataset model on the mean of the training datasets",
        beats_every_single("autouniseg", AUTOUNISEG_TRAIN, AUTOUNISEG_TRAIN, "miou_all_classes"),
        MIN_GAP,
    ),
    Claim(
        "autouniseg",
        "AutoUniSeg beats every single-dataset model on the mean of the unseen datasets",
        beats_every_single("autouniseg", AUTOUNISEG_UNSEEN, AUTOUNISEG_TRAIN, "miou_all_classes"),
        MIN_GAP,
    ),
]


def check_claims(results: Results, models_dir: Path) -> pd.DataFrame:
    """One row per claim: its verdict over seeds, the gap's mean, std and standard error, how
    many seeds, the rule applied, whether the compared runs converged and the figures."""
    models_dir = Path(models_dir)
    seeds = results.seeds()
    relation_seeds = list(_relation_runs(models_dir))
    smoke = len(seeds) == 1
    rows = []
    for claim in CLAIMS:
        evidence = {
            seed: found
            for seed in (relation_seeds if claim.relation else seeds)
            if (found := claim.check(results.for_seed(seed), models_dir, seed)) is not None
        }
        values = [e.gap for e in evidence.values()]
        judged = (
            relation_verdict([v > 0 for v in values]) if claim.relation else gap_verdict(values)
        )
        rule = f"{claim.per_seed}; {judged.rule}" if judged.seeds else judged.rule
        if smoke:
            rule += f"; one-seed smoke run: all runs are one seed ({_seed_label(seeds[0])})"
        runs = sorted({r for e in evidence.values() for r in e.runs})
        rows.append(
            {
                "paper": claim.paper,
                "claim": claim.claim,
                "verdict": judged.verdict,
                "gap_mean": _round(judged.mean),
                "gap_std": _round(judged.std),
                "gap_se": _round(judged.se),
                "seeds": judged.seeds,
                "rule": rule,
                "converged": converged(runs, models_dir),
                "figures": " | ".join(
                    f"{_seed_label(seed)}: {e.figures}" for seed, e in evidence.items()
                ),
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict over seeds, the rule that decided it and the gap's statistics (nan for
    relation claims, which have no gap)."""

    verdict: str
    rule: str
    mean: float = np.nan
    std: float = np.nan
    se: float = np.nan
    seeds: int = 0


def gap_verdict(gaps: list[float]) -> Judgement:
    """Judge per-seed ``gaps``: the mean against twice its standard error (n >= 2), the sign
    for one seed."""
    mean, std, n = spread(gaps)
    if n == 0:
        return Judgement(NOT_RUN, "no compared runs")
    if n == 1:
        verdict = HOLDS if mean > 0 else REVERSED if mean < 0 else NOISE
        rule = "one seed: verdict by the sign of the gap, noise not measured"
        return Judgement(verdict, rule, mean, seeds=1)
    se = std / np.sqrt(n)
    verdict = HOLDS if mean > 2 * se else REVERSED if mean < -2 * se else NOISE
    rule = (
        f"{n} seeds: holds if mean gap > 2 SE (SE = std/√n), reversed if < -2 SE; "
        f"mean {mean:+.2f}, 2 SE {2 * se:.2f}"
    )
    return Judgement(verdict, rule, mean, std, se, n)


def relation_verdict(generated_per_seed: list[bool]) -> Judgement:
    """Generated in every seed: holds; in none: reversed; in some: within noise."""
    n, generated = len(generated_per_seed), sum(generated_per_seed)
    if n == 0:
        return Judgement(NOT_RUN, "no C-R BCE runs with relations")
    verdict = HOLDS if generated == n else REVERSED if generated == 0 else NOISE
    rule = f"holds if generated in every seed, reversed if in none; generated in {generated} of {n}"
    return Judgement(verdict, rule, seeds=n)


def converged(runs: list[str], models_dir: Path) -> str:
    """``all`` if every run's ``summary.json`` says its loss levelled off, ``not: <ids>`` naming
    those that did not, ``unknown`` if some do not say; empty without runs."""
    if not runs:
        return ""
    flags = {run: _converged(Path(models_dir) / run / "summary.json") for run in runs}
    not_converged = [run for run, flag in flags.items() if flag is False]
    if not_converged:
        return "not: " + ", ".join(not_converged)
    return "all" if all(flags.values()) else "unknown"


def _converged(summary: Path) -> bool | None:
    if not summary.exists():
        return None
    flag = (json.loads(summary.read_text()).get("convergence") or {}).get("converged")
    return None if flag is None else bool(flag)


def _seed_label(seed: Seed) -> str:
    return "seedless" if seed is None else f"s{seed}"


def _round(value: float) -> float:
    return round(float(value), 3) if np.isfinite(value) else np.nan
