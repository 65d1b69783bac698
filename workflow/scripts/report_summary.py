"""The report's first screen, written once the tables are: the benchmark, every claim's verdict
and the versions the run used, as reST that workflow/report/workflow.rst includes when
``snakemake --report`` renders it; and the versions as JSON, a report item.

Run by the rule ``report_summary`` (a Snakemake script, so that under ``--sdm conda`` the
versions are the rule environment's). Reads only CSV and JSON: no torch import, a fraction of a
second.
"""

import csv
import platform
from importlib.metadata import version
from pathlib import Path

from mdseg.io import atomic_path, read_json, write_json

PACKAGES = ("mdseg", "torch", "snakemake")
# what each `benchmark:` value means to a reader of the report
BENCHMARKS = {
    "synthetic": (
        "the embedded one, generated datasets that carry the real datasets' class names and "
        "label definitions. Our numbers measure the methods on synthetic data, not the papers' "
        "absolute numbers."
    ),
    "real": "the papers' datasets, downloaded and converted from their published files.",
}
CLAIM_COLUMNS = ("paper", "claim", "verdict", "gap (mIoU points, mean ± 2 SE)")


def versions() -> dict[str, str]:
    """The versions of mdseg, torch, Snakemake and Python in this environment."""
    return {**{name: version(name) for name in PACKAGES}, "python": platform.python_version()}


def rst_text(text: str) -> str:
    """``text`` with reST's inline markup characters escaped, so it reads as written."""
    for char in "\\*`_|":
        text = text.replace(char, "\\" + char)
    return text


def gap_text(row: dict[str, str]) -> str:
    """A claim's mean gap ± 2 standard errors (the verdict's rule), or why there is none."""
    if not row["gap_mean"]:
        return "none"
    gap = f"{float(row['gap_mean']):+.2f}"
    spread = f" ± {2 * float(row['gap_se']):.2f}" if row["gap_se"] else ""
    return f"{gap}{spread} ({row['seeds']} seed{'s' if row['seeds'] != '1' else ''})"


def claims_table(rows: list[dict[str, str]]) -> list[str]:
    """Every claim with its verdict, as a reST list table."""
    cells = [CLAIM_COLUMNS] + [
        (row["paper"], row["claim"], row["verdict"], gap_text(row)) for row in rows
    ]
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 10 56 12 22", ""]
    for cell_row in cells:
        first, *rest = map(rst_text, cell_row)
        lines += [f"   * - {first}", *(f"     - {cell}" for cell in rest)]
    return lines


def summary(config: dict, claims: list[dict[str, str]], found: dict[str, str]) -> str:
    """The reST of the first screen."""
    seeds = max((int(row["seeds"]) for row in claims), default=0)
    noise = (
        "Over one seed: a smoke run whose noise is not measured "
        "(``experiments/claims.yaml`` runs every claim over three)."
        if seeds <= 1
        else f"Over up to {seeds} seeds, judged on the paired per-seed gaps."
    )
    listed = " · ".join(f"{name} {found[name]}" for name in (*PACKAGES, "python"))
    return "\n".join(
        [
            f"Run on the **{config['benchmark']} benchmark**: {BENCHMARKS[config['benchmark']]}",
            "",
            "Claims",
            "------",
            "",
            f"Each qualitative claim of the two papers and its verdict. {noise}",
            "",
            *claims_table(claims),
            "",
            "Versions",
            "--------",
            "",
            listed,
            "",
        ]
    )


def main(snakemake) -> None:  # Snakemake's script object
    config = read_json(snakemake.input.config)
    with open(snakemake.input.claims, newline="") as fh:
        claims = list(csv.DictReader(fh))
    found = versions()
    write_json(snakemake.output.versions, found)
    with atomic_path(snakemake.output.summary) as tmp:
        tmp.write_text(summary(config, claims, found))
    Path(snakemake.log[0]).write_text(f"benchmark {config['benchmark']}, {len(claims)} claims\n")


if __name__ == "__main__":  # as Snakemake runs it; tests import the functions above
    main(snakemake)  # noqa: F821 (defined by Snakemake's script preamble)
