"""q5_ner_crf/predict.py: a --smoke tagger reloaded from its run folder tags raw sentences exactly
as the trained model did in the training process."""

import io
import sys

import pytest

from q5_ner_crf import predict as predict_entry
from q5_ner_crf import train


def parse_tagged(text: str) -> list[list[tuple[str, str]]]:
    """token<TAB>tag lines, a blank line after each sentence."""
    blocks = text.strip("\n").split("\n\n")
    return [[tuple(line.split("\t")) for line in block.splitlines()] for block in blocks]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke run with every part that carries state (GloVe-sized embeddings, characters, layer
    norm, CRF), and the predictions the training process made on its test split with the best
    checkpoint (the last evaluation of train.main)."""
    out = tmp_path_factory.mktemp("runs")
    calls = []
    original = train.predict

    def recording(model, dataset, batch_size, device):
        predicted, loss = original(model, dataset, batch_size, device)
        calls.append(([sentence.tokens for sentence in dataset.sentences], predicted))
        return predicted, loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "predict", recording)
        train.main(["--smoke", "--wandb-mode", "disabled", "--out-dir", str(out), "--embeddings", "glove",
                    "--char", "--layer-norm", "gates", "--crf"])
    run_dir = out / "q5_ner_crf" / "smoke-gmb-glove-char-ln-gates-crf-report-seed0"
    return run_dir, calls[-1]


def test_predict_reproduces_the_in_process_predictions(trained, tmp_path, capsys):
    run_dir, (sentences, expected) = trained
    # A few sentences of different lengths, so that batches are padded differently than in training.
    chosen = [0, 1, 2, 3, 5, 8, 13, 21]
    text = "".join(" ".join(sentences[i]) + "\n" + ("\n" if i == 3 else "") for i in chosen)
    path = tmp_path / "sentences.txt"
    path.write_text(text, encoding="utf-8")
    predicted = predict_entry.main(["--run-dir", str(run_dir), "--input", str(path), "--batch-size", "3"])
    output = parse_tagged(capsys.readouterr().out)
    assert predicted == [expected[i] for i in chosen]
    assert output == [list(zip(sentences[i], expected[i])) for i in chosen]
    assert any(tag != "O" for i in chosen for tag in expected[i])  # the model tags entities at all


def test_predict_reads_stdin_and_maps_unseen_words_to_unk(trained, monkeypatch, capsys):
    run_dir, (sentences, expected) = trained
    stdin = " ".join(sentences[4]) + "\nQwxzv Blorpt visited Zzyx .\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    predicted = predict_entry.main(["--run-dir", str(run_dir)])
    assert predicted[0] == expected[4]
    _, words, _, tags = predict_entry.load_tagger(run_dir)
    assert words.id("Qwxzv") == words.unk_id and len(predicted[1]) == 5 and set(predicted[1]) <= set(tags)
    output = parse_tagged(capsys.readouterr().out)
    assert [token for token, _ in output[1]] == ["Qwxzv", "Blorpt", "visited", "Zzyx", "."]


def test_missing_run_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        predict_entry.main(["--run-dir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert error.value.code == 1 and len(err.splitlines()) == 1 and "best.pt" in err
