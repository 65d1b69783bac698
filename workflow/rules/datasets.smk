from snakemake.exceptions import WorkflowError

from mdseg.cluster import prepare_resources
from mdseg.datasets.real.download import DownloadError, checked_options
from mdseg.datasets.real.registry import REAL_DATASETS
from mdseg.errors import one_line

if config["benchmark"] == "synthetic":

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
                config["synthetic"]["train_images"]
                if wc.dataset in TRAINING_KEYS
                else 0
            ),
            holdout=config["synthetic"].get("holdout_images", 0),
            val=config["synthetic"]["val_images"],
        shell:
            "mdseg synth {wildcards.dataset} --out results/datasets/{wildcards.dataset}"
            " --seed {params.seed} --image-size {params.size} --train {params.train}"
            " --holdout {params.holdout} --val {params.val} > {log} 2>&1"

else:
    # real data: archives and extracted files live under data_root (large, kept outside
    # results/); labels, split lists and the manifest go to results/datasets/<ds>/
    DATA_ROOT = config.get("data_root", "data")
    REAL = config.get("real", {})

    # refuse unknown keys and archive names, and inline links, before any job: the options go
    # into each fetch job's shell command, which Snakemake echoes and keeps under .snakemake/
    for key, options in REAL.items():
        if key in REAL_DATASETS:
            try:
                checked_options(REAL_DATASETS[key], options)
            except DownloadError as err:
                raise WorkflowError(f"config {one_line(err)}") from None

    # downloads run on the submitting machine: compute nodes often cannot reach the servers
    localrules:
        fetch_dataset,

    rule fetch_dataset:
        output:
            f"{DATA_ROOT}/extracted/{{dataset}}/.extracted",
        log:
            "logs/datasets/{dataset}.fetch.log",
        benchmark:
            "benchmarks/out/datasets/{dataset}.fetch.tsv"
        conda:
            CONDA_ENV
        params:
            archives=lambda wc: f"{DATA_ROOT}/downloads/{wc.dataset}",
            extracted=lambda wc: f"{DATA_ROOT}/extracted/{wc.dataset}",
            options=lambda wc: json.dumps(REAL.get(wc.dataset, {})),
        shell:
            "mdseg download {wildcards.dataset} --out {params.archives:q}"
            " --extract-to {params.extracted:q} --options {params.options:q} > {log} 2>&1"

    rule real_dataset:
        input:
            f"{DATA_ROOT}/extracted/{{dataset}}/.extracted",
        output:
            manifest="results/datasets/{dataset}/manifest.json",
        log:
            "logs/datasets/{dataset}.log",
        benchmark:
            "benchmarks/out/datasets/{dataset}.tsv"
        conda:
            CONDA_ENV
        threads: REAL.get("jobs", 2)
        resources:
            **prepare_resources(config),
        params:
            source=lambda wc: f"{DATA_ROOT}/extracted/{wc.dataset}",
            incomplete="--allow-incomplete" if REAL.get("allow_incomplete") else "",
        shell:
            "mdseg prepare {wildcards.dataset} --source {params.source:q}"
            " --out results/datasets/{wildcards.dataset} --jobs {threads}"
            " {params.incomplete} > {log} 2>&1"
