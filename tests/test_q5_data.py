"""Readers (GMB csv through common.data.conll, MultiCoNER II), splits, vocabularies, batches and
the GloVe loader, on tiny files written by the tests; expected values counted by hand."""

import numpy as np
import pytest
import torch

from common.data.conll import Sentence
from common.errors import DataError
from q5_ner_crf.crf import UNLABELLED
from q5_ner_crf.data import (FINE_TO_COARSE, MULTICONER_COARSE_TYPES, UNLABELLED_TAG, NERDataset, Vocab,
                             build_vocabularies, coarse_tag, load_multiconer_dir, load_splits,
                             read_multiconer, split_sentences, tag_names, truncate)
from q5_ner_crf.embeddings import embedding_matrix, load_glove, wanted_words, write_smoke_glove

GMB_CSV = """Sentence #,Word,POS,Tag
Sentence: 1,Thousands,NNS,O
,of,IN,O
,London,NNP,B-geo
Sentence: 2,Iran,NNP,B-gpe
,said,VBD,O
Sentence: 3,Mr.,NNP,B-per
,Bush,NNP,I-per
,spoke,VBD,O
,Monday,NNP,B-tim
Sentence: 4,Hi,UH,O
Sentence: 5,The,DT,O
,UN,NNP,B-org
"""

MULTICONER = """# id 9a1b\tdomain=en
wes _ _ B-Artist
anderson _ _ I-Artist
's _ _ O
film _ _ O
the _ _ B-VisualWork
grand _ _ I-VisualWork
budapest _ _ I-VisualWork
hotel _ _ I-VisualWork

# id 7c2d\tdomain=en
aspirin _ _ B-Medication/Vaccine
and _ _ O
acme _ _ I-PrivateCorp
"""


def test_gmb_csv_seeded_sentence_split(tmp_path):
    path = tmp_path / "ner_dataset.csv"
    path.write_text(GMB_CSV, encoding="latin-1")
    splits, description = load_splits("gmb", str(path), "unused", smoke=False, seed=3,
                                      fractions=(0.6, 0.2, 0.2))
    assert "GMB" in description
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [3, 1, 1]  # 5 sentences
    all_tokens = sorted(tuple(s.tokens) for sentences in splits.values() for s in sentences)
    assert all_tokens == sorted([("Thousands", "of", "London"), ("Iran", "said"),
                                 ("Mr.", "Bush", "spoke", "Monday"), ("Hi",), ("The", "UN")])
    again, _ = load_splits("gmb", str(path), "unused", smoke=False, seed=3)
    assert again == splits
    bush = next(s for sentences in splits.values() for s in sentences if "Bush" in s.tokens)
    assert bush.ner == ["B-per", "I-per", "O", "B-tim"]
    with pytest.raises(DataError, match="ner_dataset.csv"):
        load_splits("gmb", None, str(tmp_path / "nowhere"), smoke=False, seed=0)


def test_split_sentences_is_a_seeded_partition():
    sentences = [Sentence([f"w{i}"], ["O"]) for i in range(100)]
    splits = split_sentences(sentences, (0.6, 0.2, 0.2), seed=1)
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [60, 20, 20]
    ids = [s.tokens[0] for part in splits.values() for s in part]
    assert sorted(ids) == sorted(f"w{i}" for i in range(100))
    assert split_sentences(sentences, seed=2)["train"] != splits["train"]
    with pytest.raises(ValueError):
        split_sentences(sentences, (0.5, 0.2, 0.2))


def test_multiconer_fine_and_coarse(tmp_path):
    path = tmp_path / "en_train.conll"
    path.write_text(MULTICONER, encoding="utf-8")
    fine = read_multiconer(path, "fine")
    assert len(fine) == 2
    assert fine[0].tokens == ["wes", "anderson", "'s", "film", "the", "grand", "budapest", "hotel"]
    assert fine[0].ner == ["B-Artist", "I-Artist", "O", "O", "B-VisualWork", "I-VisualWork",
                           "I-VisualWork", "I-VisualWork"]
    assert fine[0].meta == {"id": "9a1b", "domain": "en"}
    # a stray I- opening an entity becomes B- (IOB2)
    assert fine[1].ner == ["B-Medication/Vaccine", "O", "B-PrivateCorp"]
    coarse = read_multiconer(path, "coarse")
    assert coarse[0].ner == ["B-PER", "I-PER", "O", "O", "B-CW", "I-CW", "I-CW", "I-CW"]
    assert coarse[1].ner == ["B-MED", "O", "B-GRP"]


def test_official_coarse_mapping():
    """33 fine types in 6 coarse groups of 4, 5, 7, 7, 5, 5 (MultiCoNER II dataset card)."""
    assert len(FINE_TO_COARSE) == 33
    assert {k: len(v) for k, v in MULTICONER_COARSE_TYPES.items()} == {
        "LOC": 4, "CW": 5, "GRP": 7, "PER": 7, "PROD": 5, "MED": 5}
    assert coarse_tag("B-HumanSettlement") == "B-LOC"
    assert coarse_tag("I-Software") == "I-CW"
    assert coarse_tag("B-SportsGRP") == "B-GRP"
    assert coarse_tag("B-PublicCorp") == "B-GRP"  # the files' spelling of the card's PublicCORP
    assert coarse_tag("I-Cleric") == "I-PER"
    assert coarse_tag("B-Drink") == "B-PROD"
    assert coarse_tag("B-Symptom") == "B-MED"
    assert coarse_tag("O") == "O"


def test_multiconer_errors_and_folder_layout(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("# id 1\tdomain=en\nfoo _ _ B-Martian\n", encoding="utf-8")
    assert read_multiconer(bad, "fine")[0].ner == ["B-Martian"]
    with pytest.raises(DataError, match=r"bad.conll:2: 'Martian'"):
        read_multiconer(bad, "coarse")
    bad.write_text("# id 1\tdomain=en\nfoo _ _ X-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conll:2: invalid tag"):
        read_multiconer(bad)

    folder = tmp_path / "multiconer" / "EN-English"
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (folder / f"en_{split}.conll").write_text(MULTICONER, encoding="utf-8")
    splits, note = load_multiconer_dir(tmp_path / "multiconer", "en", "coarse")
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [2, 2, 2] and note == ""
    # Without a test file the dev file is scored as test; validation is held out of train.
    (folder / "en_test.conll").unlink()
    (folder / "en_train.conll").write_text(MULTICONER * 10, encoding="utf-8")
    splits, note = load_multiconer_dir(tmp_path / "multiconer", "en", "coarse", split_seed=0)
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [18, 2, 2]
    assert splits["test"] == read_multiconer(folder / "en_dev.conll", "coarse")
    assert "dev file is the test split" in note
    with pytest.raises(DataError, match="hi_train.conll"):
        load_multiconer_dir(tmp_path / "multiconer", "hi", "fine")


def test_builtin_multiconer_smoke_goes_through_the_reader(tmp_path):
    splits, description = load_splits("multiconer", None, "unused", smoke=True, seed=0, granularity="coarse",
                                      smoke_sizes=(30, 10, 10), work_dir=tmp_path)
    assert (tmp_path / "en_train.conll").is_file() and "MultiCoNER" in description
    types = {tag[2:] for s in splits["train"] for tag in s.ner if tag != "O"}
    assert types and types <= set(MULTICONER_COARSE_TYPES)


def test_vocab_ids_min_freq_lowercase_and_round_trip():
    vocab = Vocab.build([["The", "cat", "the"], ["dog", "THE"]], min_freq=2, lowercase=True)
    assert vocab.itos == ["<pad>", "<unk>", "the"]  # 'the' 3 times; cat/dog once
    assert vocab.encode(["tHe", "cat"]) == [2, 1]
    cased = Vocab.build([["b", "a", "a"]])
    assert cased.itos == ["<pad>", "<unk>", "a", "b"] and cased.id("A") == 1
    restored = Vocab.from_state_dict(vocab.state_dict())
    assert restored.itos == vocab.itos and restored.encode(["THE", "x"]) == [2, 1]


def test_batches_pad_mask_and_share_characters():
    sentences = [Sentence(["a", "bb", "a"], ["B-x", "O", "B-x"]), Sentence(["bb"], ["O"])]
    splits = {"train": sentences, "validation": [], "test": []}
    words, chars = build_vocabularies(splits)
    tags = tag_names(splits)
    assert tags == ["O", "B-x"]
    dataset = NERDataset(sentences, words, chars, tags)
    batch = dataset.batch([0, 1])
    assert batch.mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.tags.tolist() == [[1, 0, 1], [0, 0, 0]]
    assert batch.words[1, 1:].tolist() == [0, 0]
    # two distinct tokens: 'a' and 'bb'; every token points to its own characters
    assert batch.chars.shape == (2, 2)
    for row in range(2):
        for col in range(int(batch.mask[row].sum())):
            ids = batch.chars[batch.char_index[row, col]]
            text = "".join(chars.itos[i] for i in ids.tolist() if i != 0)
            assert text == sentences[row].tokens[col]
    first = [b.indices for b in dataset.batches(1, shuffle=True, seed=4, epoch=2)]
    assert first == [b.indices for b in dataset.batches(1, shuffle=True, seed=4, epoch=2)]
    assert sorted(sum(first, [])) == [0, 1]


def test_truncate_keeps_valid_prefixes():
    sentence = Sentence(["a", "b", "c", "d"], ["O", "B-x", "I-x", "I-x"], pos=["1", "2", "3", "4"])
    cut = truncate([sentence], 3)[0]
    assert cut.tokens == ["a", "b", "c"] and cut.ner == ["O", "B-x", "I-x"] and cut.pos == ["1", "2", "3"]
    assert truncate([sentence], None)[0] == sentence


def test_glove_loader_dimension_spaces_and_coverage(tmp_path):
    path = tmp_path / "tiny.3d.txt"
    path.write_text("the 0.1 0.2 0.3\nparis 1 2 3\n. . . 4 5 6\nunused 7 8 9\n", encoding="utf-8")
    glove = load_glove(path, wanted_words(["The", "Paris", ". . .", "zebra"]))
    assert glove.dim == 3 and glove.rows == 4
    assert set(glove.vectors) == {"the", "paris", ". . ."}  # 'unused' not kept
    assert np.allclose(glove.vectors[". . ."], [4, 5, 6])

    vocab = Vocab(["The", "Paris", "zebra"])
    matrix, coverage = embedding_matrix(vocab, glove, seed=0, token_counts={"The": 6, "zebra": 2})
    assert matrix.shape == (5, 3)
    assert torch.allclose(matrix[vocab.id("The")], torch.tensor([0.1, 0.2, 0.3]))  # lower-cased lookup
    assert torch.allclose(matrix[vocab.id("Paris")], torch.tensor([1.0, 2.0, 3.0]))
    assert (matrix[0] == 0).all()  # <pad>
    assert coverage["glove_words_found"] == 2 and coverage["glove_vocab_size"] == 3
    assert coverage["glove_coverage"] == pytest.approx(2 / 3)
    assert coverage["glove_token_coverage"] == pytest.approx(6 / 8)
    # unknown words are seeded random draws at the scale of the vectors found
    again, _ = embedding_matrix(vocab, glove, seed=0)
    assert torch.equal(again, matrix)
    scale = np.std(np.concatenate([[0.1, 0.2, 0.3], [1, 2, 3], [4, 5, 6]]))
    assert coverage["glove_unknown_std"] == pytest.approx(scale, rel=1e-5)

    header = tmp_path / "w2v.txt"
    header.write_text("2 2\nx 1 2\ny 3 4\n", encoding="utf-8")
    assert load_glove(header).dim == 2 and load_glove(header).rows == 2


@pytest.mark.parametrize("text,message", [
    ("a 1 2 3\nb 1 2\n", r"bad.txt:2: 2 values where the first row has 3"),
    ("a 1 2\nb 1 2 3\n", r"bad.txt:2: 3 values where the first row has 2"),
    ("a 1 2\nb 1 x\n", r"bad.txt:2: a value of 'b' is not a number"),
    ("", r"empty GloVe file"),
])
def test_glove_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_glove(path)


def test_missing_glove_file_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="--glove PATH"):
        load_glove(tmp_path / "glove.6B.100d.txt")


def test_smoke_glove_file_has_distributional_structure(tmp_path):
    """Words used alike get closer vectors: two weekdays vs a weekday and a city."""
    sentences = []
    for day in ["monday", "tuesday", "friday"]:
        for city in ["paris", "rome", "oslo"]:
            sentences += [["he", "left", "on", day, "."], ["she", "lives", "in", city, "."],
                          ["they", "met", "on", day, "in", city, "."]]
    glove = load_glove(write_smoke_glove(sentences, tmp_path / "smoke.txt", dim=4))
    cosine = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    v = glove.vectors
    assert cosine(v["monday"], v["friday"]) > cosine(v["monday"], v["paris"]) + 0.2


def test_unlabelled_tokens_are_no_tag_of_the_model_and_encode_as_minus_one():
    sentences = [Sentence(["a", "bb", "c"], ["B-x", UNLABELLED_TAG, "O"])]
    splits = {"train": sentences, "validation": [], "test": []}
    words, chars = build_vocabularies(splits)
    tags = tag_names(splits)
    assert tags == ["O", "B-x"]
    assert NERDataset(sentences, words, chars, tags).batch([0]).tags.tolist() == [[1, UNLABELLED, 0]]
