"""q5_ner_crf/train.py: strict-IOB2 entity scores and the token-level report on hand-made
predictions; end-to-end runs in-process: every variant learns the built-in corpus, --resume gives
the same numbers, the real-file path (GMB csv + GloVe file), MultiCoNER, errors."""

import argparse
import csv
import json

import pytest
import torch
from common.data.conll import Sentence, builtin_ner_corpus
from q5_ner_crf.data import NERDataset, build_vocabularies, split_sentences
from q5_ner_crf.train import evaluate, main, token_report

VARIANTS = {
    "random": [],
    "glove": ["--embeddings", "glove"],
    "glove-char": ["--embeddings", "glove", "--char"],
    "glove-char-ln-hidden": ["--embeddings", "glove", "--char", "--layer-norm", "hidden"],
    "glove-char-ln-gates": ["--embeddings", "glove", "--char", "--layer-norm"],  # a bare flag: Ba et al.'s
    "random-crf": ["--crf"],
    "glove-char-ln-gates-crf": ["--embeddings", "glove", "--char", "--layer-norm", "gates", "--crf"],
}


def run(tmp_path, *flags):
    return main(["--smoke", "--wandb-mode", "disabled", "--out-dir", str(tmp_path), *flags])


# ---- scoring on hand-made predictions ----

class FixedTagger:
    """Stands in for a Tagger: predicts the given tag sequence for each sentence of the dataset."""

    def __init__(self, dataset: NERDataset, predicted: list[list[str]]):
        ids = {tag: index for index, tag in enumerate(dataset.tag_names)}
        self.predicted = [[ids[tag] for tag in tags] for tags in predicted]

    def eval(self):
        return self

    def emissions(self, batch):
        rows = torch.zeros(batch.mask.shape, dtype=torch.long)
        for row, index in enumerate(batch.indices):
            rows[row, :len(self.predicted[index])] = torch.tensor(self.predicted[index])
        return rows

    def loss_from_emissions(self, emissions, batch):
        return torch.tensor(0.0)

    def predict_from_emissions(self, emissions, mask):
        return emissions


def test_evaluate_scores_entities_in_strict_iob2_not_lenient_mode():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O"], ["O", "O"]]
    predicted = [["I-PER", "I-PER", "O"], ["B-LOC", "O"], ["O", "I-ORG"]]
    # Gold entities: PER (tokens 0-1 of sentence 1) and LOC (sentence 2).
    # Strict IOB2: an entity starts only at B-, so the only predicted entity is LOC, and it is
    #   right: P = 1/1, R = 1/2, F1 = 2/3; per type PER 0/0/0, LOC 1/1/1, macro F1 = 1/2.
    # Lenient (conlleval) would read I-PER I-PER as PER (right) and I-ORG as ORG (wrong):
    #   P = 2/3, R = 1, F1 = 0.8.
    # Tokens: 2 + 2 + 1 of 7 right.
    sentences = [Sentence(tokens=[f"w{i}" for i in range(len(tags))], ner=tags) for tags in gold]
    words, chars = build_vocabularies({"train": sentences})
    dataset = NERDataset(sentences, words, chars, ["O", "B-LOC", "I-ORG", "B-PER", "I-PER"])
    args = argparse.Namespace(eval_batch_size=2, max_len=0)
    result = evaluate(FixedTagger(dataset, predicted), dataset, args, torch.device("cpu"))
    assert (result["precision"], result["recall"]) == (1.0, 0.5)
    assert result["f1"] == pytest.approx(2 / 3) and result["macro_f1"] == pytest.approx(0.5)
    assert result["per_class"] == {
        "LOC": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
        "PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}
    assert result["token_accuracy"] == pytest.approx(5 / 7) and result["tokens"] == 7


def test_token_report_by_hand_with_and_without_padding():
    gold = [["B-PER", "I-PER", "O"], ["O"]]
    predicted = [["B-PER", "O", "O"], ["B-PER"]]
    # Per tag (precision, recall, F1, support):
    #   B-PER: predicted twice, right once (1/2, 1, 2/3, 1); I-PER: never predicted (0, 0, 0, 1);
    #   O: predicted twice, right once (1/2, 1/2, 1/2, 2). Accuracy 2/4.
    report = token_report(gold, predicted)
    expected = {"accuracy": 0.5, "support": 4,
                "macro_precision": 1 / 3, "macro_recall": 1 / 2, "macro_f1": (2 / 3 + 1 / 2) / 3,
                "weighted_precision": (1 / 2 + 2 * 1 / 2) / 4, "weighted_recall": (1 + 2 * 1 / 2) / 4,
                "weighted_f1": (2 / 3 + 2 * 1 / 2) / 4}
    assert report == pytest.approx(expected)
    # Padded to 4 tokens: 1 + 3 <pad> tags, all right (1, 1, 1, 4). Accuracy 6/8.
    padded = token_report(gold, predicted, pad_to=4)
    expected = {"accuracy": 6 / 8, "support": 8,
                "macro_precision": (1 / 2 + 1 / 2 + 1) / 4, "macro_recall": (1 + 1 / 2 + 1) / 4,
                "macro_f1": (2 / 3 + 1 / 2 + 1) / 4,
                "weighted_precision": (1 / 2 + 2 * 1 / 2 + 4) / 8, "weighted_recall": (1 + 2 * 1 / 2 + 4) / 8,
                "weighted_f1": (2 / 3 + 2 * 1 / 2 + 4) / 8}
    assert padded == pytest.approx(expected)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_beats_the_all_o_baseline(tmp_path, variant):
    summary = run(tmp_path, *VARIANTS[variant])
    assert summary["test_f1"] > 0.3, summary["test_f1"]  # the all-O tagger scores 0
    assert summary["test_token_accuracy"] > 0.75         # the all-O tagger: about 0.64
    assert summary["crf"] == ("crf" in variant) and summary["char"] == ("char" in variant)
    assert summary["layer_norm"] == next((kind for kind in ("hidden", "gates") if kind in variant), "none")
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


def test_a_training_file_with_a_tag_the_scored_splits_do_not_use_is_one_line_error(tmp_path, capsys):
    labels = tmp_path / "labels" / "train.txt"
    labels.parent.mkdir()
    labels.write_text("John B-PER\nSmith I-PER\nvisited O\nAcme B-XYZ\n\nParis B-LOC\n", encoding="utf-8")
    with pytest.raises(SystemExit) as error:
        run(tmp_path, "--dataset", "conll2003", "--train-file", str(labels))
    assert error.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == (f"error: {labels}: tag B-XYZ is not used by the validation and test splits; "
                      "expected one of O B-LOC I-LOC B-MISC I-MISC B-ORG I-ORG B-PER I-PER")
    # The same file with only the scored types gets past the check (and trains).
    labels.write_text(labels.read_text().replace("B-XYZ", "B-ORG"), encoding="utf-8")
    summary = run(tmp_path, "--dataset", "conll2003", "--train-file", str(labels), "--epochs", "1")
    assert summary["train_file"] == str(labels)
