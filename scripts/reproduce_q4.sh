#!/usr/bin/env bash
# Q4: the seven normalization variants at batch 128, BatchNorm and GroupNorm at batch 8, then
# reports/q4.md (tables, error curves, feature-distribution figures, ranking).
#
#   bash scripts/reproduce_q4.sh --recipe cpu --jobs 2 --out-dir ../studies   # the results/ table
#   bash scripts/reproduce_q4.sh              # CIFAR-10 under data/ (40k/10k/10k), report schedules
#   bash scripts/reproduce_q4.sh --smoke      # built-in data, ResNet-8, 2 epochs: about 2 minutes on a CPU
#   bash scripts/reproduce_q4.sh --recipe modern --device cuda   # extra flags go to every run
#   bash scripts/reproduce_q4.sh --smoke --jobs 2  # two runs at a time, logs in runs/smoke/logs/
#
# --recipe cpu first sweeps each norm's peak learning rate (2 epochs on 10,000 training images
# per lr, scored on validation accuracy; torch_bn takes bn's pick, so that the two differ only in
# the implementation) and trains the table's rows with the picks (q4_normalization/select_lr.py).
#
# Stopped and started again (a killed process, a machine that went away), the script carries on:
# every run goes with `--resume auto`, so a finished run is left as it is and an unfinished one
# continues from its last epoch checkpoint to the numbers an uninterrupted run ends with.
# `--out-dir` may point outside the work tree, so that a long study outlives a checkout.
#
# A run that diverges (NaN/inf loss, exit status 3) is recorded as diverged: a row of the report.
# Any other failure does not stop the other runs either; the script names it at the end and exits
# non-zero without rendering the report.
source "$(dirname "$0")/_env.sh"

RECIPE=report
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --recipe) RECIPE="${2-}"; shift $(($# > 1 ? 2 : 1)); continue ;;
        --recipe=*) RECIPE="${1#--recipe=}" ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
parse_reproduce_args ${ARGS[@]+"${ARGS[@]}"}
# Q4_NORMS / Q4_BS8_NORMS pick a subset of the rows (the tests use one or two).
read -r -a NORMS <<< "${Q4_NORMS-nn bn in bin ln gn torch_bn}"
read -r -a BS8_NORMS <<< "${Q4_BS8_NORMS-bn gn}"
SWEEP_NORMS=(nn bn in bin ln gn)
LR_GRID=(0.05 0.1 0.2)
NN_LR_GRID=(0.02 0.05 0.1)  # no normalization: lr 0.2 is past what a plain ResNet-14 takes

DIVERGED_IS_RESULT=1
run() {  # run <log name> <out dir> <train.py flags...>
    local name=$1 out=$2
    shift 2
    submit "q4-$name" python -m q4_normalization.train --recipe "$RECIPE" --resume auto "$@" \
        ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$out" ${EXTRA[@]+"${EXTRA[@]}"}
}

declare -A LR=()
if [[ "$RECIPE" == cpu ]]; then
    # ---- learning-rate sweep: validation accuracy only, the test split is not scored ----
    SWEEP="$RUNS/q4_lr_sweep"
    SWEEP_SIZE=(--epochs 2 --train-size 10000)
    [[ ${#SMOKE[@]} -gt 0 ]] && SWEEP_SIZE=(--epochs 1)
    for norm in "${SWEEP_NORMS[@]}"; do
        grid=("${LR_GRID[@]}")
        [[ $norm == nn ]] && grid=("${NN_LR_GRID[@]}")
        for lr in "${grid[@]}"; do
            # Eager: 160 steps are over before a compiled graph would pay for its compilation.
            run "sweep-$norm-lr$lr" "$SWEEP" --norm "$norm" --bs 128 --lr "$lr" "${SWEEP_SIZE[@]}" \
                --no-eval-test --no-compile --run-name "sweep-$norm-lr$lr"
        done
    done
    wait_all
    python -m q4_normalization.select_lr --sweep-dir "$SWEEP" | tee "$SWEEP/selected_lr.md"
    for norm in "${SWEEP_NORMS[@]}"; do
        LR[$norm]=$(python -m q4_normalization.select_lr --sweep-dir "$SWEEP" --norm "$norm")
    done
    LR[torch_bn]=${LR[bn]}
fi
lr_flag() {  # lr_flag NORM: --lr with the sweep's pick, nothing for the other recipes
    [[ -n "${LR[$1]-}" ]] && echo "--lr ${LR[$1]}"
    return 0
}

# ---- the table ----
for norm in ${NORMS[@]+"${NORMS[@]}"}; do
    # shellcheck disable=SC2046
    run "$norm-bs128" "$RUNS" --norm "$norm" --bs 128 $(lr_flag "$norm")
done
for norm in ${BS8_NORMS[@]+"${BS8_NORMS[@]}"}; do
    # shellcheck disable=SC2046
    run "$norm-bs8" "$RUNS" --norm "$norm" --bs 8 $(lr_flag "$norm")
done
wait_all

python -m q4_normalization.report --runs-dir "$RUNS" --recipe "$RECIPE" --out reports/q4.md
