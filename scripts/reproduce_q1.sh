#!/usr/bin/env bash
# Q1 (weak supervision on CoNLL-2003): dataset statistics, labeling-function analysis and label
# aggregation, each with this repository's definitions and with the report's, then reports/q1.md.
#
#   scripts/reproduce_q1.sh --smoke                      # built-in corpus, offline, about 2 minutes
#   scripts/reproduce_q1.sh                              # CoNLL-2003 from HuggingFace
#   scripts/reproduce_q1.sh --conll-dir data/conll2003   # the original files: the report's exact table
#
# Extra flags are passed to every run. The report's rows need --keep-docstart, which needs
# --conll-dir or --smoke (the Hub's conversion has no -DOCSTART- lines); without either, those
# rows run without it and the report says which numbers cannot match.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"

DOCSTART=()
if [[ ${#SMOKE[@]} -gt 0 || " ${EXTRA[*]-} " == *" --conll-dir"* ]]; then
    DOCSTART=(--keep-docstart)
else
    echo "note: HuggingFace has no -DOCSTART- lines; the report-definition rows run without them"
fi

# One row per run: <run name> <script> [flags...]
ROWS=(
    "stats dataset_stats"
    "stats-docstart dataset_stats ${DOCSTART[*]-}"
    "lfs analyze_lfs"
    "lfs-report analyze_lfs --lf-definition report ${DOCSTART[*]-}"
    "aggregate aggregate"
    "aggregate-report aggregate --lf-definition report ${DOCSTART[*]-}"
)
for row in "${ROWS[@]}"; do
    read -r -a fields <<< "$row"
    name="${fields[0]}"
    script="${fields[1]}"
    flags=("${fields[@]:2}")
    [[ "$name" == "stats-docstart" && ${#DOCSTART[@]} -eq 0 ]] && continue
    echo "== $name: python -m q1_weak_supervision.$script ${flags[*]-} ${SMOKE[*]-} ${EXTRA[*]-}"
    python -m "q1_weak_supervision.$script" ${flags[@]+"${flags[@]}"} ${SMOKE[@]+"${SMOKE[@]}"} \
        --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$RUNS/logs/$name.log"
done

python -m q1_weak_supervision.report --runs-dir "$RUNS" --out reports/q1.md
