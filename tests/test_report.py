"""The report's first screen (workflow/scripts/report_summary.py): benchmark, claims, versions."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "report_summary", ROOT / "workflow" / "scripts" / "report_summary.py"
)
report_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report_summary)

VERSIONS = {"mdseg": "0.1.0", "torch": "2.14.1", "snakemake": "9.27.1", "python": "3.11.7"}


def claim(verdict: str, gap_mean: str = "", gap_se: str = "", seeds: str = "0") -> dict:
    return {
        "paper": "uniseg",
        "claim": "Null BCE beats multi_ce on *unseen* data",
        "verdict": verdict,
        "gap_mean": gap_mean,
        "gap_se": gap_se,
        "seeds": seeds,
    }


def test_the_first_screen_names_the_benchmark_the_run_used():
    real = report_summary.summary({"benchmark": "real"}, [claim("not run")], VERSIONS)
    synthetic = report_summary.summary({"benchmark": "synthetic"}, [claim("not run")], VERSIONS)
    assert real.startswith("Run on the **real benchmark**") and "synthetic" not in real
    assert synthetic.startswith("Run on the **synthetic benchmark**")
    assert "mdseg 0.1.0 · torch 2.14.1 · snakemake 9.27.1 · python 3.11.7" in real


def test_claims_read_as_written_with_the_gap_behind_their_verdict():
    text = report_summary.summary(
        {"benchmark": "synthetic"},
        [claim("reversed", "-5.37", "0.14", "3"), claim("not run")],
        VERSIONS,
    )
    assert "     - Null BCE beats multi\\_ce on \\*unseen\\* data\n     - reversed\n" in text
    assert "     - -5.37 ± 0.28 (3 seeds)\n" in text  # mean ± 2 SE, the verdict's rule
    assert "     - not run\n     - none\n" in text
    assert "Over up to 3 seeds" in text


def test_a_one_seed_run_says_it_is_a_smoke_run():
    text = report_summary.summary(
        {"benchmark": "synthetic"}, [claim("within noise", "1.5", "", "1")], VERSIONS
    )
    assert "Over one seed: a smoke run" in text
    assert "     - +1.50 (1 seed)\n" in text


def test_versions_are_those_installed():
    found = report_summary.versions()
    assert sorted(found) == ["mdseg", "python", "snakemake", "torch"]
    assert all(found.values())
