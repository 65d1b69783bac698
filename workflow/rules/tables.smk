rule resolved_config:
    output:
        "results/config.json",
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
            "results/tables/training_curves.png",
            caption="../report/train_log.rst",
            category="Training",
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


rule report:
    input:
        rules.tables.output,
    output:
        "results/report.html",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/out/report.tsv"
    conda:
        CONDA_ENV
    params:
        configfiles=" ".join(map(str, workflow.overwrite_configfiles)) or "config.yaml",
    shell:
        "snakemake --nolock --configfiles {params.configfiles} --report {output} > {log} 2>&1"
