#!/usr/bin/env bash
# Q3 (active learning): every query strategy on CIFAR-10 and Flowers102 with 3 seeds, each run
# 100 initial labels + 10 episodes of 100, then reports/q3.md (mean +/- std per labeled-set size,
# learning curves with bands, Core-set vs random beyond the seed spread).
#
#   scripts/reproduce_q3.sh --smoke                  # built-in data, about 2 minutes on 2 CPU cores
#   scripts/reproduce_q3.sh --data-root data         # the real study: 24 runs, best on a GPU
#   scripts/reproduce_q3.sh --data-root data --keep-checkpoints 1   # 20 MB per run, not 220
#
# Extra flags are passed to every run (e.g. --device cuda, --epochs 20, --step-size 1).
# --smoke keeps all four methods on both built-in stand-ins but, to stay short, runs the
# uncertainty methods (entropy, bald) with one seed; random and coreset, the comparison the
# report's analysis is about, keep their 3 seeds.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
SEEDS_MAIN=(0 1 2)
SEEDS_OTHER=(0 1 2)
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    SEEDS_OTHER=(0)
    # Smoke tensors are tiny: one thread per run is several times faster than two, whose
    # synchronisation costs more than the work.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi

for dataset in cifar10 flowers102; do
    for method in random coreset entropy bald; do
        if [[ "$method" == random || "$method" == coreset ]]; then
            seeds=("${SEEDS_MAIN[@]}")
        else
            seeds=("${SEEDS_OTHER[@]}")
        fi
        for seed in "${seeds[@]}"; do
            run="q3-$dataset-$method-seed$seed"
            echo "== $run: python -m q3_active_learning.run --dataset $dataset --method $method" \
                "--seed $seed ${SMOKE[*]-} ${EXTRA[*]-}"
            python -m q3_active_learning.run --dataset "$dataset" --method "$method" --seed "$seed" \
                ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"} \
                2>&1 | tee "$RUNS/logs/$run.log"
        done
    done
done

python -m q3_active_learning.report --runs-dir "$RUNS" --out reports/q3.md
