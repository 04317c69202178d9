#!/usr/bin/env bash
# Copy finished real-data runs into results/runs (config.json, summary.json, metrics.jsonl, tables
# and figures; no checkpoints, no W&B files), record the machine and the data's checksums beside
# them, then render results/qN.md and results/README.md from results/runs alone.
#
#   bash scripts/collect_results.sh runs            # copy runs/q*/<run>/ (smoke runs are skipped)
#   bash scripts/collect_results.sh ../studies/q4   # a study kept outside the work tree (--out-dir)
#   bash scripts/collect_results.sh                 # only re-render from results/runs
#
# Runs one level deeper keep their place: the Q4 learning-rate sweep's
# <root>/q4_lr_sweep/q4_normalization/<run>/ becomes results/runs/q4_lr_sweep/q4_normalization/<run>/.
#
# The machine (machine.txt) and the checksums of the files under data/ (data.sha256) are recorded
# when runs are copied, on the machine that made them.
source "$(dirname "$0")/_env.sh"

mkdir -p results/runs
if [[ $# -gt 0 ]]; then
    for root in "$@"; do
        for run in "$root"/q*/*/ "$root"/q*/q*/*/; do
            [[ -d "$run" ]] || continue
            name="$(basename "$run")"
            [[ -f "$run/summary.json" && "$name" != smoke-* ]] || continue
            place="${run#"$root"/}"
            place="${place%/}"
            mkdir -p "results/runs/$place"
            (cd "$run" && find . -path ./checkpoints -prune -o -path ./wandb -prune -o -type f \
                \( -name '*.json' -o -name '*.jsonl' -o -name '*.csv' -o -name '*.png' \) -print0 \
                | xargs -0 -I{} cp --parents {} "$OLDPWD/results/runs/$place/")
        done
    done
    machine="$(
        echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p') ($(getconf _NPROCESSORS_ONLN) cores available)"
        echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
        echo "gpu: $(python -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")')"
        echo "python $(python -c 'import platform; print(platform.python_version())'), torch $(python -c 'import torch; print(torch.__version__)')"
    )"
    # Runs collected at different times may come from different machines: a machine not yet
    # recorded is added below the earlier ones, with the date of the copy, instead of replacing them.
    if [[ ! -s results/runs/machine.txt ]]; then
        echo "$machine" > results/runs/machine.txt
    elif ! grep -qxF "$(head -n 1 <<< "$machine")" results/runs/machine.txt; then
        printf '\nruns collected on %s:\n%s\n' "$(date -u +%F)" "$machine" >> results/runs/machine.txt
    fi
    {
        for file in data/ner_dataset.csv data/glove.6B.50d.gmb.txt data/multiconer2/*/*.conll \
                data/conll2003/*.txt data/glove.6B.50d.conll2003-gmb.txt; do
            [[ -f "$file" ]] && sha256sum "$file"
        done
        if [[ -d data/cifar10 ]]; then  # one digest over the sorted per-file digests of the image folder
            echo "$(cd data && find cifar10 -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)  data/cifar10/ (60,000 files: sha256 of the sorted per-file sha256sum lines)"
        fi
    } > results/runs/data.sha256
fi

for question in q1_weak_supervision q3_active_learning q4_normalization q5_ner_crf q6_cnn_wandb; do
    if compgen -G "results/runs/$question/*/summary.json" > /dev/null; then
        python -m "$question.report" --runs-dir results/runs --out "results/${question%%_*}.md"
    fi
done
python scripts/render_results.py --runs-dir results/runs --out results/README.md
