rule encode_labels:
    output:
        "results/labels/{encoder}/features.pt",
    log:
        "logs/labels/{encoder}.log",
    benchmark:
        "benchmarks/out/labels/{encoder}.tsv"
    conda:
        CONDA_ENV
    params:
        datasets=" ".join(DATASET_KEYS),
        path=config["encoder"].get("path") or "",
        device=config["encoder"].get("device", "cpu"),
    shell:
        "mdseg encode {params.datasets} --encoder {wildcards.encoder}"
        " --path '{params.path}' --device {params.device} --out {output} > {log} 2>&1"
