"""Print per-stage wall time of a finished workflow run from Snakemake's benchmark files.

Usage: python scripts/stage_times.py [benchmarks/out]
Sums the ``s`` column of every rule's benchmark TSV, grouped by stage (the first folder), and
prints the slowest jobs; the stage sum is CPU-serial time, not the run's elapsed time when jobs
ran in parallel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def stage_times(root: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        seconds = pd.read_csv(path, sep="\t")["s"].sum()
        stage = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        rows.append({"stage": stage, "job": str(rel.with_suffix("")), "seconds": seconds})
    if not rows:
        raise SystemExit(f"no benchmark files under {root}: run the workflow first")
    return pd.DataFrame(rows)


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/out")
    jobs = stage_times(root)
    summary = jobs.groupby("stage", sort=False).seconds.agg(["count", "sum", "max"])
    print(summary.round(1).rename(columns={"count": "jobs", "sum": "total_s", "max": "slowest_s"}))
    print(f"\nall jobs: {jobs.seconds.sum():.1f} s of job time")
    print("\nslowest jobs:")
    print(jobs.nlargest(5, "seconds").to_string(index=False))


if __name__ == "__main__":
    main()
