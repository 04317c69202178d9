#!/usr/bin/env bash
# Q3 (active learning): every query strategy on CIFAR-10 and Flowers102 with 3 seeds, each run
# 100 initial labels + 10 episodes of 100, then random and Core-set again with two more training
# recipes (augmentation, 30 epochs with the learning-rate step at 15, and 40 epochs with it at 20),
# then reports/q3.md (mean +/- std per labeled-set size, learning curves with bands, Core-set vs
# random beyond the seed spread, the recipe chosen on validation accuracy).
#
#   scripts/reproduce_q3.sh --smoke                  # built-in data, a few minutes on 2 CPU cores
#   scripts/reproduce_q3.sh --data-root data         # the real study: 48 runs, best on a GPU
#   scripts/reproduce_q3.sh --data-root data --jobs 4   # four runs at a time, logs in runs/logs/
#   scripts/reproduce_q3.sh --data-root data --keep-checkpoints 1   # 20 MB per run, not 220
#   Q3_DATASETS=cifar10 scripts/reproduce_q3.sh --data-root data --jobs 2   # results/q3.md
#
# Q3_DATASETS picks the datasets (default "cifar10 flowers102"; Flowers102 could not be had for
# the runs in results/).
# Extra flags are passed to every run (e.g. --device cuda, --epochs 20, --step-size 1). A failed
# run does not stop the others; the script names it at the end and exits non-zero without
# rendering the report.
# --smoke keeps all four methods on both built-in stand-ins but, to stay short, runs random and
# coreset under the report's recipe (the comparison the report's analysis is about) with 2 seeds,
# enough for a spread; the uncertainty methods (entropy, bald) with one, and the two augmented
# recipes with one seed on the cifar10 stand-in only (on the second stand-in they would repeat
# the same code).
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
SEEDS_MAIN=(0 1 2)
SEEDS_OTHER=(0 1 2)
read -r -a DATASETS <<< "${Q3_DATASETS-cifar10 flowers102}"
RECIPE_DATASETS=("${DATASETS[@]}")
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    SEEDS_MAIN=(0 1)
    SEEDS_OTHER=(0)
    RECIPE_DATASETS=(cifar10)
    # Smoke tensors are tiny: one thread per run is several times faster than two, whose
    # synchronisation costs more than the work.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi

al_run() {  # al_run DATASET METHOD SEED RECIPE_SUFFIX [run.py flags...]
    local dataset=$1 method=$2 seed=$3 suffix=$4
    shift 4
    submit "q3-$dataset-$method$suffix-seed$seed" python -m q3_active_learning.run --dataset "$dataset" \
        --method "$method" --seed "$seed" "$@" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
        ${EXTRA[@]+"${EXTRA[@]}"}
}

# The report's recipe: every method.
for dataset in ${DATASETS[@]+"${DATASETS[@]}"}; do
    for method in random coreset entropy bald; do
        if [[ "$method" == random || "$method" == coreset ]]; then
            seeds=("${SEEDS_MAIN[@]}")
        else
            seeds=("${SEEDS_OTHER[@]}")
        fi
        for seed in "${seeds[@]}"; do
            al_run "$dataset" "$method" "$seed" ""
        done
    done
done

# Two more recipes for random and Core-set: does the comparison hold for networks trained longer,
# with augmentation? (run.py names these runs -aug-ep30 and -aug-ep40.) The report picks between
# the recipes on the held-out validation images, never on the test split.
for dataset in ${RECIPE_DATASETS[@]+"${RECIPE_DATASETS[@]}"}; do
    for method in random coreset; do
        for seed in "${SEEDS_OTHER[@]}"; do
            al_run "$dataset" "$method" "$seed" -aug-ep30 --augment --epochs 30 --step-size 15
            al_run "$dataset" "$method" "$seed" -aug-ep40 --augment --epochs 40 --step-size 20
        done
    done
done
wait_all

python -m q3_active_learning.report --runs-dir "$RUNS" --out reports/q3.md
