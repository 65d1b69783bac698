from mdseg.cluster import encode_resources


rule encode_labels:
    input:
        ENCODER_RECORDS,
    output:
        "results/labels/{encoder}/features.pt",
    log:
        "logs/labels/{encoder}.log",
    benchmark:
        "benchmarks/out/labels/{encoder}.tsv"
    conda:
        CONDA_ENV
    resources:
        **encode_resources(config),
    params:
        datasets=" ".join(DATASET_KEYS),
        path=config["encoder"].get("path") or "",
        device=config["encoder"].get("device", "cpu"),
    shell:
        "HF_HUB_OFFLINE=1 mdseg encode {params.datasets} --encoder {wildcards.encoder}"
        " --path '{params.path}' --device {params.device} --out {output} > {log} 2>&1"
