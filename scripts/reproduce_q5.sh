#!/usr/bin/env bash
# Q5 (NER): the BiLSTM tagger rows of report 1 (random, GloVe, + characters, + LayerNorm on h_t as
# the report had it and Ba et al.'s beside it, CRF, and all of them with a CRF) on GMB in the
# report's recipe and the modern one, the headline row in the literature recipe, CoNLL-2003 in the
# literature recipe with its ablation, the MultiCoNER II runs of report 2 (Adam) when
# MULTICONER_DIR is set, then reports/q5.md.
#
#   scripts/reproduce_q5.sh --smoke                   # built-in data, tiny models, 1-2 minutes
#   scripts/reproduce_q5.sh                           # data/ner_dataset.csv, data/glove.6B.50d.gmb.txt
#   MULTICONER_DIR=data/multiconer2 scripts/reproduce_q5.sh --device cuda
#   scripts/reproduce_q5.sh --smoke --jobs 2          # two runs at a time, logs in runs/smoke/logs/
#
# GMB_CSV defaults to data/ner_dataset.csv and GLOVE to data/glove.6B.50d.gmb.txt, the layout and
# the GloVe file of the runs in results/ (make it with scripts/make_glove_subset.py from glove.6B.50d.txt;
# the full file, or another dimension, works too: GLOVE=data/glove.6B.100d.txt).
# Report 2 (MULTICONER_DIR set): en/hi/bn x fine/coarse, embedding + forward LSTM + linear,
# sizes 520, 10 epochs, batch 35, sentences cut to 25 tokens, Adam lr 0.001; a departure to fit a
# CPU, training stops after one epoch without a better validation F1 (validation is a held-out
# tenth of the training file, so the stop never looks at the scored split). MultiCoNER's test labels
# are released separately: without <lang>_test.conll the dev file is scored as the test split.
# Extra flags are passed to every run (e.g. --device cuda, --seed 1, --epochs 20).
source "$(dirname "$0")/_env.sh"

parse_reproduce_args "$@"
GMB_CSV="${GMB_CSV:-data/ner_dataset.csv}"
GLOVE="${GLOVE:-data/glove.6B.50d.gmb.txt}"

if [[ ${#SMOKE[@]} -gt 0 ]]; then
    DATA=()
    GLOVE_FLAGS=(--embeddings glove)   # --smoke builds its own small GloVe-format file
else
    DATA=(--data-path "$GMB_CSV")
    GLOVE_FLAGS=(--embeddings glove --glove "$GLOVE")
fi

# One row of report 1's table per run, in both training recipes: the report's SGD and Adam with
# early stopping on validation F1 (q5_ner_crf/train.py --recipe).
run_gmb() {  # run_gmb RECIPE NAME FLAGS...
    local recipe="$1" name="$2"
    shift 2
    submit "q5-gmb-$recipe-$name" python -m q5_ner_crf.train --dataset gmb --recipe "$recipe" \
        ${DATA[@]+"${DATA[@]}"} "$@" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" ${EXTRA[@]+"${EXTRA[@]}"}
}
for recipe in report modern; do
    run_gmb "$recipe" random                  --embeddings random
    run_gmb "$recipe" glove                   "${GLOVE_FLAGS[@]}"
    run_gmb "$recipe" glove-char              "${GLOVE_FLAGS[@]}" --char
    run_gmb "$recipe" glove-char-ln-hidden    "${GLOVE_FLAGS[@]}" --char --layer-norm hidden  # the report's
    run_gmb "$recipe" glove-char-ln-gates     "${GLOVE_FLAGS[@]}" --char --layer-norm gates   # Ba et al.
    run_gmb "$recipe" random-crf              --embeddings random --crf
    run_gmb "$recipe" glove-char-ln-gates-crf "${GLOVE_FLAGS[@]}" --char --layer-norm gates --crf
done
# The headline row, the best of report 1's rows on validation micro-F1 in results/q5.md, runs two
# more seeds so that its spread is measured, not assumed (not under --smoke, nor when the extra
# flags set --seed for every run).
if [[ ${#SMOKE[@]} -eq 0 && " ${EXTRA[*]-} " != *" --seed"* ]]; then
    for seed in 1 2; do
        run_gmb modern "glove-char-ln-gates-crf-seed$seed" "${GLOVE_FLAGS[@]}" --char --layer-norm gates \
            --crf --seed "$seed"
    done
fi
# The headline row in the `literature` recipe (CoNLL-2003's below), three seeds (one under --smoke
# or when the extra flags set --seed): its own table in reports/q5.md, judged against 0.855.
LITERATURE_SEEDS=(0 1 2)
[[ ${#SMOKE[@]} -gt 0 || " ${EXTRA[*]-} " == *" --seed"* ]] && LITERATURE_SEEDS=(0)
for seed in "${LITERATURE_SEEDS[@]}"; do
    seed_flag=(--seed "$seed")
    [[ " ${EXTRA[*]-} " == *" --seed"* ]] && seed_flag=()
    run_gmb literature "glove-char-ln-gates-crf-seed$seed" "${GLOVE_FLAGS[@]}" --char --layer-norm gates --crf \
        ${seed_flag[@]+"${seed_flag[@]}"}
done

# CoNLL-2003 on gold labels, the `literature` recipe (q5_ner_crf/train.py --recipe; README,
# "Training recipes"): GloVe + characters + CRF over three seeds, then the ablation on validation,
# each row the recipe with one of its changes undone, and the recipe with all of them undone.
# CONLL_DIR (default data/conll2003: train.txt, valid.txt, test.txt) and GLOVE_CONLL (default
# data/glove.6B.50d.conll2003-gmb.txt, the GloVe rows of the CoNLL and GMB words).
CONLL_DIR="${CONLL_DIR:-data/conll2003}"
GLOVE_CONLL="${GLOVE_CONLL:-data/glove.6B.50d.conll2003-gmb.txt}"
if [[ ${#SMOKE[@]} -gt 0 ]]; then
    CONLL=(--dataset conll2003 --embeddings glove --char --crf)
    PREFIX=smoke-
else
    CONLL=(--dataset conll2003 --data-path "$CONLL_DIR" --embeddings glove --glove "$GLOVE_CONLL" --char --crf)
    PREFIX=""
fi
# Run names put the recipe first (conll2003-literature-...), so that Q1's report, which takes the
# first gold-label GloVe + characters + CRF run by name, keeps the modern-recipe run Q1 made.
run_conll() {  # run_conll NAME SEED FLAGS...
    local name="$1" seed="$2"
    shift 2
    submit "q5-conll2003-$name" python -m q5_ner_crf.train "${CONLL[@]}" --recipe literature --seed "$seed" "$@" \
        ${SMOKE[@]+"${SMOKE[@]}"} --run-name "${PREFIX}conll2003-$name-glove-char-crf-seed$seed" --out-dir "$RUNS" \
        ${EXTRA[@]+"${EXTRA[@]}"}
}
run_conll literature 0
run_conll literature-no-casing 0 --no-casing
if [[ ${#SMOKE[@]} -eq 0 ]]; then
    run_conll literature 1
    run_conll literature 2
    run_conll literature-none 0 --no-casing --no-iobes --no-locked-dropout --clip-norm 5
    run_conll literature-no-iobes 0 --no-iobes
    run_conll literature-no-locked-dropout 0 --no-locked-dropout
    run_conll literature-clip5 0 --clip-norm 5
fi

# Report 2: only with real MultiCoNER II files (or, under --smoke, one built-in pair to render the table).
if [[ -n "${MULTICONER_DIR:-}" ]]; then
    LANGS=(en hi bn)
    MULTI=(--data-path "$MULTICONER_DIR" --unidirectional --embed-dim 520 --hidden 520 --epochs 10
           --batch-size 35 --max-len 25 --optimizer adam --lr 0.001 --weight-decay 0 --clip-norm 0
           --patience 1)
elif [[ ${#SMOKE[@]} -gt 0 ]]; then
    LANGS=(en)
    MULTI=(--unidirectional --max-len 25 --optimizer adam --weight-decay 0 --clip-norm 0)
else
    LANGS=()
    echo "== MULTICONER_DIR not set: skipping report 2 (MultiCoNER II)"
fi
for lang in ${LANGS[@]+"${LANGS[@]}"}; do
    for granularity in fine coarse; do
        submit "q5-multiconer-$lang-$granularity" python -m q5_ner_crf.train --dataset multiconer --lang "$lang" \
            --granularity "$granularity" "${MULTI[@]}" ${SMOKE[@]+"${SMOKE[@]}"} --out-dir "$RUNS" \
            ${EXTRA[@]+"${EXTRA[@]}"}
    done
done
wait_all

python -m q5_ner_crf.report --runs-dir "$RUNS" --out reports/q5.md
