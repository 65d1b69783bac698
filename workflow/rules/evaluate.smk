import os
import re

from mdseg.cluster import eval_resources

EVALUATION = config["evaluation"]
# per_model rule names: evaluate_<experiment id with + and - as _>
EVAL_RULE_SUFFIX = {e: re.sub(r"\W", "_", e) for e in EXPERIMENTS}


# scoring options (mdseg.evaluate.Scoring), passed only where they differ from the defaults
SCORING_DEFAULTS = {"score_at": "label", "empty_union": "skip", "aliases": "max"}
SCORING_FLAGS = "".join(
    f" --{key.replace('_', '-')} {EVALUATION[key]}"
    for key, default in SCORING_DEFAULTS.items()
    if EVALUATION.get(key, default) != default
)
EVALUATE_FLAGS = (
    f"--datasets-dir results/datasets --split {EVALUATION['split']}"
    f" {inference_options(EVALUATION)} --device {EVALUATION.get('device', 'auto')}"
    f" --workers {EVALUATION.get('workers', 0)}{SCORING_FLAGS}"
)


if EVALUATION.get("jobs", "per_dataset") == "per_dataset":

    # one job per (model, dataset): a time-out loses one dataset's evaluation
    rule evaluate:
        input:
            model="results/models/{experiment}/model.pt",
            manifest=lambda wc: manifest(wc.dataset),
        output:
            "results/eval/{experiment}/{dataset}.json",
        log:
            "logs/eval/{experiment}/{dataset}.log",
        benchmark:
            "benchmarks/out/eval/{experiment}/{dataset}.tsv"
        conda:
            CONDA_ENV
        threads: EVALUATION.get("threads", 1)
        resources:
            **eval_resources(config),
        params:
            flags=EVALUATE_FLAGS,
            out=lambda wc, output: os.path.dirname(output[0]),
        shell:
            "mdseg evaluate --model {input.model} --datasets {wildcards.dataset}"
            " {params.flags} --threads {threads} --out {params.out} > {log} 2>&1"

else:  # per_model: one job per model over its datasets (saves a process start per dataset)

    for EVAL_ID, EVAL_SPEC in EXPERIMENTS.items():

        rule:
            name:
                f"evaluate_{EVAL_RULE_SUFFIX[EVAL_ID]}"
            input:
                model=f"results/models/{EVAL_ID}/model.pt",
                manifests=[manifest(k) for k in EVAL_SPEC["evaluate"]],
            output:
                [f"results/eval/{EVAL_ID}/{k}.json" for k in EVAL_SPEC["evaluate"]],
            log:
                f"logs/eval/{EVAL_ID}.log",
            benchmark:
                f"benchmarks/out/eval/{EVAL_ID}.tsv"
            conda:
                CONDA_ENV
            threads: EVALUATION.get("threads", 1)
            resources:
                **eval_resources(config),
            params:
                datasets=" ".join(EVAL_SPEC["evaluate"]),
                flags=EVALUATE_FLAGS,
                out=lambda wc, output: os.path.dirname(output[0]),
            shell:
                "mdseg evaluate --model {input.model} --datasets {params.datasets}"
                " {params.flags} --threads {threads} --out {params.out} > {log} 2>&1"
