#!/usr/bin/env bash
# Q6: LeNet-5 on CIFAR-10 under the assignment's four configurations, an MLP on ResNet-34
# features, then reports/q6.md (parameter and accuracy tables, confusion matrices, curves, the
# yes/no answer, the theory answers).
#
#   scripts/reproduce_q6.sh --smoke                    # built-in data, random ResNet weights, ~2 minutes
#   scripts/reproduce_q6.sh --data-root data           # CIFAR-10, ImageNet weights from torch's cache
#   scripts/reproduce_q6.sh --device cuda --seed 1     # extra flags go to every run
#   RESNET_WEIGHTS=none scripts/reproduce_q6.sh        # without the ImageNet weights: random features,
#                                                      # labelled as such in the runs and the report
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    WEIGHTS="${RESNET_WEIGHTS:-none}"
else
    WEIGHTS="${RESNET_WEIGHTS:-imagenet}"
fi

# One row of the accuracy table per run: the four configurations (q6_cnn_wandb/train.py) ...
for config in 1 2 3 4; do
    echo "== config $config: python -m q6_cnn_wandb.train --config $config ${SMOKE[*]-} ${EXTRA[*]-}"
    python -m q6_cnn_wandb.train --config "$config" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
        ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$RUNS/logs/q6-config$config.log"
done

# ... and the MLP on ResNet-34 features.
echo "== resnet34: python -m q6_cnn_wandb.resnet34_features --weights $WEIGHTS ${SMOKE[*]-} ${EXTRA[*]-}"
python -m q6_cnn_wandb.resnet34_features --weights "$WEIGHTS" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
    ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$RUNS/logs/q6-resnet34-$WEIGHTS.log"

# The report runs theory.py's checks itself and includes the answers.
python -m q6_cnn_wandb.report --runs-dir "$RUNS" --out reports/q6.md
