#!/usr/bin/env bash
# Q4: the seven normalization variants at batch 128, BatchNorm and GroupNorm at batch 8, then
# reports/q4.md (tables, error curves, feature-distribution figures, ranking).
#
#   bash scripts/reproduce_q4.sh              # CIFAR-10 under data/ (40k/10k/10k), report schedules
#   bash scripts/reproduce_q4.sh --smoke      # built-in data, ResNet-8, 2 epochs: about 2 minutes on a CPU
#   bash scripts/reproduce_q4.sh --recipe modern --device cuda   # extra flags go to every run
#
# A run that diverges (NaN/inf loss, exit status 3) is recorded as diverged and the loop goes on;
# any other failure stops the script.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"

run() {  # run <log name> <train.py flags...>
    local name=$1
    shift
    echo "==== q4 $name ===="
    set +e
    python -m q4_normalization.train "$@" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
        ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$RUNS/logs/q4-$name.log"
    local status=${PIPESTATUS[0]}
    set -e
    if [[ $status -ne 0 && $status -ne 3 ]]; then
        echo "q4 $name failed with exit status $status" >&2
        exit "$status"
    fi
}

for norm in nn bn in bin ln gn torch_bn; do
    run "$norm-bs128" --norm "$norm" --bs 128
done
for norm in bn gn; do
    run "$norm-bs8" --norm "$norm" --bs 8
done

python -m q4_normalization.report --runs-dir "$RUNS" --out reports/q4.md
