#!/usr/bin/env bash
# Q2 (transfer between CIFAR-100 and CIFAR-10): both orders and both from-scratch baselines, with
# the same seed and the same stratified subsets, then reports/q2.md.
#
#   scripts/reproduce_q2.sh --smoke                          # built-in data, small CNN, about 1-2 minutes
#   scripts/reproduce_q2.sh --data-root data                 # CIFAR, ResNet-18, 100 epochs per stage
#   scripts/reproduce_q2.sh --epochs 20 --subset-ratio 0.1   # the original's setting
#   scripts/reproduce_q2.sh --smoke --jobs 2                 # two runs at a time, logs in runs/smoke/logs/
#
# Extra flags are passed to every run (e.g. --model smallcnn, --device cuda, --seed 1). A failed
# run does not stop the others; the script names it at the end and exits non-zero without
# rendering the report.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"

# One row of the report's table per run: the two transfer orders and their baselines.
for order in c100-c10 c10-c100 c10 c100; do
    submit "q2-$order" python -m q2_transfer.train --order "$order" ${SMOKE[@]+"${SMOKE[@]}"} \
        --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"}
done
wait_all

python -m q2_transfer.report --runs-dir "$RUNS" --out reports/q2.md
