import json

from snakemake.exceptions import WorkflowError

from mdseg.errors import one_line
from mdseg.experiments import datasets_used, expand_experiments
from mdseg.datasets.info import DATASETS
from mdseg.catalog import PLOTTED_TABLES, TEXT_FEATURE_METHODS
from mdseg.tables.reference import REFERENCE_TABLES

# conda environment per rule, used with `--sdm conda` (paths are relative to this file's folder)
CONDA_ENV = f"../../envs/{config.get('conda_env', 'cpu')}.yaml"

try:
    EXPERIMENTS = expand_experiments(config)
except (
    KeyError,
    ValueError,
) as err:  # one line naming the entry, as the schema's errors
    raise WorkflowError(f"config experiments: {one_line(err)}") from None
DATASET_KEYS = datasets_used(config, EXPERIMENTS)
TRAINING_KEYS = sorted({k for e in EXPERIMENTS.values() for k in e["train"]})


wildcard_constraints:
    dataset="|".join(DATASETS),
    experiment="|".join(e.replace("+", r"\+") for e in EXPERIMENTS),


localrules:
    experiment_spec,
    plan,
    plan_table,
    resolved_config,
    tables,
    report_summary,
    report,


def manifest(key):
    return f"results/datasets/{key}/manifest.json"


def all_manifests():
    return [manifest(k) for k in DATASET_KEYS]


def experiment_manifests(wildcards):
    return [manifest(k) for k in EXPERIMENTS[wildcards.experiment]["train"]]


def text_features(wildcards):
    """The label-text features, for methods that read them (AutoUniSeg's GNN)."""
    if EXPERIMENTS[wildcards.experiment]["method"] in TEXT_FEATURE_METHODS:
        return f"results/labels/{config['encoder']['name']}/features.pt"
    return []


def init_model(wildcards):
    """The model a run starts from (C-R BCE: its training set's cosine model), if any."""
    source = EXPERIMENTS[wildcards.experiment].get("init")
    return f"results/models/{source}/model.pt" if source else []


def relations_file(wildcards):
    """The fixed class relations a run reads (C-R BCE: the C+I+B+M cosine model's), if any."""
    source = EXPERIMENTS[wildcards.experiment].get("relations")
    return f"results/relations/{source}/relations.pt" if source else []


def all_evaluations():
    """One result file per (experiment, evaluated dataset) (``evaluation.jobs`` says whether
    each is its own job)."""
    return [
        f"results/eval/{exp}/{key}.json"
        for exp, spec in EXPERIMENTS.items()
        for key in spec["evaluate"]
    ]


def inference_options(evaluation):
    """``mdseg evaluate`` flags for the config's ``evaluation`` inference settings."""
    flags = []
    if evaluation.get("resize_height"):
        flags.append(f"--resize-height {evaluation['resize_height']}")
    if evaluation.get("resize_short_side"):
        flags.append(f"--resize-short-side {evaluation['resize_short_side']}")
    if evaluation.get("window"):
        flags.append(f"--window {evaluation['window']}")
    if "stride" in evaluation:
        flags.append(f"--stride {evaluation['stride']}")
    if evaluation.get("flip"):
        flags.append("--flip")
    return " ".join(flags)
