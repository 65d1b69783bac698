from mdseg.weights import IMAGENET, is_hub_id

# Pretrained weights are fetched on the submitting machine into the Hugging Face hub cache
# (HF_HUB_CACHE / HF_HOME, shared with the compute nodes); jobs read the cache offline. Each
# fetch writes a record (revision, files, sha256) that the jobs needing the weights take as input.

IMAGENET_BACKBONES = sorted(
    {e["backbone"] for e in EXPERIMENTS.values() if e.get("weights") == IMAGENET}
)
# the train rule's input: the ImageNet record of an experiment's backbone, if it uses one
IMAGENET_RECORDS = {
    name: (
        [f"results/weights/{e['backbone']}.json"]
        if e.get("weights") == IMAGENET
        else []
    )
    for name, e in EXPERIMENTS.items()
}
ENCODER_HUB_ID = config["encoder"].get("path") or ""
ENCODER_RECORD = "results/weights/text_encoder.json"
# the encode rule's input: the text encoder's record when its path is a hub id
ENCODER_RECORDS = [ENCODER_RECORD] if is_hub_id(ENCODER_HUB_ID) else []


localrules:
    weights,
    backbone_weights,
    text_encoder_weights,


rule backbone_weights:
    output:
        "results/weights/{backbone}.json",
    log:
        "logs/weights/{backbone}.log",
    wildcard_constraints:
        backbone="hrnet_w(18_small_v2|18|32|48)",
    conda:
        CONDA_ENV
    shell:
        "mdseg weights backbone {wildcards.backbone} --out {output} > {log} 2>&1"


rule text_encoder_weights:
    output:
        ENCODER_RECORD,
    log:
        "logs/weights/text_encoder.log",
    conda:
        CONDA_ENV
    params:
        repo=ENCODER_HUB_ID,
    shell:
        "mdseg weights encoder {params.repo} --out {output} > {log} 2>&1"


rule weights:
    input:
        [f"results/weights/{b}.json" for b in IMAGENET_BACKBONES],
        ENCODER_RECORDS,
