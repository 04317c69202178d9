#!/usr/bin/env bash
# The main job: set-up, then every study's reproduce script in --smoke mode (built-in data,
# W&B offline, no network), which writes runs/smoke/ and renders reports/qN.md.
#
#   bash scripts/quickstart.sh
#   bash scripts/quickstart.sh --jobs 2     # up to two runs of each script at a time
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/_env.sh

started=$SECONDS
for script in scripts/reproduce_q[1-6].sh; do
    [[ -f "$script" ]] || continue
    echo "==== $script --smoke $* ===="
    bash "$script" --smoke "$@"
done
echo
echo "Done in $((SECONDS - started)) s. Reports:"
ls -1 reports/*.md 2>/dev/null | sed 's/^/  /'
echo "Run folders (config.json, metrics.jsonl, summary.json, W&B offline files): runs/smoke/"
