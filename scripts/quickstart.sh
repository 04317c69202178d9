#!/usr/bin/env bash
# The main job: set-up, then every study's reproduce script in --smoke mode (built-in data,
# W&B offline, no network), which writes runs/smoke/ and renders reports/qN.md.
#
#   bash scripts/quickstart.sh              # as many runs at a time as the machine has cores
#   bash scripts/quickstart.sh --jobs 1     # one run at a time (the logs also on the terminal)
#
# Smoke runs are tiny: each is a single-threaded process that spends much of its time starting
# up, so running one per core (each with one torch thread) roughly divides the wall time by the
# number of cores. Extra arguments go to every reproduce script (after the default --jobs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/_env.sh

cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
started=$SECONDS
for script in scripts/reproduce_q[1-6].sh; do
    [[ -f "$script" ]] || continue
    echo "==== $script --smoke --jobs $cores $* ===="
    bash "$script" --smoke --jobs "$cores" "$@"
done
echo
echo "Done in $((SECONDS - started)) s. Reports:"
ls -1 reports/*.md 2>/dev/null | sed 's/^/  /'
echo "Run folders (config.json, metrics.jsonl, summary.json, W&B offline files): runs/smoke/"
