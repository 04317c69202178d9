#!/usr/bin/env bash
# Q6: LeNet-5 on CIFAR-10 under the assignment's four configurations, an MLP on ResNet-34
# features, then reports/q6.md (parameter and accuracy tables, confusion matrices, curves, the
# yes/no answer, the theory answers).
#
#   scripts/reproduce_q6.sh --smoke                    # built-in data, random ResNet weights, ~2 minutes
#   scripts/reproduce_q6.sh --data-root data           # CIFAR-10, ImageNet weights from torch's cache
#   scripts/reproduce_q6.sh --device cuda --seed 1     # extra flags go to every run
#   scripts/reproduce_q6.sh --smoke --jobs 2           # two runs at a time, logs in runs/smoke/logs/
#   RESNET_WEIGHTS=none scripts/reproduce_q6.sh        # without the ImageNet weights: random features,
#                                                      # labelled as such in the runs and the report
#   RESNET_WEIGHTS=none RESNET_IMAGE_SIZE=64 scripts/reproduce_q6.sh --data-root data --jobs 2 --threads 1
#                                                      # results/q6.md: random features at 64 px, about
#                                                      # 12 times cheaper than 224 px on a CPU
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    WEIGHTS="${RESNET_WEIGHTS:-none}"
else
    WEIGHTS="${RESNET_WEIGHTS:-imagenet}"
fi

# One row of the accuracy table per run: the four configurations (q6_cnn_wandb/train.py), a row
# beside them (config 1 with random crop + flip and 60 epochs, a departure) ...
AUG_EPOCHS=60
[[ ${#SMOKE[@]} -gt 0 ]] && AUG_EPOCHS=6
run() {  # run <log name> <module> <flags...>
    local name=$1 module=$2
    shift 2
    submit "q6-$name" python -m "$module" "$@" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"}
}
for config in 1 2 3 4; do
    run "config$config" q6_cnn_wandb.train --config "$config"
done
run config1-aug q6_cnn_wandb.train --config 1 --augment --epochs "$AUG_EPOCHS"
# The headline row, the best on validation accuracy in results/q6.md, runs two more seeds so that
# its spread is measured (not under --smoke, nor when the extra flags set --seed for every run).
if [[ ${#SMOKE[@]} -eq 0 && " ${EXTRA[*]-} " != *" --seed"* ]]; then
    for seed in 1 2; do
        run "config1-aug-seed$seed" q6_cnn_wandb.train --config 1 --augment --epochs "$AUG_EPOCHS" --seed "$seed"
    done
fi
# ... and the MLP on ResNet-34 features.
IMAGE_SIZE=()
[[ -n "${RESNET_IMAGE_SIZE:-}" ]] && IMAGE_SIZE=(--image-size "$RESNET_IMAGE_SIZE")
run "resnet34-$WEIGHTS" q6_cnn_wandb.resnet34_features --weights "$WEIGHTS" ${IMAGE_SIZE[@]+"${IMAGE_SIZE[@]}"}
wait_all

# The report runs theory.py's checks itself and includes the answers.
python -m q6_cnn_wandb.report --runs-dir "$RUNS" --out reports/q6.md

# The W&B Report (needs an account and the network): set WANDB_ENTITY and run online.
if [[ -n "${WANDB_ENTITY:-}" ]]; then
    python -m q6_cnn_wandb.wandb_report --entity "$WANDB_ENTITY" --runs-dir "$RUNS" --wandb-mode online
fi
