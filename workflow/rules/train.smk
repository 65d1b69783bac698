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
        init=init_model,
        relations=relations_file,
    output:
        model="results/models/{experiment}/model.pt",
        log_csv="results/models/{experiment}/train_log.csv",
        summary="results/models/{experiment}/summary.json",
    log:
        "logs/models/{experiment}/train.log",
    benchmark:
        "benchmarks/out/models/{experiment}/train.tsv"
    # a run longer than one job resumes from its checkpoint in the next (mdseg.cluster). Only
    # the submitting Snakemake retries: inside a job, the rule's retries would win over the
    # executor's --retries 0 and restart training in the job's last signal_seconds
    retries: 0 if workflow.remote_exec else train_retries(config, EXPERIMENTS)
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
        sources=lambda wc, input: " ".join(
            f"--{key} {input[key]}" for key in ("init", "relations") if input[key]
        ),
    # exec: at SLURM's signal the shell would die at once and Snakemake end the job step,
    # killing training before its checkpoint is written; Snakemake must wait for training
    shell:
        "exec {params.launch} train --experiment {input.spec} --datasets-dir results/datasets"
        " --out results/models/{wildcards.experiment} {params.text_features} {params.sources}"
        " > {log} 2>&1"


rule relations:
    """UniSeg eq. 6-7 once, from a trained cosine model (mdseg.relations): one GPU job at paper
    scale, over the whole training split, split over the ranks like training."""
    input:
        model="results/models/{experiment}/model.pt",
        manifests=experiment_manifests,
    output:
        pt="results/relations/{experiment}/relations.pt",
        csv="results/relations/{experiment}/relations.csv",
        classes="results/relations/{experiment}/classes.csv",
    log:
        "logs/relations/{experiment}.log",
    benchmark:
        "benchmarks/out/relations/{experiment}.tsv"
    conda:
        CONDA_ENV
    threads: config["training"]["threads"]
    resources:
        **train_resources(config, EXPERIMENTS),
    params:
        launch=launcher(config),
        statistic=config.get("relations", {}).get("statistic", "cosine"),
        images=(
            f"--images {config['relations']['images']}"
            if config.get("relations", {}).get("images")
            else ""
        ),
    shell:
        "{params.launch} relations --model {input.model} --datasets-dir results/datasets"
        " --out results/relations/{wildcards.experiment} --statistic {params.statistic}"
        " {params.images} > {log} 2>&1"


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
