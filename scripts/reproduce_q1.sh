#!/usr/bin/env bash
# Q1 (weak supervision on CoNLL-2003), end to end: dataset statistics, labeling-function analysis
# (train, and the gold dev split for each LF's precision), the report's sentence aggregation, the
# weakly labelled training and dev files, then Q5's tagger (GloVe + characters + CRF) trained on
# each weak label set and on the gold labels, and reports/q1.md.
#
#   scripts/reproduce_q1.sh --smoke                      # built-in corpus, offline, a few minutes
#   scripts/reproduce_q1.sh --conll-dir data/conll2003 # the original files (results/q1.md)
#   scripts/reproduce_q1.sh                              # CoNLL-2003 from HuggingFace
#
# GLOVE (default data/glove.6B.50d.conll2003-gmb.txt, the GloVe 6B 50-d rows of the words of
# CoNLL-2003 and GMB: scripts/make_glove_subset.py; the full glove.6B.50d.txt works too, only
# larger) is the GloVe text file of the taggers; TAGGER_FLAGS
# goes to the tagger runs only (e.g. "--threads 1" or "--device cuda"); TAGGERS picks tagger rows
# (default "gold majority label_model majority_doc majority_doc_partial"; also label_model_doc,
# hmm_doc: any label set weak_labels.py writes; empty: none). Other flags go to every Q1 run;
# --conll-dir also gives the taggers their data (--data-path).
#
# The taggers use one of Q5's recipes, TAGGER_RECIPE (q5_ner_crf/train.py --recipe):
#   literature (default): Q5's CoNLL-2003 recipe with its own budget (at most 30 epochs, early stop
#       after 4 without a better F1 on the selection split); the gold row is Q5's
#       conll2003-literature-glove-char-crf-seed0 run, left as it is when it has finished.
#   modern: Adam lr 0.002, batch 64, at most 20 epochs with early stopping after 3 (the recipe
#       says 2; 3 gives the noisier weak dev labels one more epoch): the rows of earlier results.
# TAGGER_EPOCHS overrides the most epochs (5 under --smoke). Every row of a recipe gets one budget.
# A weak row selects its checkpoint on the weak dev labels (no gold anywhere) and also reports the
# checkpoint the gold dev split selects (q5_ner_crf/train.py --validation-file).
#
# Self-training (when TAGGERS holds majority_doc): SELF_TRAIN_ROUNDS rounds (default 1; 0: none) of
# q1_weak_supervision/self_train.py, the tagger on majority_doc labels the first teacher, each
# round's student (same recipe, trained on the weak labels plus the teacher's other entities, its
# dev file made the same way) the next round's teacher.
#
# The report-definition rows need --keep-docstart, which needs --conll-dir or --smoke (the Hub's
# conversion has no -DOCSTART- lines); without either, those rows run without it.
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
GLOVE="${GLOVE:-data/glove.6B.50d.conll2003-gmb.txt}"
TAGGERS="${TAGGERS-gold majority label_model majority_doc majority_doc_partial}"
TAGGER_RECIPE="${TAGGER_RECIPE:-literature}"
# The majority_doc_partial rows, one tagger per choice of the types a token the file leaves
# unlabelled may take besides O: `any` (every type) and LOC,MISC,ORG (not PER, the type whose
# functions, given names, surnames and titles, cover names most broadly).
PARTIAL_TYPES="${PARTIAL_TYPES-any LOC,MISC,ORG}"
case "$TAGGER_RECIPE" in
    literature) BUDGET=() ;;
    modern) BUDGET=(--epochs 20 --patience 3) ;;
    *) echo "error: TAGGER_RECIPE must be literature or modern, got '$TAGGER_RECIPE'" >&2; exit 2 ;;
esac
# The built-in corpus: 5 epochs are enough to show the hand-off.
[[ -z "${TAGGER_EPOCHS:-}" && ${#SMOKE[@]} -gt 0 ]] && TAGGER_EPOCHS=5
[[ -n "${TAGGER_EPOCHS:-}" ]] && BUDGET+=(--epochs "$TAGGER_EPOCHS")
read -r -a TAGGER_EXTRA <<< "${TAGGER_FLAGS:-}"
SELF_TRAIN_ROUNDS="${SELF_TRAIN_ROUNDS-1}"
if [[ ! "$SELF_TRAIN_ROUNDS" =~ ^[0-9]+$ ]]; then
    echo "error: SELF_TRAIN_ROUNDS needs a number of rounds (0: none), got '$SELF_TRAIN_ROUNDS'" >&2
    exit 2
fi

CONLL_DIR=""
for ((i = 0; i < ${#EXTRA[@]}; i++)); do
    case "${EXTRA[$i]}" in
        --conll-dir) CONLL_DIR="${EXTRA[$((i + 1))]-}" ;;
        --conll-dir=*) CONLL_DIR="${EXTRA[$i]#--conll-dir=}" ;;
    esac
done

DOCSTART=()
if [[ ${#SMOKE[@]} -gt 0 || -n "$CONLL_DIR" ]]; then
    DOCSTART=(--keep-docstart)
else
    echo "note: HuggingFace has no -DOCSTART- lines; the report-definition rows run without them"
fi

# One row per run: <run name> <script> [flags...]
ROWS=(
    "stats dataset_stats"
    "stats-docstart dataset_stats ${DOCSTART[*]-}"
    "lfs analyze_lfs"
    "lfs-validation analyze_lfs --split validation"
    "lfs-report analyze_lfs --lf-definition report ${DOCSTART[*]-}"
    "aggregate aggregate"
    "aggregate-report aggregate --lf-definition report ${DOCSTART[*]-}"
    "weak-labels weak_labels"
)
for row in "${ROWS[@]}"; do
    read -r -a fields <<< "$row"
    name="${fields[0]}"
    script="${fields[1]}"
    flags=("${fields[@]:2}")
    [[ "$name" == "stats-docstart" && ${#DOCSTART[@]} -eq 0 ]] && continue
    submit "$name" python -m "q1_weak_supervision.$script" ${flags[@]+"${flags[@]}"} ${SMOKE[@]+"${SMOKE[@]}"} \
        --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"}
done
wait_all  # the taggers read weak-labels' files

# ---- the tagger on weak labels and on gold labels (Q5's train.py; the hand-off is a file) ----
PREFIX=""
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    PREFIX="smoke-"
    DATA=(--dataset conll2003)
    GLOVE_FLAGS=(--embeddings glove)   # --smoke builds its own small GloVe-format file
    SOURCE=builtin
else
    DATA=(--dataset conll2003)
    [[ -n "$CONLL_DIR" ]] && DATA+=(--data-path "$CONLL_DIR")
    GLOVE_FLAGS=(--embeddings glove --glove "$GLOVE")
    SOURCE=$([[ -n "$CONLL_DIR" ]] && echo conll-dir || echo hf)
fi
LABELS="$RUNS/q1_weak_supervision/${PREFIX}weak-labels-$SOURCE/labels"
TAGGER=(--recipe "$TAGGER_RECIPE" ${BUDGET[@]+"${BUDGET[@]}"} "${GLOVE_FLAGS[@]}" --char --crf)
for row in $TAGGERS; do
    choices=("")
    [[ "$row" == majority_doc_partial ]] && read -r -a choices <<< "$PARTIAL_TYPES"
    for types in ${choices[@]+"${choices[@]}"}; do
        case "$row" in
            gold) files=(--resume auto)
                  name=conll2003-glove-char-crf-modern-seed0
                  # Q5's run of the same command (scripts/reproduce_q5.sh), when it has finished.
                  [[ "$TAGGER_RECIPE" == literature ]] && name=conll2003-literature-glove-char-crf-seed0 ;;
            majority|label_model|majority_doc|majority_doc_partial|label_model_doc|hmm_doc)
                name="conll2003-weak-${row//_/-}-glove-char-crf-$TAGGER_RECIPE-seed0"
                files=(--train-file "$LABELS/$row/train.txt" --validation-file "$LABELS/$row/valid.txt")
                if [[ -n "$types" && "$types" != any ]]; then
                    files+=(--unlabelled-types "$types")
                    name="conll2003-weak-${row//_/-}-${types//,/-}-glove-char-crf-$TAGGER_RECIPE-seed0"
                fi ;;
            *) echo "error: unknown tagger row '$row' in TAGGERS (gold, majority, label_model, majority_doc," \
                   "majority_doc_partial, label_model_doc, hmm_doc)" >&2; exit 2 ;;
        esac
        submit "tagger-$row${types:+-$types}" python -m q5_ner_crf.train "${DATA[@]}" ${files[@]+"${files[@]}"} \
            "${TAGGER[@]}" ${SMOKE[@]+"${SMOKE[@]}"} --run-name "$PREFIX$name" --out-dir "$RUNS" \
            ${TAGGER_EXTRA[@]+"${TAGGER_EXTRA[@]}"}
    done
done
wait_all

# ---- self-training: the tagger on majority_doc labels teaches, each student teaches the next ----
if [[ " $TAGGERS " == *" majority_doc "* ]]; then
    teacher="$RUNS/q5_ner_crf/${PREFIX}conll2003-weak-majority-doc-glove-char-crf-$TAGGER_RECIPE-seed0"
    # Each recipe's rounds have folders of their own (the modern recipe's keep their first names).
    recipe_part=""
    [[ "$TAGGER_RECIPE" != modern ]] && recipe_part="-$TAGGER_RECIPE"
    for ((round = 1; round <= SELF_TRAIN_ROUNDS; round++)); do
        round_run="${PREFIX}self-train-majority-doc-round$round$recipe_part-$SOURCE"
        submit "self-train-$round" python -m q1_weak_supervision.self_train --labels-dir "$LABELS/majority_doc" \
            --teacher-run "$teacher" --round "$round" ${SMOKE[@]+"${SMOKE[@]}"} --run-name "$round_run" \
            --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"}
        wait_all
        student="$RUNS/q1_weak_supervision/$round_run/labels/self_train_round$round"
        name="conll2003-weak-majority-doc-st$round-glove-char-crf-$TAGGER_RECIPE-seed0"
        submit "tagger-self-train-$round" python -m q5_ner_crf.train "${DATA[@]}" --train-file "$student/train.txt" \
            --validation-file "$student/valid.txt" "${TAGGER[@]}" ${SMOKE[@]+"${SMOKE[@]}"} \
            --run-name "$PREFIX$name" --out-dir "$RUNS" ${TAGGER_EXTRA[@]+"${TAGGER_EXTRA[@]}"}
        wait_all
        teacher="$RUNS/q5_ner_crf/$PREFIX$name"
    done
fi

python -m q1_weak_supervision.report --runs-dir "$RUNS" --out reports/q1.md
