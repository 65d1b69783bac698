#!/usr/bin/env bash
# The report in a browser: experiments/tiny.yaml in a scratch folder, Snakemake's own --report,
# then .ci/report_check.py in headless Chromium (every table and plot present, no page errors).
# Keeps the screenshot as $WORK/report.png and prints the report's build time and size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d /tmp/mdseg-report.XXXX)}
mkdir -p "$WORK"
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
SM=(snakemake -s "$ROOT/Snakefile" -d "$WORK" --configfile "$ROOT/experiments/tiny.yaml" --cores 2)
"${SM[@]}" > "$WORK/run.log" 2>&1 || { tail -50 "$WORK/run.log"; exit 1; }
start=$(date +%s)
"${SM[@]}" --report results/report.html > "$WORK/report.log" 2>&1 || { tail -50 "$WORK/report.log"; exit 1; }
echo "report built: $(( $(date +%s) - start )) s, $(du -h "$WORK/results/report.html" | cut -f1)"
python "$ROOT/.ci/report_check.py" "$WORK/results/report.html" --results "$WORK/results" \
  --screenshot "$WORK/report.png"
