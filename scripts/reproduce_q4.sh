#!/usr/bin/env bash
# Q4: the seven normalization variants at batch 128, BatchNorm and GroupNorm at batch 8, then
# reports/q4.md (tables, error curves, feature-distribution figures, ranking).
#
#   bash scripts/reproduce_q4.sh --recipe cpu --jobs 2 --out-dir ../studies   # the 15-epoch table
#   bash scripts/reproduce_q4.sh --recipe converge --jobs 1 --out-dir ../studies   # to convergence
#   bash scripts/reproduce_q4.sh              # CIFAR-10 under data/ (40k/10k/10k), report schedules
#   bash scripts/reproduce_q4.sh --smoke      # built-in data, ResNet-8, 2 epochs: about 2 minutes on a CPU
#   bash scripts/reproduce_q4.sh --recipe modern --device cuda   # extra flags go to every run
#   bash scripts/reproduce_q4.sh --smoke --jobs 2  # two runs at a time, logs in runs/smoke/logs/
#
# --recipe cpu first sweeps each norm's peak learning rate (2 epochs on 10,000 training images
# per lr, scored on validation accuracy; torch_bn takes bn's pick, so that the two differ only in
# the implementation) and trains the table's rows with the picks (q4_normalization/select_lr.py).
#
# --recipe converge sweeps each norm's peak lr with the recipe's whole rule (warm-up, the peak, a
# linear cool-down over the last fifth of a 60-epoch budget, and the budget check's second cool-down
# branched off at 36 epochs, ending at 45) on 10,000 training images, from a grid of a starting lr
# x 1/2, 1, 2, widened (x 2 past the largest, / 2 past the smallest) while a pick lies at the grid's
# edge, at most three times; then trains the rows with the picks. Scored on validation accuracy; the test split is
# not evaluated. The starting lrs are the picks of the recipe's first sweep, made under a plateau rule
# that was withdrawn before any test score (q4_normalization/README.md, "The convergence recipe").
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
if [[ "$RECIPE" == converge ]]; then
    # ---- learning-rate sweep under the whole rule, on a subset: validation accuracy only ----
    SWEEP="$RUNS/q4_lr_sweep_converge"
    SWEEP_SIZE=(--train-size 10000)
    [[ ${#SMOKE[@]} -gt 0 ]] && SWEEP_SIZE=(--epochs 3)
    # The first (plateau-rule) sweep's picks; GroupNorm, which it did not reach, the cpu recipe's.
    declare -A START=([nn]=0.04 [bn]=0.4 [in]=0.2 [bin]=0.2 [ln]=0.1 [gn]=0.1)
    sweep_run() {  # sweep_run NORM LR
        run "sweep-$1-lr$2" "$SWEEP" --norm "$1" --bs 128 --lr "$2" "${SWEEP_SIZE[@]}" --no-eval-test \
            --run-name "sweep-$1-lr$2"
    }
    for norm in "${SWEEP_NORMS[@]}"; do
        for lr in $(awk -v p="${START[$norm]}" 'BEGIN { printf "%g %g %g", p / 2, p, 2 * p }'); do
            sweep_run "$norm" "$lr"
        done
    done
    wait_all
    # A norm without a finished sweep run (select_lr says so on stderr) is neither widened nor
    # trained: its rows wait for the sweep. This happens only where the grid's runs did not run
    # (the queue above stops the script when a run fails).
    for _round in 1 2 3; do
        widened=0
        for norm in "${SWEEP_NORMS[@]}"; do
            lr=$(python -m q4_normalization.select_lr --sweep-dir "$SWEEP" --norm "$norm" --widen) || continue
            [[ -z "$lr" ]] && continue
            sweep_run "$norm" "$lr"
            widened=1
        done
        wait_all
        [[ $widened == 0 ]] && break
    done
    if compgen -G "$SWEEP/q4_normalization/*/summary.json" > /dev/null; then
        python -m q4_normalization.select_lr --sweep-dir "$SWEEP" | tee "$SWEEP/selected_lr.md"
    fi
    for norm in "${SWEEP_NORMS[@]}"; do
        LR[$norm]=$(python -m q4_normalization.select_lr --sweep-dir "$SWEEP" --norm "$norm") || unset "LR[$norm]"
    done
    [[ -n "${LR[bn]-}" ]] && LR[torch_bn]=${LR[bn]}
elif [[ "$RECIPE" == cpu ]]; then
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
picked() {  # picked NORM: false (with a note) where the converge sweep has no pick for NORM yet
    [[ "$RECIPE" != converge || -n "${LR[$1]-}" ]] && return 0
    echo "note: no learning rate picked for $1 yet (no finished sweep run): its rows wait" >&2
    return 1
}
for norm in ${NORMS[@]+"${NORMS[@]}"}; do
    picked "$norm" || continue
    # shellcheck disable=SC2046
    run "$norm-bs128" "$RUNS" --norm "$norm" --bs 128 $(lr_flag "$norm")
done
for norm in ${BS8_NORMS[@]+"${BS8_NORMS[@]}"}; do
    picked "$norm" || continue
    # shellcheck disable=SC2046
    run "$norm-bs8" "$RUNS" --norm "$norm" --bs 8 $(lr_flag "$norm")
done
wait_all

python -m q4_normalization.report --runs-dir "$RUNS" --recipe "$RECIPE" --out reports/q4.md
