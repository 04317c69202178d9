"""Q1 scripts end to end on tiny hand-counted data: a CoNLL folder in the original IOB1 format
with -DOCSTART- lines, the HuggingFace path with a DatasetDict built here (no network), the
one-line errors, and the --smoke pipeline down to reports/q1.md."""

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from q1_weak_supervision import aggregate, analyze_lfs, dataset_stats, report

REPO = Path(__file__).resolve().parent.parent
COMMON = ["--wandb-mode", "disabled"]

# IOB1, 4 columns, as in the original CoNLL-2003 files. "I-X" opens an entity; "B-LOC" after
# "I-LOC" marks a second, adjacent LOC entity.
TRAIN = """-DOCSTART- -X- -X- O

LONDON NNP I-NP I-LOC
1996-08-30 CD I-NP O

Acme NNP I-NP I-ORG
Corp. NNP I-NP I-ORG
was VBD I-VP O
founded VBN I-VP O
in IN I-PP O
1990 CD I-NP O
. . O O

-DOCSTART- -X- -X- O

Globex NNP I-NP I-ORG
Inc. NNP I-NP I-ORG
rose VBD I-VP O
. . O O

The DT I-NP O
1899 CD I-NP O
and CC O O
2100 CD I-NP O
figures NNS I-NP O
, , O O
Inc NNP I-NP O
. . O O

German JJ I-NP I-MISC
exports NNS I-NP O
rose VBD I-VP O
in IN I-PP O
2099 CD I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

Germany NNP I-NP I-LOC
France NNP I-NP B-LOC
"""
VALID = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O
"""
TEST = """-DOCSTART- -X- -X- O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""
# Hand counts of the training file in IOB2: 7 sentences, 31 tokens, 2 separators.
TRAIN_TAGS = {"O": 21, "B-LOC": 3, "B-ORG": 2, "I-ORG": 2, "B-MISC": 1, "B-PER": 1, "I-PER": 1}


@pytest.fixture
def conll_dir(tmp_path):
    folder = tmp_path / "conll"
    folder.mkdir()
    (folder / "train.txt").write_text(TRAIN)
    (folder / "valid.txt").write_text(VALID)
    (folder / "test.txt").write_text(TEST)
    return folder


def test_stats_of_an_iob1_folder_without_docstart(conll_dir, tmp_path, capsys):
    summary = dataset_stats.main(["--conll-dir", str(conll_dir), *COMMON, "--out-dir", str(tmp_path)])
    assert (summary["num_train_samples"], summary["num_validation_samples"],
            summary["num_test_samples"]) == (7, 1, 2)
    assert summary["entity_distribution"] == TRAIN_TAGS
    assert summary["entity_distribution_validation"] == {"B-ORG": 1, "O": 3, "B-MISC": 1}
    assert summary["entity_distribution_test"] == {"B-LOC": 1, "O": 1, "B-PER": 1, "I-PER": 1}
    out = capsys.readouterr().out
    assert "Number of training samples: 7\n" in out
    assert "Number of validation samples: 1\n" in out
    assert "Number of test samples: 2\n" in out
    assert "separators dropped" in out


def test_stats_with_keep_docstart_count_separators_as_the_report_did(conll_dir, tmp_path, capsys):
    summary = dataset_stats.main(["--conll-dir", str(conll_dir), "--keep-docstart", *COMMON,
                                  "--out-dir", str(tmp_path)])
    assert (summary["num_train_samples"], summary["num_validation_samples"],
            summary["num_test_samples"]) == (9, 2, 3)
    # Each separator is a sample with one O tag, as in the report's 'O': 170524.
    assert summary["entity_distribution"] == {**TRAIN_TAGS, "O": 23}
    assert summary["num_train_docstart"] == 2
    out = capsys.readouterr().out
    assert "Number of training samples: 9\n" in out
    assert "as the report counted them" in out


def test_analyze_and_aggregate_with_the_report_definitions_on_hand_counts(conll_dir, tmp_path):
    args = ["--conll-dir", str(conll_dir), "--keep-docstart", "--lf-definition", "report",
            *COMMON, "--out-dir", str(tmp_path)]
    summary = analyze_lfs.main(args)
    # 9 rows (7 sentences + 2 separators). lf_year (regex): LONDON 1996-08-30, ... 1990 ..., 2099;
    # lf_org_suffix: Acme Corp., Globex Inc.; both on the Acme sentence, with different labels.
    assert summary["sentence_rows"] == 9
    assert summary["lf_year_coverage"] == pytest.approx(3 / 9)
    assert summary["lf_org_suffix_coverage"] == pytest.approx(2 / 9)
    assert summary["lf_year_overlaps"] == summary["lf_year_conflicts"] == pytest.approx(1 / 9)
    assert summary["lf_org_suffix_overlaps"] == pytest.approx(1 / 9)
    # Sentence accuracy: only the German sentence holds a MISC entity.
    assert summary["lf_year_accuracy"] == pytest.approx(1 / 3)
    assert summary["lf_org_suffix_accuracy"] == 1.0
    # Token level (separators are one O token each): 2 + 31 tokens.
    assert summary["token_rows"] == 33
    assert summary["token/lf_year_votes"] == 3 and summary["token/lf_year_correct"] == 0

    result = aggregate.main([*args, "--label-model-epochs", "50"])
    # Majority: LONDON -> 0, Acme tie -> -1, Globex -> 1, German -> 0; six others abstain.
    assert result["aggregated_label_distribution"] == {"-1": 6, "0": 2, "1": 1}
    assert result["sentence_majority_ties"] == 1
    assert result["sentence_majority_accuracy"] == pytest.approx(2 / 3)  # LONDON's 0 is wrong


def test_runs_on_other_splits_get_their_own_folder(conll_dir, tmp_path):
    common = ["--conll-dir", str(conll_dir), *COMMON, "--out-dir", str(tmp_path)]
    train = analyze_lfs.main(common)
    validation = analyze_lfs.main([*common, "--split", "validation"])
    runs = tmp_path / "q1_weak_supervision"
    assert sorted(p.name for p in runs.iterdir()) == ["lfs-conll-dir-tokens",
                                                      "lfs-conll-dir-validation-tokens"]
    assert (train["token_rows"], validation["token_rows"]) == (31, 5)
    saved = json.loads((runs / "lfs-conll-dir-tokens" / "summary.json").read_text())
    assert saved["split"] == "train" and saved["token_rows"] == 31


def test_tokens_definition_drops_the_date(conll_dir, tmp_path):
    summary = analyze_lfs.main(["--conll-dir", str(conll_dir), *COMMON, "--out-dir", str(tmp_path)])
    assert summary["sentence_rows"] == 7
    assert summary["lf_year_votes"] == 2  # 1990 and 2099; not 1996-08-30, 1899 or 2100
    assert summary["lf_year_coverage"] == pytest.approx(2 / 7)


def hf_dataset_dict():
    """A DatasetDict with the features of eriktks/conll2003 (ClassLabel sequences)."""
    import datasets

    ner_names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=ner_names)),
    })

    def split(rows):
        return datasets.Dataset.from_dict(
            {"id": [str(i) for i in range(len(rows))], "tokens": [r[0] for r in rows],
             "ner_tags": [[ner_names.index(t) for t in r[1]] for r in rows]}, features=features)

    return datasets.DatasetDict({
        "train": split([(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
                        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
                        (["Acme", "Corp.", "said", "in", "1996"], ["B-ORG", "I-ORG", "O", "O", "O"])]),
        "validation": split([(["BRUSSELS", "1996-08-22"], ["B-LOC", "O"])]),
        "test": split([(["Japan", "won"], ["B-LOC", "O"]), (["Hi"], ["O"])]),
    })


def test_hf_path_offline_with_a_built_dataset(monkeypatch, tmp_path):
    import datasets

    calls = []
    built = hf_dataset_dict()

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return built

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    summary = dataset_stats.main([*COMMON, "--out-dir", str(tmp_path)])
    assert calls == [("eriktks/conll2003", {"revision": "refs/convert/parquet"})]
    assert (summary["num_train_samples"], summary["num_validation_samples"],
            summary["num_test_samples"]) == (3, 1, 2)
    tags = collections.Counter(["B-ORG", "O", "B-MISC", "O", "B-PER", "I-PER", "B-ORG", "I-ORG",
                                "O", "O", "O"])
    assert summary["entity_distribution"] == dict(tags)

    lfs = analyze_lfs.main([*COMMON, "--out-dir", str(tmp_path)])
    assert lfs["lf_year_votes"] == 1 and lfs["lf_org_suffix_votes"] == 1  # the Acme sentence


def test_hf_offline_is_one_line_naming_the_alternatives(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(SystemExit) as exit_info:
        dataset_stats.main([*COMMON, "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "--conll-dir" in err and "--smoke" in err
    assert not (tmp_path / "q1_weak_supervision").exists()  # no half-made run folder


def test_hf_with_keep_docstart_is_a_data_error(tmp_path, capsys, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: hf_dataset_dict())
    with pytest.raises(SystemExit) as exit_info:
        dataset_stats.main(["--keep-docstart", *COMMON, "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "--conll-dir" in capsys.readouterr().err


def test_missing_conll_dir_is_one_line_and_exit_1(tmp_path):
    missing = tmp_path / "no_such_dir"
    result = subprocess.run(
        [sys.executable, "q1_weak_supervision/dataset_stats.py", "--conll-dir", str(missing),
         *COMMON, "--out-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(missing) in lines[0] and "train.txt" in lines[0]


def test_smoke_pipeline_renders_the_report(tmp_path):
    runs = tmp_path / "runs"
    common = ["--smoke", *COMMON, "--out-dir", str(runs)]
    stats = dataset_stats.main(common)
    lfs = analyze_lfs.main(common)
    agg = aggregate.main([*common, "--label-model-epochs", "100"])

    # Brute-force reference for the sentence-level majority vote over the same corpus.
    from q1_weak_supervision.corpus import SMOKE_SIZES
    from common.data.conll import builtin_conll_splits

    sentences = builtin_conll_splits(seed=0, sizes=SMOKE_SIZES)["train"]
    assert stats["num_train_samples"] == len(sentences)
    counts = collections.Counter()
    for s in sentences:
        year = any(len(t) == 4 and t.isdigit() and 1900 <= int(t) <= 2099 for t in s.tokens)
        suffix = any(t in ("Inc.", "Corp.", "Ltd.") for t in s.tokens)
        counts[0 if year and not suffix else 1 if suffix and not year else -1] += 1
    assert agg["aggregated_label_distribution"] == {str(k): counts[k] for k in (-1, 0, 1)}
    assert lfs["lf_year_votes"] == sum(
        any(len(t) == 4 and t.isdigit() and 1900 <= int(t) <= 2099 for t in s.tokens) for s in sentences)
    # The LFs label the built-in corpus well above chance at entity level.
    assert agg["token/majority/entity_f1"] > 0.3
    assert agg["token/label_model/entity_f1"] > 0.3

    out = tmp_path / "reports" / "q1.md"
    text = report.main(["--runs-dir", str(runs), "--out", str(out)])
    assert out.read_text() == text
    assert (tmp_path / "reports" / "q1_entity_distribution.png").stat().st_size > 0
    assert "built-in smoke data" in text
    assert f"| {stats['num_train_samples']} |" in text
    assert f"{agg['token/majority/entity_f1']:.3f}" in text  # the computed paragraph
    summary = json.loads((runs / "q1_weak_supervision" / "smoke-aggregate-builtin-tokens"
                          / "summary.json").read_text())
    assert summary["aggregated_label_distribution"] == agg["aggregated_label_distribution"]
