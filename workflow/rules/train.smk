from mdseg.cluster import launcher, train_resources, train_retries


rule experiment_spec:
    output:
        "results/models/{experiment}/experiment.json",
    log:
        "logs/models/{experiment}/spec.log",
    benchmark:
        "benchmarks/out/models/{experiment}/spec.tsv"
    params:
        spec=lambda wc: EXPERIMENTS[wc.experiment],
    run:
        with open(output[0], "w") as fh:
            json.dump(params.spec, fh, indent=2, sort_keys=True)


rule train:
    input:
        spec="results/models/{experiment}/experiment.json",
        manifests=experiment_manifests,
        text_features=text_features,
        imagenet=lambda wc: IMAGENET_RECORDS[wc.experiment],
    output:
        model="results/models/{experiment}/model.pt",
        log_csv="results/models/{experiment}/train_log.csv",
        summary="results/models/{experiment}/summary.json",
    log:
        "logs/models/{experiment}/train.log",
    benchmark:
        "benchmarks/out/models/{experiment}/train.tsv"
    # a run longer than one job resumes from its checkpoint in the next (mdseg.cluster)
    retries: train_retries(config, EXPERIMENTS)
    conda:
        CONDA_ENV
    threads: config["training"]["threads"]
    resources:
        **train_resources(config, EXPERIMENTS),
    params:
        launch=launcher(config),
        text_features=lambda wc, input: (
            f"--text-features {input.text_features}" if input.text_features else ""
        ),
    shell:
        "{params.launch} train --experiment {input.spec} --datasets-dir results/datasets"
        " --out results/models/{wildcards.experiment} {params.text_features} > {log} 2>&1"


rule plan_table:
    input:
        "results/config.json",
    output:
        csv="results/plan.csv",
        text="results/plan.txt",
    log:
        "logs/plan.log",
    conda:
        CONDA_ENV
    shell:
        "mdseg plan --config {input} --out {output.csv} --text {output.text} > {log} 2>&1"
