"""mdseg: AutoUniSeg and UniSeg reproduced end to end (see README.md)."""

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from mdseg.errors import schema_error
from mdseg.overrides import apply_overrides

min_version("9.0")


configfile: f"{workflow.basedir}/config.yaml"  # the base; --configfile overlays go on top


report: "workflow/report/workflow.rst"


try:
    apply_overrides(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
    validate(config, "workflow/schemas/config.schema.yaml")
except (WorkflowError, ValueError) as err:  # one line naming the key, no secret values
    raise WorkflowError(schema_error(err)) from None


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
        rules.report_summary.output,
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
