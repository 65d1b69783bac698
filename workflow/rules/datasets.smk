rule synthetic_dataset:
    output:
        manifest="results/datasets/{dataset}/manifest.json",
        truth="results/datasets/{dataset}/truth.json",
    log:
        "logs/datasets/{dataset}.log",
    benchmark:
        "benchmarks/out/datasets/{dataset}.tsv"
    conda:
        CONDA_ENV
    params:
        seed=config["synthetic"]["seed"],
        size=config["synthetic"]["image_size"],
        train=lambda wc: (
            config["synthetic"]["train_images"] if wc.dataset in TRAINING_KEYS else 0
        ),
        holdout=config["synthetic"].get("holdout_images", 0),
        val=config["synthetic"]["val_images"],
    shell:
        "mdseg synth {wildcards.dataset} --out results/datasets/{wildcards.dataset}"
        " --seed {params.seed} --image-size {params.size} --train {params.train}"
        " --holdout {params.holdout} --val {params.val} > {log} 2>&1"
