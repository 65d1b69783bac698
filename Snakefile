"""mdseg: AutoUniSeg and UniSeg reproduced end to end (see README.md)."""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        rules.tables.output,
        f"results/labels/{config['encoder']['name']}/features.pt",


rule datasets:
    input:
        all_manifests(),


# `snakemake plan`: print each experiment's GPUs, images, GPU-hours and SLURM jobs (mdseg plan)
rule plan:
    input:
        rules.plan_table.output.text,
    log:
        "logs/plan.print.log",
    conda:
        CONDA_ENV
    shell:
        "tee {log} < {input}"
