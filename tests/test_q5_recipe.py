"""The literature recipe's pieces: IOBES tags and their way back to IOB2, the casing classes, locked
dropout, the recipe table and its flags, and a smoke run scored in IOB2."""

import pytest
import torch

from common.data.conll import iob1_to_iob2
from q5_ner_crf.data import CASING_CLASSES, NERDataset, build_vocabularies, casing_class, iob2_to_iobes, \
    iobes_to_iob2
from q5_ner_crf.model import LockedDropout
from q5_ner_crf.train import main, parse_args, predict

# (IOB2, IOBES) written by hand: single-token entities, adjacent entities of one type, an entity
# at the end, types changing without an O between them.
IOB2_IOBES = [
    (["O"], ["O"]),
    (["B-PER"], ["S-PER"]),
    (["B-PER", "I-PER", "I-PER"], ["B-PER", "I-PER", "E-PER"]),
    (["B-LOC", "B-LOC", "I-LOC", "O", "B-ORG"], ["S-LOC", "B-LOC", "E-LOC", "O", "S-ORG"]),
    (["B-ORG", "I-ORG", "B-PER", "I-PER", "B-MISC"], ["B-ORG", "E-ORG", "B-PER", "E-PER", "S-MISC"]),
    (["O", "B-MISC", "I-MISC", "O", "B-PER", "I-PER"], ["O", "B-MISC", "E-MISC", "O", "B-PER", "E-PER"]),
]


@pytest.mark.parametrize("iob2, iobes", IOB2_IOBES)
def test_iob2_to_iobes_and_back_on_hand_made_sequences(iob2, iobes):
    assert iob2_to_iobes(iob2) == iobes
    assert iobes_to_iob2(iobes) == iob2


def test_iob1_input_goes_through_iob2_to_iobes_and_back():
    # IOB1 (the original CoNLL-2003 files): I- opens an entity, B- only between two of one type.
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-MISC", "I-MISC"]
    iob2 = iob1_to_iob2(iob1)
    assert iob2 == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "B-MISC", "I-MISC"]
    assert iob2_to_iobes(iob2) == ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "S-ORG", "B-MISC", "E-MISC"]
    assert iobes_to_iob2(iob2_to_iobes(iob2)) == iob2


def test_invalid_predicted_iobes_maps_to_invalid_iob2_tag_by_tag():
    # A tagger can predict E-X after O, or I-X then O; strict IOB2 scoring counts neither as an entity.
    assert iobes_to_iob2(["O", "E-PER", "B-LOC", "I-LOC", "O"]) == ["O", "I-PER", "B-LOC", "I-LOC", "O"]


# Reimers & Gurevych's order decides: lower-case letters with a few digits are "lower" ("3rd").
@pytest.mark.parametrize("token, name", [
    ("1996", "numeric"), ("1996-08-30", "mainly_numeric"), ("3:2", "mainly_numeric"),
    ("the", "lower"), ("3rd", "lower"), ("U.S.", "upper"), ("EU", "upper"), ("Germany", "initial_upper"),
    ("McDonald", "initial_upper"), ("iPhone", "mixed"), ("eBay", "mixed"), ("a1-b2-c", "lower"),
    ("+1-", "contains_digit"),
    (",", "other"), ("-DOCSTART-", "upper"), ("(", "other"),
])
def test_casing_class_of_hand_written_tokens(token, name):
    assert CASING_CLASSES[casing_class(token)] == name


def test_batches_carry_casing_classes_with_zero_at_padding():
    from common.data.conll import Sentence
    sentences = [Sentence(["Peter", "lives", "in", "the", "USA"], ["B-PER", "O", "O", "O", "B-LOC"]),
                 Sentence(["1996", "iPhone"], ["O", "B-MISC"])]
    words, chars = build_vocabularies({"train": sentences})
    batch = NERDataset(sentences, words, chars, ["O", "B-LOC", "B-MISC", "B-PER"]).batch([0, 1])
    name = {n: i for i, n in enumerate(CASING_CLASSES)}
    assert batch.casing.tolist() == [
        [name["initial_upper"], name["lower"], name["lower"], name["lower"], name["upper"]],
        [name["numeric"], name["mixed"], 0, 0, 0]]


def test_locked_dropout_shares_one_mask_over_time_steps():
    torch.manual_seed(0)
    dropout = LockedDropout(0.5)
    out = dropout(torch.ones(4, 7, 64))
    # Every (sentence, feature) is dropped or kept at every time step alike, kept ones scaled by 2.
    assert torch.equal(out, out[:, :1, :].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    # Different sentences get different masks; about half the units are dropped.
    assert not torch.equal(out[0], out[1])
    assert 0.35 < (out[:, 0] == 0).float().mean().item() < 0.65
    dropout.eval()
    x = torch.randn(2, 3, 5)
    assert torch.equal(dropout(x), x)


def test_recipes_fill_their_settings_and_flags_override_one_at_a_time():
    literature = parse_args(["--recipe", "literature"])
    assert (literature.casing, literature.iobes, literature.locked_dropout) == (True, True, True)
    assert ((literature.clip_norm, literature.epochs, literature.patience, literature.optimizer)
            == (1.0, 30, 4, "adam"))
    modern = parse_args(["--recipe", "modern"])
    assert ((modern.casing, modern.iobes, modern.locked_dropout, modern.clip_norm)
            == (False, False, False, 5.0))
    undone = parse_args(["--recipe", "literature", "--no-casing", "--clip-norm", "5"])
    assert (undone.casing, undone.iobes, undone.locked_dropout, undone.clip_norm) == (False, True, True, 5.0)
    assert parse_args(["--recipe", "modern", "--iobes"]).iobes is True


def test_literature_smoke_run_trains_on_iobes_and_is_scored_in_iob2(tmp_path):
    summary = main(["--smoke", "--wandb-mode", "disabled", "--out-dir", str(tmp_path),
                    "--dataset", "conll2003", "--recipe", "literature", "--embeddings", "glove", "--char",
                    "--crf"])
    assert summary["iobes"] and summary["casing"] and summary["locked_dropout"]
    assert summary["test_f1"] > 0.5
    # Scored per CoNLL type, never per IOBES prefix.
    assert set(summary["per_class"]["test"]) == {"LOC", "MISC", "ORG", "PER"}
    from q5_ner_crf.predict import load_tagger, tag_sentences
    model, words, chars, tags = load_tagger(tmp_path / "q5_ner_crf"
                                            / "smoke-conll2003-glove-char-crf-literature-seed0")
    assert any(tag.startswith(("S-", "E-")) for tag in tags)  # the model's tags are IOBES
    predicted = tag_sentences(model, words, chars, tags, [["John", "Smith", "visited", "Paris", "."]])
    assert all(not tag.startswith(("S-", "E-")) for tag in predicted[0])  # its answers IOB2


def test_predict_turns_iobes_tag_ids_into_iob2():
    from common.data.conll import Sentence

    class Fixed:
        def eval(self):
            return self

        def emissions(self, batch):
            return batch.tags  # the gold IOBES ids, as a perfect tagger would predict them

        def loss_from_emissions(self, emissions, batch):
            return torch.tensor(0.0)

        def predict_from_emissions(self, emissions, mask):
            return emissions

    iobes = ["S-LOC", "O", "B-PER", "I-PER", "E-PER"]
    sentence = Sentence([f"w{i}" for i in range(5)], iobes)
    words, chars = build_vocabularies({"train": [sentence]})
    dataset = NERDataset([sentence], words, chars, ["O", "S-LOC", "B-PER", "I-PER", "E-PER"])
    predicted, _ = predict(Fixed(), dataset, 4, torch.device("cpu"))
    assert predicted == [["B-LOC", "O", "B-PER", "I-PER", "I-PER"]]
