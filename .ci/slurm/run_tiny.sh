#!/usr/bin/env bash
# experiments/tiny.yaml through `snakemake --profile slurm` on the CI cluster (up.sh), in a
# scratch folder; then a deliberately failing training job whose log Snakemake must name.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$(mktemp -d /tmp/mdseg-slurm-run.XXXX)}
mkdir -p "$WORK"
cd "$ROOT"
SM=(snakemake --profile slurm -s "$ROOT/Snakefile" -d "$WORK" --slurm-init-seconds-before-status-checks 2)
start=$(date +%s)
"${SM[@]}" --configfile experiments/tiny.yaml .ci/slurm/cluster.yaml > "$WORK/run.log" 2>&1 \
  || { tail -50 "$WORK/run.log"; exit 1; }
echo "tiny workflow on SLURM: $(( $(date +%s) - start )) s"
test -s "$WORK/results/tables/claims.csv"
test -s "$WORK/results/models/multi_ce-hrnet_w18_small_v2-C+M/model.pt"
test -s "$WORK/results/eval/multi_ce-hrnet_w18_small_v2-C+M/kitti.json"
# training and evaluation went to the gpu partition with one (fake) GPU each
jobs=$(sacct -X -n -P -S now-1hour -o Comment,Partition,AllocTRES)
echo "$jobs" | grep "rule_train" | grep -q "|gpu|.*gres/gpu=1" || { echo "$jobs"; exit 1; }
echo "$jobs" | grep "rule_evaluate" | grep -q "|gpu|.*gres/gpu=1" || { echo "$jobs"; exit 1; }
echo "$jobs" | grep "rule_synthetic_dataset" | grep -q "|cpu|" || { echo "$jobs"; exit 1; }

# failing.yaml sets cluster.retry_margin 0: the train rule's retries come from the config
start=$(date +%s)
target=results/models/multi_ce-hrnet_w18_small_v2-C+M/model.pt
if "${SM[@]}" --configfile experiments/tiny.yaml .ci/slurm/cluster.yaml .ci/slurm/failing.yaml \
  --retries 0 "$target" > "$WORK/fail.log" 2>&1; then
  echo "the failing job succeeded"; exit 1
fi
echo "failing job reported: $(( $(date +%s) - start )) s"
grep -q "Error in rule train" "$WORK/fail.log"
grep -q "logs/models/multi_ce-hrnet_w18_small_v2-C+M/train.log" "$WORK/fail.log"
grep -q "training.batch_size 3 must split into 2 dataset block" "$WORK/fail.log"
grep -q "slurm_logs/rule_train" "$WORK/fail.log"
echo "SLURM checks passed ($WORK)"
