"""End-to-end runs of q5_ner_crf/train.py, in-process: every variant learns the built-in corpus,
--resume gives the same numbers, the real-file path (GMB csv + GloVe file), MultiCoNER, errors."""

import csv
import json

import pytest
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from common.data.conll import builtin_conll_splits, builtin_ner_corpus
from q5_ner_crf.data import split_sentences
from q5_ner_crf.train import SMOKE_SIZES, main

VARIANTS = {
    "random": [],
    "glove": ["--embeddings", "glove"],
    "glove-char": ["--embeddings", "glove", "--char"],
    "glove-char-ln": ["--embeddings", "glove", "--char", "--layer-norm"],
    "random-crf": ["--crf"],
    "glove-char-ln-crf": ["--embeddings", "glove", "--char", "--layer-norm", "--crf"],
}



def run(tmp_path, *flags):
    return main(["--smoke", "--wandb-mode", "disabled", "--out-dir", str(tmp_path), *flags])


def test_all_o_baseline_on_the_builtin_test_split():
    """The baseline the variants must beat: tagging every token O finds no entity (F1 0) and
    gets the share of O tokens right."""
    test = builtin_conll_splits(seed=0, sizes=SMOKE_SIZES, tagset="gmb")["test"]
    gold = [s.ner for s in test]
    assert f1_score(gold, [["O"] * len(t) for t in gold], mode="strict", scheme=IOB2) == 0.0
    share_o = sum(t == "O" for tags in gold for t in tags) / sum(len(t) for t in gold)
    assert 0.5 < share_o < 0.75


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_beats_the_all_o_baseline(tmp_path, variant):
    summary = run(tmp_path, *VARIANTS[variant])
    assert summary["test_f1"] > 0.3, summary["test_f1"]  # the all-O tagger scores 0
    assert summary["test_token_accuracy"] > 0.75         # the all-O tagger: about 0.64
    assert summary["crf"] == ("crf" in variant) and summary["char"] == ("char" in variant)
    run_dir = tmp_path / "q5_ner_crf" / f"smoke-gmb-{variant}-report-seed0"
    assert json.loads((run_dir / "summary.json").read_text())["test_f1"] == summary["test_f1"]
    with open(run_dir / "tables" / "per_class_test.csv") as handle:
        types = {row["type"] for row in csv.DictReader(handle)}
    assert types == {"art", "eve", "geo", "gpe", "nat", "org", "per", "tim"}
    if variant.startswith("glove"):
        assert 0.5 < summary["glove_coverage"] <= 1.0 and summary["embed_dim"] == 50


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path):
    flags = ["--crf", "--char", "--epochs", "2"]
    straight = run(tmp_path, *flags, "--run-name", "straight")
    run(tmp_path, "--crf", "--char", "--epochs", "1", "--run-name", "resumed")
    resumed = run(tmp_path, *flags, "--run-name", "resumed", "--resume")
    for key in ("test_f1", "val_f1", "train_loss", "test_loss", "best_epoch"):
        assert resumed.get(key) == straight.get(key), key
    lines = (tmp_path / "q5_ner_crf" / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    with pytest.raises(SystemExit) as error:  # a checkpoint from other flags is not resumed
        run(tmp_path, "--epochs", "2", "--run-name", "resumed", "--resume")
    assert error.value.code == 1


def _write_gmb_csv(path, sentences):
    with open(path, "w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Sentence #", "Word", "POS", "Tag"])
        for number, sentence in enumerate(sentences, start=1):
            for index, (token, pos, tag) in enumerate(zip(sentence.tokens, sentence.pos, sentence.ner)):
                writer.writerow([f"Sentence: {number}" if index == 0 else "", token, pos, tag])


def test_real_files_gmb_csv_and_glove(tmp_path, capsys):
    """The non-smoke path: a Kaggle-format GMB csv and a GloVe file (3-d, a known word list)."""
    sentences = builtin_ner_corpus(60, tagset="gmb", seed=5)
    csv_path = tmp_path / "ner_dataset.csv"
    _write_gmb_csv(csv_path, sentences)
    known = {"the", "in", "said", "london", "paris", "monday", "."}
    glove_path = tmp_path / "glove.3d.txt"
    glove_path.write_text("".join(f"{w} 0.1 -0.2 0.3\n" for w in sorted(known)), encoding="utf-8")
    summary = main(["--data-path", str(csv_path), "--embeddings", "glove", "--glove", str(glove_path),
                    "--epochs", "1", "--hidden", "8", "--wandb-mode", "disabled", "--out-dir", str(tmp_path)])
    assert summary["embed_dim"] == 3 and not summary["smoke"]
    assert summary["train_sentences"] + summary["val_sentences"] + summary["test_sentences"] == 60
    assert summary["train_sentences"] == 36  # 60/20/20
    # coverage by hand: the training words, plus other words that have a vector, looked up lower-cased
    config = json.loads((tmp_path / "q5_ner_crf" / "gmb-glove-report-seed0" / "config.json").read_text())
    assert config["dataset"] == "gmb"
    train_words = {t for s in split_sentences(sentences, seed=0)["train"] for t in s.tokens}
    all_words = {t for s in sentences for t in s.tokens}
    vocab = train_words | {w for w in all_words if w.lower() in known}
    found = sum(w.lower() in known for w in vocab)
    assert summary["glove_words_found"] == found and summary["glove_vocab_size"] == len(vocab)
    assert "GloVe" in capsys.readouterr().out


def test_multiconer_smoke_with_truncation_and_padding_accuracy(tmp_path):
    summary = run(tmp_path, "--dataset", "multiconer", "--granularity", "coarse", "--unidirectional",
                  "--max-len", "8")
    assert set(summary["per_class"]["test"]) <= {"LOC", "CW", "GRP", "PER", "PROD", "MED"}
    assert summary["test_f1"] > 0.2
    # padding counted as correct can only raise the figure (report 2's measure)
    assert summary["test_token_accuracy_with_padding"] > summary["test_token_accuracy"]
    run_dir = tmp_path / "q5_ner_crf" / "smoke-multiconer-en-coarse-random-uni-report-seed0"
    assert (run_dir / "smoke-data" / "en_train.conll").is_file()


def test_bad_arguments_and_missing_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        main(["--embeddings", "glove", "--out-dir", str(tmp_path)])
    assert error.value.code == 2 and "--glove PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        main(["--data-path", str(tmp_path / "missing.csv"), "--wandb-mode", "disabled",
              "--out-dir", str(tmp_path)])
    assert error.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing.csv" in err[0]
