"""q6_cnn_wandb/theory.py (every check passes, a wrong weight is caught and fails the exit status)
and report.py (its yes/no answer is computed from the runs' numbers)."""

import json
from pathlib import Path

import pytest

from q6_cnn_wandb import report, theory


@pytest.mark.parametrize("index", range(len(theory.QUESTIONS)))
def test_every_theory_check_passes(index):
    checks = theory.QUESTIONS[index][1](samples=200, seed=1)
    assert checks and all(check.passed for check in checks), [c.line() for c in checks if not c.passed]


def test_target_function_by_hand():
    # (P or Q) xor (not R or not S), row by row by hand:
    assert theory.target_function(0, 0, 0, 0) == 1  # 0 xor 1
    assert theory.target_function(0, 0, 1, 1) == 0  # 0 xor 0
    assert theory.target_function(1, 0, 0, 1) == 0  # 1 xor 1
    assert theory.target_function(1, 1, 1, 1) == 1  # 1 xor 0
    assert sum(theory.target_function(*row) for row in theory.all_inputs().int().tolist()) == 6


def test_a_wrong_weight_fails_the_check_and_the_exit_status(monkeypatch, capsys):
    wrong = theory.HIDDEN_BIAS.clone()
    wrong[2] = -0.5  # h3 (not P, not Q, not R) can then never fire
    monkeypatch.setattr(theory, "HIDDEN_BIAS", wrong)
    failed = [check for check in theory.check_boolean_network() if not check.passed]
    # Only row P Q R S = 0 0 0 1 needs h3 alone (0 0 0 0 is also covered by h4): 15/16 remain.
    assert failed and "15/16" in failed[0].detail
    with pytest.raises(SystemExit) as exit_info:
        theory.main(["--quiet", "--samples", "50"])
    assert exit_info.value.code == 1
    assert "FAILED" in capsys.readouterr().out


# ---- report ----------------------------------------------------------------------------------

def write_run(root: Path, name: str, summary: dict, dataset: str = "cifar10", flat: bool = False) -> None:
    """A finished run folder with the files report.py reads; `flat`: the loss never moves."""
    run_dir = root / "q6_cnn_wandb" / name
    run_dir.mkdir(parents=True)
    config = {"dataset": dataset, "smoke": False, "wandb_mode": "offline"}
    (run_dir / "config.json").write_text(json.dumps(config))
    lines = [{"step": e, "epoch": e, "train_loss": 0.09 if flat else 1.0 / e,
              "test_loss": 0.09 if flat else 1.1 / e, "test_accuracy": 0.1 * e} for e in (1, 2)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (run_dir / "summary.json").write_text(json.dumps({"dataset": dataset, "smoke": False, **summary}))


def classes(accuracy: float) -> dict:
    names = [f"c{i}" for i in range(10)]
    correct = round(100 * accuracy)
    matrix = [[correct if i == j else (100 - correct if j == (i + 1) % 10 else 0) for j in range(10)]
              for i in range(10)]
    return {"test_accuracy": accuracy, "class_names": names, "confusion_matrix": matrix, "test_size": 1000,
            "best_class": "c0", "best_class_accuracy": accuracy, "worst_class": "c9",
            "worst_class_accuracy": accuracy}


def make_runs(root: Path, cnn_accuracies, mlp_accuracy: float, pretrained: bool, seeds=(0,)) -> None:
    """One run per configuration and a ResNet-34 run for each seed; seed s adds s/100 to every accuracy."""
    settings = {1: ("sgd", "ce", 0.001, 0.9), 2: ("adam", "ce", 0.01, None), 3: ("sgd", "mse", 0.001, 0.9),
                4: ("adam", "mse", 0.01, None)}
    for seed in seeds:
        suffix = f"-seed{seed}" if seed else ""
        for config, accuracy in zip(settings, cnn_accuracies):
            optimizer, loss, lr, momentum = settings[config]
            accuracy += seed / 100
            write_run(root, f"config{config}{suffix}", {
                "kind": "cnn", "config_id": config, "optimizer": optimizer, "loss": loss, "lr": lr,
                "momentum": momentum, "epochs_run": 2, "best_epoch": 2, "selected_on": "validation",
                "best_selection_accuracy": accuracy, "dataset": "cifar10", "seed": seed, "num_params": 62006,
                "train_size": 50000, "uniform_prediction_loss": 0.09, **classes(accuracy)}, flat=config == 3)
        write_run(root, f"resnet{suffix}", {
            "kind": "resnet34_mlp", "weights": "imagenet" if pretrained else "none", "pretrained": pretrained,
            "weights_label": "ImageNet-pretrained" if pretrained else "random weights, not pre-trained",
            "image_size": 224, "epochs_run": 2, "converged": True, "seed": seed,
            **classes(mlp_accuracy + seed / 100)})


# Two seeds per row: accuracies a and a + 0.01, sample std 0.0071, two standard errors of the
# difference 2 * sqrt(2 * 0.0071**2 / 2) = 0.014.
@pytest.mark.parametrize("mlp_accuracy, pretrained, seeds, verdict", [
    (0.80, True, (0, 1), "**Yes**"), (0.55, True, (0, 1), "**No**"),
    (0.605, True, (0, 1), "**No clear difference**"),  # +0.5 points < 1.4
    (0.80, True, (0,), "**Cannot judge from these runs**"),  # 20 points, but one seed
    (0.80, False, (0,), "**Not answered by these runs**")])
def test_report_answer_is_computed_from_the_numbers(tmp_path, monkeypatch, mlp_accuracy, pretrained, seeds,
                                                     verdict):
    monkeypatch.setattr(report, "run_checks", lambda: theory.check_boolean_network())  # keep it fast
    make_runs(tmp_path / "runs", [0.60, 0.58, 0.10, 0.40], mlp_accuracy, pretrained, seeds)
    # A longer augmented run of configuration 1 is not one of the four configurations; the best on
    # test (90%), it is not the best on validation (55% against configuration 1's 60%).
    write_run(tmp_path / "runs", "config1-aug", {
        "kind": "cnn", "config_id": 1, "optimizer": "sgd", "loss": "ce", "lr": 0.001, "momentum": 0.9,
        "augment": True, "epochs": 60, "epochs_run": 60, "best_epoch": 60, "selected_on": "validation",
        "best_selection_accuracy": 0.55, "uniform_prediction_loss": 0.09, **classes(0.9)})
    out = tmp_path / "reports" / "q6.md"
    report.main(["--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    text = out.read_text()
    answer = text.split("## Do the pre-trained features beat")[1].split("##")[0]
    assert verdict in answer
    best = "60.50% ± 0.71% (n=2)" if len(seeds) == 2 else "60.00%"
    assert best in answer and "90.00%" not in answer  # the best of the four is config 1's 0.60
    assert "62,006" in text and "**total**" in text
    assert (tmp_path / "reports" / "q6_confusion_matrices.png").is_file()
    mse = text.split("## Squared error with SGD")[1].split("##")[0]
    assert "barely moves" in mse and "0.020" in mse  # 10% accuracy, loss unchanged -> the finding
    assert ("Best LeNet-5 row, picked on validation accuracy: config 1: SGD lr 0.001, momentum 0.9, "
            f"cross-entropy (validation {best[:6]}), test accuracy {best}, **below** the 65% target.") in text


def test_report_without_runs_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "q6.md")])
    assert exit_info.value.code == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_seeds_of_one_configuration_share_a_row(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "run_checks", lambda: theory.check_boolean_network())
    make_runs(tmp_path / "runs", [0.60, 0.58, 0.10, 0.40], 0.5, False)
    # A second seed of configuration 1: mean of 0.60 and 0.64 is 62%, sample std 0.0283 = 2.83%.
    write_run(tmp_path / "runs", "config1-seed1", {
        "kind": "cnn", "config_id": 1, "optimizer": "sgd", "loss": "ce", "lr": 0.001, "momentum": 0.9,
        "epochs_run": 2, "best_epoch": 2, "selected_on": "validation", "best_selection_accuracy": 0.64,
        "dataset": "cifar10", "num_params": 62006, "train_size": 50000, "uniform_prediction_loss": 2.3,
        "seed": 1, **classes(0.64)})
    out = tmp_path / "q6.md"
    report.main(["--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| config 1:")]
    assert len(rows) == 1 and "| 62.00% ± 2.83% (n=2) |" in rows[0]
