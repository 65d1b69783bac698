import shlex
import sys


rule resolved_config:
    output:
        report("results/config.json", caption="../report/config.rst", category="Run"),
    log:
        "logs/resolved_config.log",
    benchmark:
        "benchmarks/out/resolved_config.tsv"
    params:
        config=config,
    run:
        with open(output[0], "w") as fh:
            json.dump(params.config, fh, indent=2, sort_keys=True)


rule tables:
    input:
        config="results/config.json",
        evaluations=all_evaluations(),
        train_logs=expand(
            "results/models/{experiment}/train_log.csv", experiment=EXPERIMENTS
        ),
        manifests=all_manifests(),
    output:
        csv=report(
            expand("results/tables/{table}.csv", table=REFERENCE_TABLES),
            caption="../report/table.rst",
            category="Tables",
        ),
        png=report(
            expand("results/tables/{table}.png", table=PLOTTED_TABLES),
            caption="../report/plot.rst",
            category="Plots",
        ),
        findings=report(
            expand("results/tables/{name}.csv", name=["claims", "taxonomy_recovery"]),
            caption="../report/findings.rst",
            category="Claims",
        ),
        claims_png=report(
            "results/tables/claims.png",
            caption="../report/claims.rst",
            category="Claims",
        ),
        curves=report(
            expand("results/tables/curves/{experiment}.png", experiment=EXPERIMENTS),
            caption="../report/train_log.rst",
            category="Training",
            subcategory="Curves",
        ),
        stages=report(
            expand("results/tables/autouniseg_stages.{ext}", ext=["csv", "png"]),
            caption="../report/stages.rst",
            category="Training",
        ),
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/out/tables.tsv"
    conda:
        CONDA_ENV
    shell:
        "mdseg tables --config {input.config} --out results/tables > {log} 2>&1"


# the report's first screen (benchmark, claims, versions), which workflow.rst includes; the
# report itself is Snakemake's own: `snakemake --report results/report.html` after the run
rule report_summary:
    input:
        config="results/config.json",
        claims="results/tables/claims.csv",
    output:
        summary="results/report/summary.rst",
        versions=report(
            "results/versions.json", caption="../report/versions.rst", category="Run"
        ),
    log:
        "logs/report_summary.log",
    benchmark:
        "benchmarks/out/report_summary.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/report_summary.py"


# `snakemake report`: the run the report shows, then the command that builds the report: this
# run's command line (less the `report` target) with --report, since Snakemake builds the report
# from the run's records and needs the run's config files, overrides and working directory (a
# rule could only build it with a nested snakemake)
rule report:
    input:
        rules.tables.output,
        rules.report_summary.output,
    log:
        "logs/report.log",
    conda:
        CONDA_ENV
    params:
        command=shlex.join(
            ["snakemake", *(a for a in sys.argv[1:] if a != "report")]
            + ["--report", "results/report.html"]
        ),
    shell:
        "echo The report: {params.command:q} | tee {log} >&2"
