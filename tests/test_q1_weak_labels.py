"""Q1's weak labels and the chain to a tagger: the weakly labelled files of a tiny IOB1 folder
against hand-derived votes, their scores against seqeval on the files read back, the one-line
errors, and scripts/reproduce_q1.sh --smoke from labeling functions to a tagger trained on the
written file."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2

from common.data.conll import read_conll
from q1_weak_supervision import weak_labels
from tests.test_q1_scripts import conll_dir  # noqa: F401  (the tiny IOB1 folder fixture)

REPO = Path(__file__).resolve().parent.parent
COMMON = ["--wandb-mode", "disabled"]

# The majority vote on the tiny training file, worked out LF by LF:
#   LONDON 1996-08-30          lf_dateline -> LOC
#   Acme Corp. ...             lf_company_suffix -> ORG ORG (lf_org_suffix is not aggregated)
#   Globex Inc. rose .         lf_company_suffix -> ORG ORG
#   The 1899 ... , Inc .       `Inc` after a comma has no name before it: nothing
#   German exports ...         lf_nationality -> MISC (years are not aggregated)
#   Peter Blackburn            Blackburn is a city, so neither name LF fires: nothing
#   Germany France             one run of two countries is no single country: nothing
MAJORITY_TRAIN = """LONDON B-LOC
1996-08-30 O

Acme B-ORG
Corp. I-ORG
was O
founded O
in O
1990 O
. O

Globex B-ORG
Inc. I-ORG
rose O
. O

"""


def test_weak_label_files_and_scores_on_hand_counts(conll_dir, tmp_path):  # noqa: F811
    summary = weak_labels.main(["--conll-dir", str(conll_dir), *COMMON, "--out-dir", str(tmp_path),
                                "--label-model-epochs", "50"])
    labels = tmp_path / "q1_weak_supervision" / "weak-labels-conll-dir" / "labels"
    text = (labels / "majority" / "train.txt").read_text()
    assert text.startswith(MAJORITY_TRAIN)
    assert "German B-MISC\n" in text and "Peter O\nBlackburn O\n" in text
    # 4 predicted entities, all right, of 7 gold ones (LOC, ORG, ORG, MISC, PER, LOC, LOC).
    assert summary["weak/majority/train/entity_precision"] == 1.0
    assert summary["weak/majority/train/entity_recall"] == pytest.approx(4 / 7)
    # Dev: EU (acronym and one-word organisation) and German, both right.
    assert summary["weak/majority/validation/entity_f1"] == 1.0
    # Test: the BRUSSELS dateline right, Peter Blackburn missed.
    assert summary["weak/majority/test/entity_recall"] == pytest.approx(1 / 2)
    assert not (labels / "majority" / "test.txt").exists()  # only train and dev are written

    # No name repeats in a document and no person is named in full, so the document LFs add no
    # vote; lf_dateline_city adds a second LOC vote on LONDON: the same labels.
    assert (labels / "majority_doc" / "train.txt").read_text() == text
    # The ablation starts at the 17 LFs' majority vote and ends at the majority_doc labels.
    last = len(summary["ablation_steps"]) - 1
    for split in ("train", "validation", "test"):
        for key in ("entity_precision", "entity_recall", "entity_f1"):
            assert summary[f"ablation/0/{split}/{key}"] == summary[f"weak/majority/{split}/{key}"]
            assert summary[f"ablation/{last}/{split}/{key}"] == summary[f"weak/majority_doc/{split}/{key}"]
    # The partial file: majority_doc's labels, with the unvoted name-shaped tokens that are not
    # first in their sentence unlabelled: Blackburn and France (Inc after the comma is one of
    # scikit-learn's stop words). Both are gold entity tokens; of the four gold entity tokens
    # labelled O (Peter, Blackburn, Germany, France) they are two. Its dev file is majority_doc's.
    partial = (labels / "majority_doc_partial" / "train.txt").read_text()
    assert partial == text.replace("Blackburn O\n", "Blackburn -\n").replace("France O\n", "France -\n")
    assert summary["partial/train/unlabelled_tokens"] == 2
    assert summary["partial/train/unlabelled_gold_entity_share"] == 1.0
    assert summary["partial/train/missed_entity_tokens_unlabelled"] == pytest.approx(2 / 4)
    assert (labels / "majority_doc_partial" / "valid.txt").read_text() == \
        (labels / "majority_doc" / "valid.txt").read_text()
    # The files read back and scored by seqeval give the summary's figures, for every method,
    # and hold the same tokens as the gold files.
    for method in weak_labels.LABEL_METHODS:
        for split, name, gold_name in (("train", "train.txt", "train.txt"),
                                       ("validation", "valid.txt", "valid.txt")):
            weak = read_conll(labels / method / name, tag_scheme="iob2")
            gold = read_conll(conll_dir / gold_name)
            assert [s.tokens for s in weak] == [s.tokens for s in gold]
            y_true, y_pred = [s.ner for s in gold], [s.ner for s in weak]
            prefix = f"weak/{method}/{split}/entity_"
            for key, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
                assert summary[prefix + key] == pytest.approx(
                    score(y_true, y_pred, mode="strict", scheme=IOB2, zero_division=0))


@pytest.mark.parametrize("tokens, voted, expected", [
    # Unvoted capitalised words after the first: names the functions missed, unlabelled; function
    # words, months and the first token stay O; a voted token is not the partial file's business.
    (["Shares", "in", "Acme", "rose", "on", "Monday", "after", "The", "U.S.", "talks"],
     [0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
     [False, False, True, False, False, False, False, False, False, False]),
    (["Dutch", "coach", "Guus", "Hiddink", "said", "It", "was", "NATO", "'s", "fault"],
     [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
     [False, False, True, True, False, False, False, True, False, False]),
    # A headline in capitals: its case says nothing, nothing is unlabelled.
    (["SOCCER", "-", "JAPAN", "GET", "LUCKY", "WIN", ",", "1996"], [0] * 8, [False] * 8),
])
def test_name_shaped_unvoted_on_hand_made_sentences(tokens, voted, expected):
    assert weak_labels.name_shaped_unvoted(tokens, [bool(v) for v in voted]) == expected


def test_weak_labels_reject_keep_docstart(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        weak_labels.main(["--smoke", "--keep-docstart", *COMMON, "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--keep-docstart" in capsys.readouterr().err


def test_reproduce_q1_smoke_runs_the_chain_to_a_tagger(tmp_path):
    """The whole chain on the built-in corpus in a copy of the scripts folder (runs/ and reports/
    land in tmp_path): the Q1 runs, the weak label files, the tagger trained on the majority vote's
    file with the context and document LFs (1 epoch), one self-training round (that tagger tags
    the sentences, a student trains on the union), then reports/q1.md."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("_env.sh", "reproduce_q1.sh"):
        shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1", "TAGGERS": "majority_doc majority_doc_partial", "TAGGER_EPOCHS": "1",
           "SELF_TRAIN_ROUNDS": "1",
           "TAGGER_FLAGS": "--threads 1 --wandb-mode disabled"}
    proc = subprocess.run(["bash", str(root / "scripts" / "reproduce_q1.sh"), "--smoke", *COMMON],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = root / "runs" / "smoke"
    tagger = runs / "q5_ner_crf" / "smoke-conll2003-weak-majority-doc-glove-char-crf-literature-seed0"
    summary = json.loads((tagger / "summary.json").read_text())
    labels = runs / "q1_weak_supervision" / "smoke-weak-labels-builtin" / "labels" / "majority_doc"
    assert summary["train_file"] == str(Path("runs/smoke/q1_weak_supervision/smoke-weak-labels-builtin"
                                             "/labels/majority_doc/train.txt"))
    # The tagger saw the weak file's sentences, not gold ones: its training tokens are the file's.
    weak_train = read_conll(labels / "train.txt")
    assert summary["train_tokens"] == sum(len(s) for s in weak_train)
    assert summary["epochs_run"] == 1 and "gold_selection" in summary

    # Self-training: the student's file holds every weak entity (the union only adds), and the
    # student trained on it.
    round_dir = runs / "q1_weak_supervision" / "smoke-self-train-majority-doc-round1-literature-builtin"
    student_file = round_dir / "labels" / "self_train_round1" / "train.txt"
    student_train = read_conll(student_file, tag_scheme="iob2")
    assert [s.tokens for s in student_train] == [s.tokens for s in weak_train]
    for weak_sentence, student_sentence in zip(weak_train, student_train):
        for entity in get_entities(list(weak_sentence.ner)):
            assert entity in get_entities(list(student_sentence.ner))
    rounds = json.loads((round_dir / "summary.json").read_text())
    assert rounds["student/train/entities"] >= rounds["weak/train/entities"]
    student = json.loads((runs / "q5_ner_crf" / ("smoke-conll2003-weak-majority-doc-st1-glove-char-crf-"
                                                  "literature-seed0") / "summary.json").read_text())
    assert student["train_file"] == str(Path("runs/smoke/q1_weak_supervision/smoke-self-train-majority-doc-"
                                             "round1-literature-builtin/labels/self_train_round1/train.txt"))
    report = (root / "reports" / "q1.md").read_text()
    assert "## 5. From labeling functions to a tagger" in report
    assert ("| tagger on MajorityLabelVoter + context and document LFs labels | weak dev labels (no gold) "
            "| 1 / 1 / 1") in report
    assert "| tagger on self-training round 1 labels | weak dev labels (no gold) | 1 / 1 / 1" in report
    # The partial labels' tagger: trained on the file with unlabelled tokens, selected on the
    # majority_doc dev file, in the literature recipe's table.
    assert "### 5.2 The tagger trained on them: `literature` recipe" in report
    assert ("| tagger on MajorityLabelVoter + context and document LFs, unvoted names unlabelled (O or LOC, "
            "MISC, ORG) labels | weak dev labels (no gold) | 1 / 1 / 1") in report
    partial = json.loads((runs / "q5_ner_crf" / ("smoke-conll2003-weak-majority-doc-partial-LOC-MISC-ORG-"
                                                  "glove-char-crf-literature-seed0") / "summary.json").read_text())
    assert partial["unlabelled_types"] == "LOC,MISC,ORG"
    unlabelled = sum(line.endswith(" -") for line in
                     (labels.parent / "majority_doc_partial" / "train.txt").read_text().splitlines())
    assert partial["train_unlabelled_tokens"] == unlabelled > 0
    assert partial["validation_file"].endswith("majority_doc_partial/valid.txt")
    assert "| tagger on MajorityLabelVoter labels | not run |" in report
