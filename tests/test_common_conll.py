"""Tests for common/data/conll.py: IOB conversion, the CoNLL/GMB readers, the HuggingFace path
(offline, with a DatasetDict built here), and the built-in corpus.

Every input file is written by the test; expected values are worked out by hand in comments.
"""

import collections
import gzip
import re
import time

import pytest
from seqeval.metrics import f1_score
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from common.data.conll import (
    BUILTIN_DIR,
    CONLL_TYPES,
    GMB_TYPES,
    Sentence,
    builtin_conll_splits,
    builtin_ner_corpus,
    iob1_to_iob2,
    load_conll2003_hf,
    load_conll_dir,
    read_conll,
    read_gmb_csv,
)
from common.errors import DataError

# The first sentences of the original CoNLL-2003 training file, in its IOB1 tags, plus one made-up
# sentence with two adjacent locations ("Germany France"), the only place IOB1 uses B-.
SENTENCE_EU = [
    "EU NNP I-NP I-ORG",
    "rejects VBZ I-VP O",
    "German JJ I-NP I-MISC",
    "call NN I-NP O",
    "to TO I-VP O",
    "boycott VB I-VP O",
    "British JJ I-NP I-MISC",
    "lamb NN I-NP O",
    ". . O O",
]
SENTENCE_PETER = ["Peter NNP I-NP I-PER", "Blackburn NNP I-NP I-PER"]
SENTENCE_DATELINE = ["BRUSSELS NNP I-NP I-LOC", "1996-08-22 CD I-NP O"]
SENTENCE_ADJACENT = ["Germany NNP I-NP I-LOC", "France NNP I-NP B-LOC", "agreed VBD I-VP O"]
SENTENCE_CALL = ["The DT I-NP O", "call NN I-NP O", "failed VBD I-VP O"]
DOCSTART = "-DOCSTART- -X- -X- O"


def is_iob2(tags):
    """seqeval's strict IOB2 reading agrees with its lenient one only on valid IOB2."""
    strict = [(e.tag, e.start, e.end - 1) for e in Entities([list(tags)], IOB2).entities[0]]
    return all(re.fullmatch(r"O|[BI]-\S+", tag) for tag in tags) and strict == get_entities(list(tags))


def tag_counts(sentences):
    return collections.Counter(tag for s in sentences if not s.is_docstart for tag in s.ner)


def write_lines(path, lines, newline="\n", final_newline=True):
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes(text.encode("utf-8"))
    return path


def two_document_lines(blank_after_docstart=True):
    """2 DOCSTART lines and 5 sentences: D s1 s2 s3 D s4 s5 (s1..s5 = EU, Peter, dateline,
    adjacent, call)."""
    after = [""] if blank_after_docstart else []
    return (
        [DOCSTART, *after, *SENTENCE_EU, "", *SENTENCE_PETER, "", *SENTENCE_DATELINE, ""]
        + [DOCSTART, *after, *SENTENCE_ADJACENT, "", *SENTENCE_CALL]
    )


# ---- tag schemes ----


@pytest.mark.parametrize(
    "iob1, iob2",
    [
        (["I-PER", "I-PER"], ["B-PER", "I-PER"]),  # I- opens an entity in IOB1
        (["I-LOC", "B-LOC"], ["B-LOC", "B-LOC"]),  # B- separates two adjacent LOCs
        (["I-ORG", "I-PER"], ["B-ORG", "B-PER"]),  # a type change opens a new entity
        (["O", "I-MISC"], ["O", "B-MISC"]),
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),  # IOB2 unchanged
        ([], []),
    ],
)
def test_iob1_to_iob2_hand_cases(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2
    assert is_iob2(iob2)


@pytest.mark.parametrize("bad", ["X-PER", "B-", "PER", "b-PER"])
def test_iob1_to_iob2_rejects_invalid_tags(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        iob1_to_iob2(["O", bad])


# ---- read_conll ----


def test_read_conll_converts_iob1_ner_and_chunk_tags(tmp_path):
    path = write_lines(tmp_path / "train.txt", [*SENTENCE_EU, "", *SENTENCE_ADJACENT])
    eu, adjacent = read_conll(path)
    assert eu.tokens == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    assert eu.pos == ["NNP", "VBZ", "JJ", "NN", "TO", "VB", "JJ", "NN", "."]
    # Each I-X after O (or at the start) opens an entity: EU, German, British.
    assert eu.ner == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    # Chunks: [NP EU] [VP rejects] [NP German call] [VP to boycott] [NP British lamb] .
    assert eu.chunk == ["B-NP", "B-VP", "B-NP", "I-NP", "B-VP", "I-VP", "B-NP", "I-NP", "O"]
    assert adjacent.ner == ["B-LOC", "B-LOC", "O"]
    # [NP Germany France] is one IOB1 chunk (no B-NP), then [VP agreed].
    assert adjacent.chunk == ["B-NP", "I-NP", "B-VP"]
    assert not eu.is_docstart


def test_seqeval_agrees_with_converted_spans(tmp_path):
    path = write_lines(tmp_path / "train.txt", [*SENTENCE_EU, "", *SENTENCE_PETER, "", *SENTENCE_ADJACENT])
    eu, peter, adjacent = read_conll(path)
    # (type, first token, last token), inclusive, as seqeval's get_entities reports them.
    assert get_entities(eu.ner) == [("ORG", 0, 0), ("MISC", 2, 2), ("MISC", 6, 6)]
    assert get_entities(peter.ner) == [("PER", 0, 1)]
    assert get_entities(adjacent.ner) == [("LOC", 0, 0), ("LOC", 1, 1)]
    # Strict IOB2 parsing finds the same spans (end exclusive), so nothing is lost in strict mode.
    strict = Entities([eu.ner, peter.ner, adjacent.ner], IOB2).entities
    assert [[(e.tag, e.start, e.end - 1) for e in sentence] for sentence in strict] == [
        [("ORG", 0, 0), ("MISC", 2, 2), ("MISC", 6, 6)],
        [("PER", 0, 1)],
        [("LOC", 0, 0), ("LOC", 1, 1)],
    ]


def test_docstart_dropped_or_kept(tmp_path):
    path = write_lines(tmp_path / "train.txt", two_document_lines())
    # 5 sentences; with the 2 DOCSTART lines kept as sentences, 7.
    assert len(read_conll(path)) == 5
    kept = read_conll(path, keep_docstart=True)
    assert len(kept) == 7
    assert [s.is_docstart for s in kept] == [True, False, False, False, True, False, False]
    assert kept[0].tokens == ["-DOCSTART-"] and kept[0].ner == ["O"]
    assert [s.tokens[0] for s in kept if not s.is_docstart] == ["EU", "Peter", "BRUSSELS", "Germany", "The"]
    # tag_counts skips the separators: 9 + 2 + 2 + 3 + 3 = 19 tokens, of which 11 are O:
    # EU 6, Peter 0, dateline 1, adjacent 1, call 3.
    counts = tag_counts(kept)
    assert sum(counts.values()) == 19
    assert counts["O"] == 11
    assert counts == tag_counts(read_conll(path))


@pytest.mark.parametrize("blank_after_docstart", [True, False])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("ending", ["newline", "none", "blank lines"])
def test_layout_variants_read_alike(tmp_path, blank_after_docstart, newline, ending):
    lines = two_document_lines(blank_after_docstart)
    if ending == "blank lines":
        lines = [*lines, "", "", "  "]
    path = write_lines(tmp_path / "x.txt", lines, newline=newline, final_newline=ending != "none")
    reference = write_lines(tmp_path / "reference.txt", two_document_lines())
    for keep in (False, True):
        assert read_conll(path, keep_docstart=keep) == read_conll(reference, keep_docstart=keep)
    last = read_conll(path)[-1]
    assert last.tokens == ["The", "call", "failed"]  # no "\r" left on the last column
    assert last.ner == ["O", "O", "O"] and last.chunk == ["B-NP", "I-NP", "B-VP"]


def test_docstart_without_blank_line_before_it_ends_the_sentence(tmp_path):
    path = write_lines(tmp_path / "x.txt", [*SENTENCE_PETER, DOCSTART, *SENTENCE_CALL])
    assert [s.tokens for s in read_conll(path, keep_docstart=True)] == [
        ["Peter", "Blackburn"], ["-DOCSTART-"], ["The", "call", "failed"]
    ]


def test_two_and_three_column_files_and_tabs(tmp_path):
    two_lines = ["-DOCSTART- O", "", "Peter\tI-PER", "Blackburn\tI-PER", "said\tO"]
    two = write_lines(tmp_path / "two.txt", two_lines)
    (sentence,) = read_conll(two)
    assert sentence == Sentence(["Peter", "Blackburn", "said"], ["B-PER", "I-PER", "O"], None, None)
    three = write_lines(tmp_path / "three.txt", ["Peter NNP B-PER", "said VBD O"])
    (sentence,) = read_conll(three)
    assert sentence.pos == ["NNP", "VBD"] and sentence.chunk is None and sentence.ner == ["B-PER", "O"]


def test_iob2_scheme_rejects_iob1_file_at_its_line(tmp_path):
    path = write_lines(tmp_path / "train.txt", [*SENTENCE_PETER, "", *SENTENCE_EU])
    with pytest.raises(DataError, match=re.escape(f"{path}:1:")):  # line 1: Peter I-PER
        read_conll(path, tag_scheme="iob2")
    iob2 = write_lines(tmp_path / "iob2.txt", ["Peter NNP B-NP B-PER", "Blackburn NNP I-NP I-PER"])
    assert read_conll(iob2, tag_scheme="iob2")[0].ner == ["B-PER", "I-PER"]


@pytest.mark.parametrize(
    "bad_line, lineno, words",
    [
        ("call NN O", 5, "expected 4 columns"),  # 3 columns where line 1 has 4
        ("call NN I-NP O extra", 5, "expected 4 columns"),
        ("call NN I-NP X-PER", 5, "invalid NER tag 'X-PER'"),
        ("call NN I-NP B-", 5, "invalid NER tag 'B-'"),
        ("call NN Z-NP O", 5, "invalid chunk tag 'Z-NP'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, lineno, words):
    # Line 1 DOCSTART, 2 blank, 3 EU, 4 rejects, 5 the bad line.
    path = write_lines(tmp_path / "train.txt", [DOCSTART, "", SENTENCE_EU[0], SENTENCE_EU[1], bad_line])
    with pytest.raises(DataError) as caught:
        read_conll(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{lineno}: ")
    assert words in message
    assert "\n" not in message


def test_missing_file_is_one_line_data_error(tmp_path):
    path = tmp_path / "nowhere.txt"
    with pytest.raises(DataError) as caught:
        read_conll(path)
    message = str(caught.value)
    assert str(path) in message and "token POS chunk NER" in message and "\n" not in message


# ---- load_conll_dir ----


def test_load_conll_dir_reads_both_naming_conventions(tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    write_lines(short / "train.txt", two_document_lines())
    write_lines(short / "valid.txt", SENTENCE_PETER)
    write_lines(short / "test.txt", [DOCSTART, "", *SENTENCE_CALL])
    original = tmp_path / "original"
    original.mkdir()
    write_lines(original / "eng.train", two_document_lines())
    write_lines(original / "eng.testa", SENTENCE_PETER)
    write_lines(original / "eng.testb", [DOCSTART, "", *SENTENCE_CALL])
    for folder in (short, original):
        splits = load_conll_dir(folder)
        assert {name: len(s) for name, s in splits.items()} == {"train": 5, "validation": 1, "test": 1}
        kept = load_conll_dir(folder, keep_docstart=True)
        assert {name: len(s) for name, s in kept.items()} == {"train": 7, "validation": 1, "test": 2}


def test_load_conll_dir_missing_dir_and_missing_file(tmp_path):
    with pytest.raises(DataError) as caught:
        load_conll_dir(tmp_path / "conll2003")
    message = str(caught.value)
    assert str(tmp_path / "conll2003") in message
    assert all(name in message for name in ("train.txt", "valid.txt", "test.txt", "--smoke"))
    assert "\n" not in message

    write_lines(tmp_path / "train.txt", SENTENCE_PETER)
    write_lines(tmp_path / "valid.txt", SENTENCE_PETER)
    with pytest.raises(DataError, match=r"test\.txt.*--smoke") as caught:
        load_conll_dir(tmp_path)
    assert "\n" not in str(caught.value)


# ---- HuggingFace ----


def hf_dataset_dict(class_labels=True):
    """Two splits' worth of rows: 'EU rejects German call .' and 'Peter Blackburn'."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    from common.data.conll import CONLL2003_CHUNK_NAMES, CONLL2003_NER_NAMES, CONLL2003_POS_NAMES

    def labels(names):
        return List(ClassLabel(names=names)) if class_labels else List(Value("int64"))

    features = Features({
        "id": Value("string"),
        "tokens": List(Value("string")),
        "pos_tags": labels(CONLL2003_POS_NAMES),
        "chunk_tags": labels(CONLL2003_CHUNK_NAMES),
        "ner_tags": labels(CONLL2003_NER_NAMES),
    })
    # Ids by hand from the name lists: POS NNP=22 VBZ=42 JJ=16 NN=21 "."=7; chunk O=0 B-NP=11
    # I-NP=12 B-VP=21; NER O=0 B-PER=1 I-PER=2 B-ORG=3 B-MISC=7.
    rows = {
        "id": ["0", "1"],
        "tokens": [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]],
        "pos_tags": [[22, 42, 16, 21, 7], [22, 22]],
        "chunk_tags": [[11, 21, 11, 12, 0], [11, 12]],
        "ner_tags": [[3, 0, 7, 0, 0], [1, 2]],
    }
    split = Dataset.from_dict(rows, features=features)
    return DatasetDict({"train": split, "validation": split, "test": split.select([1])})


@pytest.mark.parametrize("class_labels", [True, False])
def test_hf_dataset_maps_ids_to_names(class_labels):
    splits = load_conll2003_hf(dataset=hf_dataset_dict(class_labels))
    assert {name: len(s) for name, s in splits.items()} == {"train": 2, "validation": 2, "test": 1}
    eu, peter = splits["train"]
    assert eu == Sentence(
        tokens=["EU", "rejects", "German", "call", "."],
        ner=["B-ORG", "O", "B-MISC", "O", "O"],
        pos=["NNP", "VBZ", "JJ", "NN", "."],
        chunk=["B-NP", "B-VP", "B-NP", "I-NP", "O"],
    )
    assert peter.ner == ["B-PER", "I-PER"] and peter.meta == {"id": "1"}
    assert splits["test"][0].tokens == ["Peter", "Blackburn"]


def test_hf_uses_the_datasets_own_label_names():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    # A different label order than conll2003's: id 1 is B-LOC here, so the names must come from
    # the features, not from a hard-coded list.
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=["O", "B-LOC"]))})
    split = Dataset.from_dict({"tokens": [["Paris"]], "ner_tags": [[1]]}, features=features)
    splits = load_conll2003_hf(dataset=DatasetDict({"train": split, "validation": split, "test": split}))
    assert splits["train"][0] == Sentence(["Paris"], ["B-LOC"], None, None)


def test_hf_load_failure_is_one_line_naming_the_alternatives(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'eriktks/conll2003' on the Hub\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as caught:
        load_conll2003_hf()
    message = str(caught.value)
    assert "eriktks/conll2003" in message and "ConnectionError" in message
    assert "--conll-dir" in message and "--smoke" in message
    assert "\n" not in message


def test_hf_has_no_docstart():
    with pytest.raises(DataError, match="--conll-dir"):
        load_conll2003_hf(dataset=hf_dataset_dict(), keep_docstart=True)


# ---- GMB csv ----


def test_read_gmb_csv_latin1_quotes_and_forward_fill(tmp_path):
    text = (
        "Sentence #,Word,POS,Tag\n"
        "Sentence: 1,Müller,NNP,B-per\n"
        ",visited,VBD,O\n"
        ",New,NNP,B-geo\n"
        ",York,NNP,I-geo\n"
        "Sentence: 2,\"1,000\",CD,O\n"  # a quoted word with a comma
        ",café,NN,O\n"
        ",\"\"\"\",``,O\n"  # the word is a single double quote
        ",NA,NNP,B-org\n"  # the word "NA" must not become a missing value
        "Sentence: 3,2009,CD,B-tim\n"
    )
    path = tmp_path / "ner_dataset.csv"
    path.write_bytes(text.encode("latin-1"))
    sentences = read_gmb_csv(path)
    # Forward fill: rows 1-4 are sentence 1, rows 5-8 sentence 2, row 9 sentence 3.
    assert [len(s) for s in sentences] == [4, 4, 1]
    assert [s.meta["sentence_id"] for s in sentences] == ["Sentence: 1", "Sentence: 2", "Sentence: 3"]
    assert sentences[0] == Sentence(
        tokens=["Müller", "visited", "New", "York"],
        ner=["B-per", "O", "B-geo", "I-geo"],
        pos=["NNP", "VBD", "NNP", "NNP"],
        chunk=None,
    )
    assert sentences[1].tokens == ["1,000", "café", '"', "NA"]
    assert sentences[1].ner == ["O", "O", "O", "B-org"]
    assert sentences[2].ner == ["B-tim"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("Sentence #,Word,Tag\nSentence: 1,Hi,O\n", "missing columns ['POS']"),
        ("Sentence #,Word,POS,Tag\n,Hi,UH,O\nSentence: 1,there,RB,O\n", ":2: a row before any sentence id"),
        ("Sentence #,Word,POS,Tag\nSentence: 1,Hi,UH,O\n,there,RB,X-geo\n", ":3: invalid tag 'X-geo'"),
    ],
)
def test_read_gmb_csv_malformed(tmp_path, text, words):
    path = tmp_path / "ner_dataset.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError) as caught:
        read_gmb_csv(path)
    message = str(caught.value)
    assert str(path) in message and words in message and "\n" not in message


def test_read_gmb_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="ner_dataset.csv"):
        read_gmb_csv(tmp_path / "ner_dataset.csv")


# ---- placeholders and gzip ----


def test_placeholder_columns_read_as_none_and_gzip_reads_alike(tmp_path):
    lines = ["-DOCSTART- -X- -X- O", "", "EU NNP B-NP B-ORG", "rejects VBZ B-VP O", "",
             "Peter -X- -X- B-PER", "Blackburn -X- -X- I-PER", "", "café NN -X- O"]
    path = write_lines(tmp_path / "train.txt", lines, newline="\r\n")
    expected = [
        Sentence(["-DOCSTART-"], ["O"], is_docstart=True),
        Sentence(["EU", "rejects"], ["B-ORG", "O"], ["NNP", "VBZ"], ["B-NP", "B-VP"]),
        Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"], None, None),  # all -X-: no columns
        Sentence(["café"], ["O"], ["NN"], None),
    ]
    assert read_conll(path, keep_docstart=True) == expected
    zipped = tmp_path / "train.txt.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert read_conll(zipped, keep_docstart=True) == expected
    zipped.write_bytes(path.read_bytes())  # not gzip: one-line error
    with pytest.raises(DataError, match="train.txt.gz: not a readable gzip file"):
        read_conll(zipped)


# ---- built-in corpus ----

# GMB type -> CoNLL-2003 type (None: O), as the two annotation guidelines define them.
CONLL_OF_GMB = {"per": "PER", "org": "ORG", "geo": "LOC", "gpe": "MISC", "eve": "MISC", "art": "MISC",
                "nat": "MISC", "tim": None}


def test_builtin_corpus_is_deterministic_fast_and_seeded():
    start = time.process_time()  # CPU time of this process: other processes on the machine don't count
    corpus = builtin_ner_corpus(3000)
    assert time.process_time() - start < 1.0
    assert len(corpus) == 3000
    assert corpus == builtin_ner_corpus(3000)
    assert builtin_ner_corpus(500) == corpus[:500]  # a smaller corpus is the start of a larger one
    assert builtin_ner_corpus(500, seed=1) != corpus[:500]
    # Another seed draws other documents in another order, from the same sentences.
    key = lambda s: (tuple(s.tokens), tuple(s.ner))  # noqa: E731
    assert sorted(map(key, builtin_ner_corpus(3000, seed=1))) == sorted(map(key, corpus))
    with pytest.raises(ValueError, match="3000 sentences"):
        builtin_ner_corpus(3001)
    # Same seed, other tagset: same text and POS; CoNLL tags are the GMB tags mapped by hand.
    gmb = builtin_ner_corpus(3000, tagset="gmb")
    assert [(s.tokens, s.pos) for s in gmb] == [(s.tokens, s.pos) for s in corpus]
    mapped = [["O" if t == "O" or CONLL_OF_GMB[t[2:]] is None else t[:2] + CONLL_OF_GMB[t[2:]]
               for t in s.ner] for s in gmb]
    assert mapped == [s.ner for s in corpus]


@pytest.mark.parametrize("tagset, types", [("conll", set(CONLL_TYPES)), ("gmb", set(GMB_TYPES))])
def test_builtin_corpus_tags(tagset, types):
    corpus = builtin_ner_corpus(3000, tagset=tagset)
    for sentence in corpus:
        assert len(sentence.tokens) == len(sentence.ner) == len(sentence.pos) > 0
        assert is_iob2(sentence.ner)
        if tagset == "conll":
            assert len(sentence.chunk) == len(sentence.tokens) and is_iob2(sentence.chunk)
        else:
            assert sentence.chunk is None  # like the GMB csv
    used = {tag[2:] for tag in tag_counts(corpus) if tag != "O"}
    assert used == types  # every type occurs, and no other


def test_builtin_corpus_has_the_tokens_the_labeling_functions_look_for():
    corpus = builtin_ner_corpus(3000)
    tokens = collections.Counter(token for sentence in corpus for token in sentence.tokens)
    assert all(tokens[suffix] > 0 for suffix in ("Inc.", "Corp.", "Ltd."))
    years = [t for t in tokens if re.fullmatch(r"(19|20)\d\d", t)]
    assert len(years) > 50
    assert any(re.fullmatch(r"(19|20)\d\d-\d\d-\d\d", t) for t in tokens)  # dateline dates
    # CoNLL tags years O; GMB tags them tim (B-tim, or I-tim after a month: "July 1998"); 4-digit
    # counts ("About 1950 people") stay O in both.
    year_tags = {
        (conll_tag, gmb_tag)
        for conll, gmb in zip(corpus, builtin_ner_corpus(3000, tagset="gmb"))
        for token, conll_tag, gmb_tag in zip(conll.tokens, conll.ner, gmb.ner)
        if re.fullmatch(r"(19|20)\d\d", token)
    }
    assert year_tags == {("O", "B-tim"), ("O", "I-tim"), ("O", "O")}


def test_builtin_splits_are_whole_documents_of_the_shipped_files():
    sizes = (300, 100, 100)
    plain = builtin_conll_splits(seed=3, sizes=sizes, tagset="gmb")
    kept = builtin_conll_splits(seed=3, sizes=sizes, keep_docstart=True, tagset="gmb")
    for split, size in zip(("train", "validation", "test"), sizes):
        assert len(plain[split]) == size
        assert [s for s in kept[split] if not s.is_docstart] == plain[split]
        # The file read as a plain CoNLL file: its documents, split at the DOCSTART lines.
        file_documents, documents = [], []
        for sentence in read_conll(BUILTIN_DIR / f"{split}.txt.gz", keep_docstart=True):
            if sentence.is_docstart:
                file_documents.append([])
            else:
                file_documents[-1].append(Sentence(sentence.tokens, sentence.ner, sentence.pos))
        for sentence in kept[split]:
            if sentence.is_docstart:
                documents.append([])
            else:
                documents[-1].append(sentence)
        assert kept[split][0].is_docstart and len(documents) > 1
        # Whole documents of the file, each once; only the last one may be cut short.
        for index, document in enumerate(documents):
            whole = next(d for d in file_documents if d[0] == document[0])
            assert document == (whole[: len(document)] if index == len(documents) - 1 else whole)
        assert len({tuple(d[0].tokens) for d in documents}) == len(documents)

    def person_words(sentences):
        return {token for s in sentences for token, tag in zip(s.tokens, s.ner) if tag.endswith("per")}

    assert person_words(plain["validation"]) - person_words(plain["train"])  # held-out gazetteer names


def test_builtin_corpus_is_learnable_but_not_by_lookup():
    splits = builtin_conll_splits(sizes=(3000, 700, 0))
    gold = [s.ner for s in splits["validation"]]
    # The all-O (majority) baseline finds no entity at all.
    assert f1_score(gold, [["O"] * len(tags) for tags in gold], mode="strict", scheme=IOB2) == 0.0
    # The most frequent training tag of each word gets most entities right but far from all: the
    # rest needs context (ambiguous words, unseen names).
    seen = collections.defaultdict(collections.Counter)
    for sentence in splits["train"]:
        for token, tag in zip(sentence.tokens, sentence.ner):
            seen[token][tag] += 1
    lookup = [
        iob1_to_iob2([seen[token].most_common(1)[0][0] if token in seen else "O" for token in s.tokens])
        for s in splits["validation"]
    ]
    assert 0.5 < f1_score(gold, lookup, mode="strict", scheme=IOB2) < 0.9


def test_unlabelled_tokens_read_only_when_asked_and_as_o_by_the_scheme_checks(tmp_path):
    # "-" between two I-PER: read as O by the IOB1 conversion, so the second I-PER opens an entity.
    path = write_lines(tmp_path / "partial.txt", ["Peter I-PER", "and -", "Mary I-PER", "said O"])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: invalid NER tag '-'")):
        read_conll(path)
    (sentence,) = read_conll(path, unlabelled_tag="-")
    assert sentence.ner == ["B-PER", "-", "B-PER", "O"]
    # In an IOB2 file an I-X right after an unlabelled token does not continue an entity.
    bad = write_lines(tmp_path / "bad.txt", ["Peter B-PER", "and -", "Mary I-PER"])
    with pytest.raises(DataError, match=re.escape(f"{bad}:3:")):
        read_conll(bad, tag_scheme="iob2", unlabelled_tag="-")
