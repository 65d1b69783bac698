"""Repository-level checks: README commands match CI, and the linters the project promises."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in _readme_commands() if c.endswith("pytest"))
    assert test_command in (ROOT / ".ci" / "run").read_text()
    assert any(
        c.endswith("&& snakemake --cores all && snakemake --report results/report.html")
        for c in _readme_commands()
    )


def _run(*cmd):
    # prefer the tools installed beside the running interpreter (the project's venv)
    beside = Path(sys.executable).parent / cmd[0]
    exe = str(beside) if beside.exists() else shutil.which(cmd[0])
    if exe is None:
        pytest.fail(f"{cmd[0]} is not installed (pip install -e '.[dev]')")
    return subprocess.run([exe, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)


def test_ruff_clean():
    proc = _run("ruff", "check", "src", "tests", "scripts", ".ci", "workflow/scripts")
    assert proc.returncode == 0, proc.stdout


def test_snakefmt_clean():
    proc = _run("snakefmt", "--check", "Snakefile", "workflow")
    assert proc.returncode == 0, proc.stderr


def test_snakemake_lint_clean():
    proc = _run("snakemake", "--lint")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in output, output


def test_misspelled_config_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "experiments" / "tiny.yaml").read_text().replace("iterations:", "iteratons:")
    )
    proc = _run("snakemake", "-n", "--configfile", str(bad))
    assert proc.returncode != 0
    assert "iteratons" in proc.stdout + proc.stderr
