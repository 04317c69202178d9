"""q2_transfer.report: the observations follow the numbers, and the report renders from run folders."""

import json

from q2_transfer.report import main, observations


def _summary(order, final, first, epochs_to_90, train, before=None, after=None):
    """A summary.json as train.py writes it, with the fields the report reads."""
    target = {"c100-c10": "CIFAR10", "c10": "CIFAR10", "c10-c100": "CIFAR100", "c100": "CIFAR100"}[order]
    summary = {"order": order, "target": target, "target_final_test_accuracy": final,
               "target_best_test_accuracy": final, "target_first_epoch_test_accuracy": first,
               "target_epochs_to_90pct": epochs_to_90, "target_final_train_accuracy": train}
    if before is not None:
        summary.update(source_test_accuracy_before=before, source_test_accuracy_after=after,
                       forgetting=before - after)
    return summary


# Pre-training on CIFAR-100 helps CIFAR-10 a lot and faster; the reverse makes no clear difference.
HELPS = {"c10": _summary("c10", 0.60, 0.30, 8, 0.99),
         "c100-c10": _summary("c100-c10", 0.70, 0.55, 3, 0.99, before=0.40, after=0.25),
         "c100": _summary("c100", 0.30, 0.05, 10, 0.95),
         "c10-c100": _summary("c10-c100", 0.305, 0.08, 10, 0.96, before=0.60, after=0.50)}
# The same runs with the CIFAR-10 numbers swapped around: now pre-training hurts and is slower.
HURTS = dict(HELPS, **{"c10": _summary("c10", 0.70, 0.55, 3, 0.72),
                       "c100-c10": _summary("c100-c10", 0.65, 0.30, 8, 0.70, before=0.40, after=0.40)})


def test_observations_follow_the_numbers():
    helps, hurts = observations(HELPS), observations(HURTS)
    assert helps != hurts
    # Every figure below is worked out by hand from the fabricated summaries.
    assert "raises the final CIFAR-10 test accuracy from 60.00% to 70.00% (+10.0 points)" in helps
    assert "converges faster: 90% of the final test accuracy after 3 epoch(s) against 8" in helps
    assert "lowers the source task's (CIFAR-100) test accuracy by 15.0 points (40.00% → 25.00%" in helps
    assert "makes no clear difference to the final CIFAR-100 test accuracy" in helps  # +0.5 points
    assert "Across the two orders, pre-training helps in CIFAR-100 → CIFAR-10 (+10.0 points)." in helps
    assert "is supported on both counts" in helps
    assert "Train accuracy overstates test accuracy by up to 65.5 points (CIFAR-10 → CIFAR-100)" in helps

    assert "lowers the final CIFAR-10 test accuracy from 70.00% to 65.00% (-5.0 points)" in hurts
    assert "converges slower: 90% of the final test accuracy after 8 epoch(s) against 3" in hurts
    assert "is not supported" in hurts
    assert "leaves the source task's (CIFAR-100) test accuracy within 1 point" in hurts  # 40% -> 40%
    assert ("pre-training helps in neither order and hurts in CIFAR-100 → CIFAR-10 (-5.0 points)"
            in hurts)  # +0.5 points for the other order is inside the 1-point noise band
    # With train and test accuracy close, the memorisation sentence turns around: 62% - 60%.
    assert "stay within 2.0 points of each other" in observations({"c10": _summary("c10", 0.6, 0.3, 8, 0.62)})


def test_observations_rank_two_orders_that_both_help():
    both = dict(HELPS, **{"c10-c100": _summary("c10-c100", 0.34, 0.08, 10, 0.36, before=0.6, after=0.5),
                          "c100": _summary("c100", 0.30, 0.05, 10, 0.31)})
    text = observations(both)
    assert ("pre-training helps in CIFAR-100 → CIFAR-10 (+10.0 points) and CIFAR-10 → CIFAR-100 "
            "(+4.0 points)") in text
    assert "The larger benefit comes from CIFAR-100 → CIFAR-10." in text
    nearly_equal = dict(both, **{"c10-c100": _summary("c10-c100", 0.395, 0.08, 10, 0.4, before=0.6, after=0.5)})
    assert "Both help by about the same amount." in observations(nearly_equal)  # +10.0 vs +9.5


def _write_run(root, name, summary, smoke=True):
    run_dir = root / "q2_transfer" / name
    run_dir.mkdir(parents=True)
    order = summary["order"]
    config = {"order": order, "smoke": smoke, "model": "smallcnn", "epochs": 3, "bs": 64, "lr": 0.001,
              "subset_ratio": 0.1, "seed": 0, "augment": True,
              "datasets": {"CIFAR10": "builtin10"} if "10" in order else {},
              "_provenance": {"started": "2026-01-01T00:00:00"}}
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    target = summary["target"]
    lines = [{"step": e, "epoch": e, "stage_epoch": e, f"{target}_test_accuracy": 0.1 * e} for e in (1, 2, 3)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_report_renders_the_table_figure_and_missing_rows(tmp_path):
    for order in ("c10", "c100-c10", "c10-c100"):
        _write_run(tmp_path / "runs", f"smoke-{order}", HELPS[order])
    out = tmp_path / "reports" / "q2.md"
    text = main(["--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert out.read_text() == text
    assert (tmp_path / "reports" / "q2_convergence.png").stat().st_size > 0
    assert "built-in smoke sets" in text
    assert "Missing runs: c100" in text
    assert "| CIFAR-10 | CIFAR-100 | 70.00% | 70.00% | +10.0 points | 3 | 99.00% | 40.00% → 25.00% | 15.0 |" in text
    assert "| CIFAR-100 | none (from scratch) | missing run |" in text
    assert "CIFAR-100: no comparison, the run(s) c100 are missing." in text


def test_a_verdict_agrees_with_the_rounded_figure_it_prints():
    # 11.75% -> 10.70% is -1.05 points, printed as -1.0 (float rounding of 100 * -0.0105): the
    # verdict must treat it as the -1.0 it shows, i.e. not under the 1-point noise band.
    runs = dict(HELPS, **{"c100": _summary("c100", 0.1175, 0.05, 3, 0.12),
                          "c10-c100": _summary("c10-c100", 0.1070, 0.06, 2, 0.12, before=0.589, after=0.592)})
    text = observations(runs)
    assert "lowers the final CIFAR-100 test accuracy from 11.75% to 10.70% (-1.0 points)" in text
    # and +0.3 points on the source task is inside the band: "within 1 point".
    assert "leaves the source task's (CIFAR-10) test accuracy within 1 point" in text
