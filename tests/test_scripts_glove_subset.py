"""scripts/make_glove_subset.py: the GloVe rows of a corpus's words, copied in the file's order."""

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_keeps_the_rows_of_corpus_words_as_written_or_lower_cased(tmp_path):
    glove = tmp_path / "glove.txt"
    rows = ["the 0.1 0.2\n", "london 0.3 0.4\n", "paris 0.5 0.6\n", "Acme 0.7 0.8\n", "acme 0.9 1.0\n",
            "visited 1.1 1.2\n"]
    glove.write_text("".join(rows), encoding="utf-8")
    csv = tmp_path / "ner_dataset.csv"  # Kaggle GMB layout: the sentence number on its first word
    csv.write_text("Sentence #,Word,POS,Tag\nSentence: 1,London,NNP,B-geo\n,visited,VBD,O\n,Acme,NNP,B-org\n",
                   encoding="latin-1")
    out = tmp_path / "subset.txt"
    main = runpy.run_path(str(ROOT / "scripts" / "make_glove_subset.py"))["main"]
    counts = main(["--glove", str(glove), "--gmb", str(csv), "--out", str(out)])
    # London -> london, Acme as written and as acme, visited; not "the" or "paris".
    assert out.read_text(encoding="utf-8") == "".join(rows[i] for i in (1, 3, 4, 5))
    assert counts == {"rows": 6, "kept": 4}


def test_needs_a_corpus_and_an_existing_glove_file(tmp_path, capsys):
    main = runpy.run_path(str(ROOT / "scripts" / "make_glove_subset.py"))["main"]
    with pytest.raises(SystemExit) as error:
        main(["--glove", str(tmp_path / "g.txt"), "--out", str(tmp_path / "o.txt")])
    assert error.value.code == 2
    csv = tmp_path / "ner_dataset.csv"
    csv.write_text("Sentence #,Word,POS,Tag\nSentence: 1,London,NNP,B-geo\n", encoding="latin-1")
    with pytest.raises(SystemExit) as error:
        main(["--glove", str(tmp_path / "g.txt"), "--gmb", str(csv), "--out", str(tmp_path / "o.txt")])
    assert error.value.code == 1 and "GloVe file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.txt").exists()
