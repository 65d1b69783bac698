from mdseg.cluster import eval_resources


rule evaluate:
    input:
        model="results/models/{experiment}/model.pt",
        manifests=lambda wc: [
            manifest(k) for k in EXPERIMENTS[wc.experiment]["evaluate"]
        ],
    output:
        directory("results/eval/{experiment}"),
    log:
        "logs/eval/{experiment}.log",
    benchmark:
        "benchmarks/out/eval/{experiment}.tsv"
    conda:
        CONDA_ENV
    threads: config["evaluation"].get("threads", 1)
    resources:
        **eval_resources(config),
    params:
        datasets=lambda wc: " ".join(EXPERIMENTS[wc.experiment]["evaluate"]),
        split=config["evaluation"]["split"],
        resize=(
            f"--resize-height {config['evaluation']['resize_height']}"
            if config["evaluation"].get("resize_height")
            else ""
        ),
        device=config["evaluation"].get("device", "auto"),
    shell:
        "mdseg evaluate --model {input.model} --datasets {params.datasets}"
        " --datasets-dir results/datasets --split {params.split} {params.resize}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"
