"""q5_ner_crf/train.py --train-file and --validation-file (the hand-off from Q1's weak labels):
the tagger learns the file's labels, not the dataset's; selection on the file with the gold split
scored beside it; missing files are a one-line usage error. The built-in corpus in CoNLL-2003 tags
(--smoke --dataset conll2003) stands in for the real files."""

import json

import pytest
import torch

from common.data.conll import Sentence, builtin_conll_splits
from common.errors import DataError
from q5_ner_crf.data import NERDataset, build_vocabularies, tag_names
from q5_ner_crf.model import Tagger
from q5_ner_crf.train import SMOKE_SIZES, main, unlabelled_tag_mask

FLAGS = ["--smoke", "--dataset", "conll2003", "--threads", "1", "--wandb-mode", "disabled"]


def write_conll(path, sentences):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{t} {tag}\n" for t, tag in zip(s.tokens, s.ner)) + "\n"
                            for s in sentences))
    return path


def all_o(sentences):
    return [Sentence(tokens=s.tokens, ner=["O"] * len(s)) for s in sentences]


SPLITS = builtin_conll_splits(seed=0, sizes=SMOKE_SIZES)


def test_the_tagger_learns_the_files_labels_not_the_datasets(tmp_path):
    gold = main([*FLAGS, "--out-dir", str(tmp_path)])
    assert gold["test_f1"] > 0.3 and gold["train_file"] is None
    # The same sentences with every tag O: nothing to learn, so no entity is ever predicted.
    blank = write_conll(tmp_path / "blank" / "train.txt", all_o(SPLITS["train"]))
    summary = main([*FLAGS, "--train-file", str(blank), "--out-dir", str(tmp_path)])
    assert summary["train_file"] == str(blank)
    assert summary["train_tokens"] == sum(len(s) for s in SPLITS["train"])
    assert summary["test_precision"] == summary["test_recall"] == summary["test_f1"] == 0.0
    assert (tmp_path / "q5_ner_crf" / "smoke-conll2003-blank-labels-random-report-seed0"
            / "summary.json").is_file()


def test_selection_on_a_file_and_on_the_gold_split_from_one_run(tmp_path):
    # Dev labels all O: the file's F1 is 0 at every epoch, so the file selects epoch 1 (the first
    # that beats no checkpoint); the gold dev split selects its own best epoch.
    dev = write_conll(tmp_path / "dev.txt", all_o(SPLITS["validation"]))
    summary = main([*FLAGS, "--epochs", "4", "--validation-file", str(dev), "--out-dir", str(tmp_path)])
    assert summary["best_epoch"] == 1 and summary["val_f1"] == 0.0
    run_dir = tmp_path / "q5_ner_crf" / "smoke-conll2003-random-report-seed0"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    gold_f1 = {r["epoch"]: r["val_gold_f1"] for r in records if "val_gold_f1" in r}
    assert sorted(gold_f1) == [1, 2, 3, 4]
    best = max(gold_f1, key=lambda epoch: (gold_f1[epoch], -epoch))  # the first of equal ones
    chosen = summary["gold_selection"]
    assert chosen["best_epoch"] == best and chosen["val_gold_f1"] == pytest.approx(gold_f1[best])
    assert chosen["test_f1"] > 0.3  # the gold-selected checkpoint is a working tagger
    assert (run_dir / "checkpoints" / "best-gold.pt").is_file()
    # The gold split is also scored with the file-selected checkpoint (epoch 1).
    assert summary["val_gold_f1"] == pytest.approx(gold_f1[1])


@pytest.mark.parametrize("flag", ["--train-file", "--validation-file"])
def test_a_missing_file_is_a_one_line_usage_error(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as error:
        main([*FLAGS, flag, str(tmp_path / "nope.txt"), "--out-dir", str(tmp_path)])
    assert error.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "nope.txt" in err[-1] and flag in err[-1]
    assert not (tmp_path / "q5_ner_crf").exists()


@pytest.mark.parametrize("crf", [False, True])
def test_unlabelled_tokens_add_nothing_to_the_loss(tmp_path, crf):
    # Every token of the file unlabelled: the CRF sums over every path (likelihood 1) and softmax
    # ignores every token, so the training loss is 0 and nothing is learnt: no entity predicted.
    unknown = [Sentence(tokens=s.tokens, ner=["-"] * len(s)) for s in SPLITS["train"]]
    path = write_conll(tmp_path / "unknown" / "train.txt", unknown)
    flags = [*FLAGS, "--epochs", "2", "--train-file", str(path), "--out-dir", str(tmp_path)]
    summary = main(flags + (["--crf"] if crf else []))
    assert summary["train_unlabelled_tokens"] == sum(len(s) for s in SPLITS["train"])
    assert summary["train_loss"] == pytest.approx(0.0, abs=1e-6)
    assert summary["train_f1"] == 0.0  # scored as O against the file's labels
    # Half the sentences fully labelled, the rest unlabelled: the tagger learns from the labelled half.
    half = [gold if i % 2 else blank for i, (gold, blank) in enumerate(zip(SPLITS["train"], unknown))]
    summary = main([*FLAGS, "--epochs", "4", "--crf", "--train-file",
                    str(write_conll(tmp_path / "half" / "train.txt", half)), "--out-dir", str(tmp_path)])
    assert summary["test_f1"] > 0.3


def test_unlabelled_tag_mask_keeps_o_and_every_tag_of_the_types():
    tags = ["O", "B-LOC", "I-LOC", "S-MISC", "E-MISC", "B-PER", "I-PER"]
    assert unlabelled_tag_mask("LOC, MISC", tags).tolist() == [True, True, True, True, True, False, False]
    with pytest.raises(DataError,
                       match="XYZ is not an entity type of this data; expected some of LOC,MISC,PER"):
        unlabelled_tag_mask("LOC,XYZ", tags)


def test_softmax_loss_of_an_unlabelled_token_is_minus_log_of_its_allowed_tags_probability():
    torch.manual_seed(0)
    sentences = [Sentence(["a", "b", "c"], ["B-x", "-", "O"]), Sentence(["b"], ["-"])]
    splits = {"train": sentences, "validation": [], "test": []}
    words, chars = build_vocabularies(splits)
    tags = tag_names(splits) + ["B-y"]      # O, B-x, B-y
    batch = NERDataset(sentences, words, chars, tags).batch([0, 1])
    model = Tagger(len(words), len(tags), len(chars), embed_dim=4, hidden_size=3, use_char=True).eval()
    emissions = model.emissions(batch)
    p = emissions.softmax(2)
    known = -(p[0, 0, 1].log() + p[0, 2, 0].log())
    assert model.loss_from_emissions(emissions, batch).item() == pytest.approx(known.item() / 2, rel=1e-5)
    model.unlabelled_tags = torch.tensor([True, False, True])     # O or B-y
    free = -((p[0, 1, 0] + p[0, 1, 2]).log() + (p[1, 0, 0] + p[1, 0, 2]).log())
    expected = (known + free).item() / 2
    assert model.loss_from_emissions(emissions, batch).item() == pytest.approx(expected, rel=1e-5)


def test_unlabelled_types_needs_a_train_file(capsys):
    with pytest.raises(SystemExit) as caught:
        main([*FLAGS, "--unlabelled-types", "ORG"])
    assert caught.value.code == 2 and "--unlabelled-types needs --train-file" in capsys.readouterr().err
