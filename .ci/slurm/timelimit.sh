#!/usr/bin/env bash
# A training job longer than its SLURM time limit, through `snakemake --profile slurm` on the CI
# cluster (up.sh): timelimit.yaml gives it 1000 steps (about 2 min on a 2-core runner) and
# 2-minute jobs, with SIGTERM 30 s before the limit (`--signal`, as slurm/ deploys it). At the
# signal, training saves its checkpoint and exits, the job fails, Snakemake retries it and the
# retry resumes from the checkpoint, until a job finishes. Meanwhile the same experiment.json
# trains uninterrupted with `mdseg train`; the two model.pt must hold the same weights, bit for
# bit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$(mktemp -d /tmp/mdseg-slurm-timelimit.XXXX)}
mkdir -p "$WORK"
cd "$ROOT"
EXP=single-hrnet_w18_small_v2-C
MODEL=results/models/$EXP
LOG=logs/models/$EXP/train.log
CONFIG=(--configfile experiments/tiny.yaml .ci/slurm/cluster.yaml .ci/slurm/timelimit.yaml)
SM=(snakemake --profile slurm -s "$ROOT/Snakefile" -d "$WORK" --slurm-init-seconds-before-status-checks 2)
since=$(date +%Y-%m-%dT%H:%M:%S)
start=$(date +%s)

# the training job's inputs (dataset, experiment.json)
"${SM[@]}" "$MODEL/model.pt" --omit-from train "${CONFIG[@]}" > "$WORK/inputs.log" 2>&1 \
  || { tail -50 "$WORK/inputs.log"; exit 1; }
# the uninterrupted run, outside SLURM, alongside (one thread each: the runner's 2 cores)
mdseg train --experiment "$WORK/$MODEL/experiment.json" --datasets-dir "$WORK/results/datasets" \
  --out "$WORK/uninterrupted" > "$WORK/uninterrupted.log" 2>&1 &
direct=$!
# every job rewrites the train log: keep what each one wrote
tail -F -n +1 "$WORK/$LOG" > "$WORK/attempts.log" 2>/dev/null &
follow=$!
trap 'kill "$direct" "$follow" 2>/dev/null || true' EXIT
"${SM[@]}" "$MODEL/model.pt" "${CONFIG[@]}" > "$WORK/run.log" 2>&1 \
  || { tail -50 "$WORK/run.log"; exit 1; }
echo "time-limited training on SLURM: $(($(date +%s) - start)) s"
wait "$direct" || { tail -5 "$WORK/uninterrupted.log"; exit 1; }
echo "with the uninterrupted run: $(($(date +%s) - start)) s"
sleep 1
kill "$follow"

# SLURM: jobs stopped (FAILED after the signal, or TIMEOUT had the limit itself come first),
# then the last one completed
jobs=$(sacct -X -n -P -S "$since" -o JobID,Comment,State,ExitCode,Elapsed,Timelimit \
  | grep "rule_train_" || true)
echo "$jobs"
echo "$jobs" | tail -1 | grep -q "|COMPLETED|" || { echo "the last job did not complete"; exit 1; }
stopped=$(echo "$jobs" | head -n -1)
[ -n "$stopped" ] || { echo "no job reached its time limit: make timelimit.yaml longer"; exit 1; }
if echo "$stopped" | grep -v -E "\|(FAILED\|1:0|TIMEOUT\|[0-9:]+)\|"; then
  echo "a job ended otherwise"; exit 1
fi
# one training step per job: the Snakemake inside a job does not retry (workflow/rules/train.smk)
if sacct -n -P -j "$(echo "$jobs" | cut -d'|' -f1 | paste -sd,)" -o JobID | grep -E '\.[1-9]'; then
  echo "a job started training again after the signal"; exit 1
fi
# each stopped job saved its checkpoint and exited (training's own last line, so nothing killed
# it first) and the next job started at that step
stops=$(tr '\r' '\n' < "$WORK/attempts.log" | sed -n 's/.*stopped by a signal at step \([0-9]*\);.*/\1/p')
starts=$(sed -n 's/.*: training [0-9]* steps, \(from\|resumed from .* at\) step \([0-9]*\)$/\2/p' "$WORK/attempts.log")
echo "stopped at steps: $(echo $stops); started at steps: $(echo $starts)"
[ "$(echo "$stops" | wc -w)" = "$(echo "$stopped" | wc -l)" ] || { echo "a stop is missing"; exit 1; }
[ "$(echo $starts)" = "$(echo 0 $stops)" ] || { echo "a job did not resume where the last stopped"; exit 1; }

# the same weights as the uninterrupted run, and the same loss at every step
python - "$WORK/$MODEL" "$WORK/uninterrupted" <<'EOF'
import csv
import sys

import torch

resumed, direct = (torch.load(f"{d}/model.pt", weights_only=False) for d in sys.argv[1:])
a, b = resumed["state_dict"], direct["state_dict"]
assert a.keys() == b.keys(), "different parameters"
differ = [k for k in a if not torch.equal(a[k], b[k])]
assert not differ, f"{len(differ)} tensors differ from the uninterrupted run, e.g. {differ[:3]}"
losses = [[row["loss"] for row in csv.DictReader(open(f"{d}/train_log.csv"))] for d in sys.argv[1:]]
assert losses[0] == losses[1], "the loss curves differ"
print(f"{len(a)} tensors and {len(losses[0])} losses identical to the uninterrupted run")
EOF
echo "time-limit checks passed ($WORK)"
