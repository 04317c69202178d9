"""q2_transfer.report: runs of several seeds aggregate as mean ± std with the seed count, the
verdicts follow the numbers and their rule, and the report renders from hand-made run folders.
Every expected figure below is worked out by hand from the fabricated summaries."""

import json

from q2_transfer.report import main

TARGETS = {"c100-c10": "CIFAR10", "c10": "CIFAR10", "c10-c100": "CIFAR100", "c100": "CIFAR100"}


def _write_run(root, name, order, seed, test, train, selected, epochs_to_90, before=None, after=None,
               started="2026-01-02T00:00:00", epochs=3):
    """A run folder as train.py leaves it: config.json, summary.json (the fields the report
    reads) and metrics.jsonl with the target stage's test accuracy per epoch."""
    run_dir = root / "q2_transfer" / name
    run_dir.mkdir(parents=True)
    target = TARGETS[order]
    config = {"order": order, "seed": seed, "smoke": True, "model": "smallcnn", "epochs": epochs, "bs": 64,
              "lr": 0.001, "subset_ratio": 0.1, "train_size": None, "test_size": None, "val_split": 0.1,
              "split_seed": 0, "augment": True, "datasets": {target: f"builtin{target[5:]}"},
              "_provenance": {"started": started}}
    summary = {"order": order, "target": target, "target_test_accuracy": test, "target_train_accuracy": train,
               "target_selected_epoch": selected, "target_epochs_to_90pct": epochs_to_90}
    if before is not None:
        summary.update(source_test_accuracy_before=before, source_test_accuracy_after=after,
                       forgetting=before - after)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [{"step": e, "stage_epoch": e, f"{target}_test_accuracy": test * e / 3} for e in (1, 2, 3)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def _three_seeds(root, c100_c10_tests=(0.70, 0.73, 0.70)):
    for seed, test, selected, epochs in zip((0, 1, 2), (0.60, 0.62, 0.64), (8, 9, 10), (8, 9, 7)):
        _write_run(root, f"c10-seed{seed}", "c10", seed, test, 0.99, selected, epochs)
    for seed, test, epochs, before, after in zip((0, 1, 2), c100_c10_tests, (3, 4, 2), (0.40, 0.42, 0.44),
                                                 (0.25, 0.30, 0.29)):
        _write_run(root, f"c100-c10-seed{seed}", "c100-c10", seed, test, 0.95, 5, epochs, before, after)
    # An older run of c10 with seed 0: the newer one above replaces it.
    _write_run(root, "c10-seed0-old", "c10", 0, 0.10, 0.99, 1, 1, started="2026-01-01T00:00:00")
    _write_run(root, "c100-seed0", "c100", 0, 0.30, 0.35, 10, 10)
    _write_run(root, "c10-c100-seed0", "c10-c100", 0, 0.305, 0.40, 10, 10, 0.60, 0.50)


def test_seeds_aggregate_as_mean_and_std_and_the_verdicts_follow_them(tmp_path):
    _three_seeds(tmp_path / "runs")
    out = tmp_path / "reports" / "q2.md"
    text = main(["--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert out.read_text() == text
    assert (tmp_path / "reports" / "q2_convergence.png").stat().st_size > 0
    assert "`c10-seed0-old` left out: `c10-seed0` is a newer run of order c10, seed 0" in text
    assert "Seeds: 0, 1, 2." in text and "built-in smoke sets" in text and "Warning" not in text

    # CIFAR-10 from scratch: test 60, 62, 64 -> 62.00 ± 2.00 (sample std: sqrt((4 + 0 + 4) / 2));
    # selected epochs 8, 9, 10 -> 9.0 ± 1.0; epochs to 90% 8, 9, 7 -> 8.0 ± 1.0; train - test 39, 37,
    # 35 -> 37.00 ± 2.00.
    assert ("| CIFAR-10 | none (from scratch) | 3 | 62.00 ± 2.00 | — | 9.0 ± 1.0 | 8.0 ± 1.0 "
            "| 37.00 ± 2.00 |") in text
    # CIFAR-100 -> CIFAR-10: test 70, 73, 70 -> 71.00 ± sqrt((1 + 4 + 1) / 2) = 1.73; paired with the
    # seed's baseline +10, +11, +6 -> +9.00 ± sqrt((1 + 4 + 9) / 2) = 2.65; train - test 25, 22, 25
    # -> 24.00 ± 1.73; source 40, 42, 44 -> 42.00 ± 2.00, after 25, 30, 29 -> 28.00 ± sqrt((9 + 4 + 1)
    # / 2) = 2.65; forgetting 15, 12, 15 -> 14.00 ± 1.73.
    assert ("| CIFAR-10 | CIFAR-100 | 3 | 71.00 ± 1.73 | +9.00 ± 2.65 | 5.0 ± 0.0 | 3.0 ± 1.0 "
            "| 24.00 ± 1.73 | 42.00 ± 2.00 → 28.00 ± 2.65 | 14.00 ± 1.73 |") in text
    # One seed: the mean alone.
    assert ("| CIFAR-100 | CIFAR-10 | 1 | 30.50 | +0.50 | 10.0 | 10.0 | 9.50 | 60.00 → 50.00 "
            "| 10.00 |") in text

    # Verdicts: +9.00 is above 2 * 2.65 / sqrt(3) = 3.06 -> higher; epochs 3-8, 4-9, 2-7 = -5 each
    # (std 0) -> faster; the source task's -14.00 is beyond 2 * 1.73 / sqrt(3) = 2.00 -> lower.
    assert ("- CIFAR-100 → CIFAR-10 against CIFAR-10 from scratch, 3 paired seed(s): CIFAR-10 test "
            "accuracy +9.00 ± 2.65 points → **higher**; epochs to 90% of the best val acc -5.0 ± 0.0 → "
            "**faster**; CIFAR-100 test accuracy after fine-tuning -14.00 ± 1.73 points over 3 seed(s) → "
            "**lower**.") in text
    assert ("CIFAR-100 → CIFAR-10 gives higher accuracy and faster convergence than from scratch: "
            "**yes**") in text
    assert ("- CIFAR-10 → CIFAR-100 against CIFAR-100 from scratch, 1 paired seed(s): CIFAR-100 test "
            "accuracy +0.50 points → **no verdict**") in text
    assert "- Rule: a verdict needs the mean over seeds more than two standard errors" in text


def test_a_difference_inside_two_standard_errors_is_no_clear_difference(tmp_path):
    # Paired differences +1, -1, +1 points: mean 0.33, std sqrt((4/9 + 16/9 + 4/9) / 2) = 1.15,
    # two standard errors 2 * 1.15 / sqrt(3) = 1.33 > 0.33.
    _three_seeds(tmp_path / "runs", c100_c10_tests=(0.61, 0.61, 0.65))
    text = main(["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "q2.md")])
    assert "CIFAR-10 test accuracy +0.33 ± 1.15 points → **no clear difference**" in text
    assert "faster convergence than from scratch: **no**" in text


def test_missing_runs_and_differing_settings_are_shown(tmp_path):
    root = tmp_path / "runs"
    _write_run(root, "c10", "c10", 0, 0.6, 0.7, 3, 2)
    _write_run(root, "c100-c10", "c100-c10", 0, 0.7, 0.8, 3, 1, 0.4, 0.3, epochs=5)
    text = main(["--runs-dir", str(root), "--out", str(tmp_path / "q2.md")])
    assert "Missing runs: c10-c100, c100" in text
    assert "| CIFAR-100 | none (from scratch) | 0 | missing run |" in text
    assert "- CIFAR-10 → CIFAR-100: no comparison, missing run(s) c10-c100, c100." in text
    assert "**Warning: the runs differ in epochs**" in text
