#!/usr/bin/env bash
# Q4: the seven normalization variants at batch 128, BatchNorm and GroupNorm at batch 8, then
# reports/q4.md (tables, error curves, feature-distribution figures, ranking).
#
#   bash scripts/reproduce_q4.sh              # CIFAR-10 under data/ (40k/10k/10k), report schedules
#   bash scripts/reproduce_q4.sh --smoke      # built-in data, ResNet-8, 2 epochs: about 2 minutes on a CPU
#   bash scripts/reproduce_q4.sh --recipe modern --device cuda   # extra flags go to every run
#   bash scripts/reproduce_q4.sh --smoke --jobs 2  # two runs at a time, logs in runs/smoke/logs/
#
# A run that diverges (NaN/inf loss, exit status 3) is recorded as diverged: a row of the report.
# Any other failure does not stop the other runs either; the script names it at the end and exits
# non-zero without rendering the report.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"

DIVERGED_IS_RESULT=1
run() {  # run <log name> <train.py flags...>
    local name=$1
    shift
    submit "q4-$name" python -m q4_normalization.train "$@" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
        ${EXTRA[@]+"${EXTRA[@]}"}
}

for norm in nn bn in bin ln gn torch_bn; do
    run "$norm-bs128" --norm "$norm" --bs 128
done
for norm in bn gn; do
    run "$norm-bs8" --norm "$norm" --bs 8
done
wait_all

python -m q4_normalization.report --runs-dir "$RUNS" --out reports/q4.md
