"""Q4 report: rendered from hand-made run folders; seeds of a variant aggregate to mean ± sample
std with their count, differences carry a standard error worked out by hand here, the curves
figure holds error and loss, and diverged runs are listed."""

import json
from pathlib import Path

import pytest

from q4_normalization import report

# test accuracy per seed (every run is evaluated on 100 test images)
RUNS = {("nn", 128): [0.50], ("bn", 128): [0.80, 0.82, 0.84], ("in", 128): [0.70], ("bin", 128): [0.75],
        ("ln", 128): [0.60], ("gn", 128): [0.65], ("torch_bn", 128): [0.76, 0.78],
        ("bn", 8): [None, 0.70], ("gn", 8): [0.60]}  # None: diverged


def write_run(root: Path, norm: str, bs: int, seed: int, accuracy: float | None) -> None:
    """A run folder as train.py writes it: accuracy on every split, macro F1 one point lower."""
    run_dir = root / "q4_normalization" / f"smoke-{norm}-bs{bs}-seed{seed}"
    run_dir.mkdir(parents=True)
    config = {"norm": norm, "bs": bs, "recipe": "report", "seed": seed, "smoke": True, "dataset": "builtin10",
              "depth": 8, "train_images": 64, "val_images": 32, "test_images": 100}
    (run_dir / "config.json").write_text(json.dumps(config))
    summary = {"diverged": accuracy is None, "best_epoch": 2 if norm == "gn" else 1, "epochs_run": 2}
    if accuracy is not None:
        summary["test_images"] = 100
        for split in ("train", "val", "test"):
            summary.update({f"{split}_accuracy": accuracy, f"{split}_micro_f1": accuracy,
                            f"{split}_macro_f1": accuracy - 0.01})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [{"step": e, "epoch": e, "probe_q01": -1.0 - e, "probe_q20": -0.2, "probe_q80": 0.2,
              "probe_q99": 1.0 + e} for e in range(3)]
    lines += [{"step": e, "epoch": e, "train_error": 0.5 / e, "val_error": 0.6 / e, "train_loss": 2.0 / e,
               "val_loss": 3.0 / e} for e in (1, 2)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_report_aggregates_seeds_and_computes_its_verdicts(tmp_path, monkeypatch):
    for (norm, bs), accuracies in RUNS.items():
        for seed, accuracy in enumerate(accuracies):
            write_run(tmp_path, norm, bs, seed, accuracy)
    figures, save = {}, report.save_figure

    def keep_figure(fig, path):
        figures[Path(path).name] = fig
        return save(fig, path)

    monkeypatch.setattr(report, "save_figure", keep_figure)
    text = report.main(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "q4.md")]).read_text()
    assert "built-in smoke data" in text
    # BN, 3 seeds: mean 82, sample std sqrt((2^2 + 0 + 2^2) / 2) = 2 points; macro F1 one point lower.
    assert ("| BatchNorm | 3 | 82.00% ± 2.00% | 81.00% ± 2.00% | 82.00% ± 2.00% | 81.39% "
            "| +0.61 pts |") in text
    # torch BN, 2 seeds: mean 77, std sqrt((1 + 1) / 1) = 1.41 points.
    row = ("| torch BatchNorm2d | 2 | 77.00% ± 1.41% | 76.00% ± 1.41% | 77.00% ± 1.41% | 79.41% "
           "| -2.41 pts |")
    assert row in text
    # One seed: the value alone, n = 1.
    assert "| GroupNorm | 1 | 65.00% | 64.00% | 65.00% | 81.98% | -16.98 pts |" in text
    assert ("Ranking by test accuracy: BatchNorm (82.00%) > torch BatchNorm2d (77.00%) > "
            "Batch-Instance Norm (75.00%) > InstanceNorm (70.00%) > GroupNorm (65.00%) > "
            "LayerNorm (60.00%) > none (50.00%)") in text
    # Below the report: GroupNorm 65% on 100 images, binomial sqrt(0.65 x 0.35 / 100) = 4.77 points,
    # 16.98 beyond 2 x 4.77; its best epoch is its last. torch BN's 2.41 is beyond 2 x 1 (over seeds).
    assert ("GroupNorm stays 16.98 points below the report's test accuracy (beyond 2 standard errors "
            "of ours, 4.77 points); its best validation epoch is 2 of the 2 run (the last: validation "
            "accuracy was still rising when the budget ended).") in text
    assert ("torch BatchNorm2d stays 2.41 points below the report's test accuracy (beyond 2 standard "
            "errors of ours, 1.00 points); its best validation epoch is 1 of the 2 run, "
            "1 of the 2 run.") in text
    # Against none (50%, binomial SE 5 points): LayerNorm's +10 is within 2 x sqrt(4.90^2 + 5^2) = 14.0;
    # GroupNorm's +15 is beyond 2 x sqrt(4.77^2 + 5^2) = 13.8.
    assert ("Against no normalization (50.00%), same recipe and batch size, a difference counting only "
            "beyond 2 standard errors: better: BatchNorm, torch BatchNorm2d, Batch-Instance Norm, "
            "InstanceNorm, GroupNorm; no clear difference: LayerNorm.") in text
    # Standard errors: BN over seeds 2/sqrt(3) = 1.1547, torch BN 1.4142/sqrt(2) = 1, so the
    # difference 82 - 77 = +5 has sqrt(1.3333 + 1) = 1.5275 points; 5 > 2 x 1.5275.
    assert ("BatchNorm from scratch vs torch's BatchNorm2d: +5.00 ± 1.53 points, outside 2 standard errors "
            "(the report: +1.98 points).") in text
    # BIN, one seed: binomial sqrt(0.75 x 0.25 / 100) = 4.3301 points; against BN (82, the better of
    # BN and IN): -7 ± sqrt(18.75 + 1.3333) = 4.4814 points; 7 < 2 x 4.4814.
    assert ("Batch-Instance Norm vs the better of BatchNorm and InstanceNorm (BatchNorm): "
            "-7.00 ± 4.48 points, within 2 standard errors.") in text
    # Batch 8: BN's finished seed 70 (binomial sqrt(0.7 x 0.3 / 100) = 4.5826) against 82 ± 1.1547:
    # -12 ± sqrt(21 + 1.3333) = 4.7258; GN 60 against 65: binomial sqrt(24 + 22.75) = 6.8374.
    assert "| BatchNorm | 82.00% ± 2.00% | 3 | 70.00% | 1 (+1 diverged) |" in text
    assert "| GroupNorm | 65.00% | 1 | 60.00% | 1 |" in text
    assert "BatchNorm, batch 8 vs 128: -12.00 ± 4.73 points, outside 2 standard errors." in text
    assert "GroupNorm, batch 8 vs 128: -5.00 ± 6.84 points, within 2 standard errors." in text
    # The drops: BN 12 ± 4.7258, GN 5 ± 6.8374; BN's minus GN's 7 ± sqrt(22.333 + 46.75) = 8.3116.
    assert ("Test accuracy lost from batch 128 to 8, BatchNorm's minus GroupNorm's: +7.00 ± 8.31 points, "
            "within 2 standard errors: no clear difference in what they lose.") in text
    assert "count as diverged in the tables: BatchNorm (batch 8, report recipe, seed 0)." in text
    assert "rounding" not in text and "expected" not in text
    # The curves figure: error (top) and loss (bottom), one line per seed, a variant's seeds in one colour.
    curves = figures["q4_curves.png"]
    train_error, val_error, train_loss, val_loss = curves.axes
    assert len(train_loss.lines) == 10 and len(val_loss.lines) == 10
    assert all(list(line.get_ydata()) == [2.0, 1.0] for line in train_loss.lines)
    assert all(list(line.get_ydata()) == [3.0, 1.5] for line in val_loss.lines)
    assert all(list(line.get_ydata()) == [50.0, 25.0] for line in train_error.lines)
    bn_lines = val_loss.lines[1:4]  # order: none, BatchNorm (3 seeds), ...
    assert len({line.get_color() for line in bn_lines}) == 1
    assert len({line.get_color() for line in val_loss.lines}) == 7
    assert [t.get_text() for t in val_error.get_legend().get_texts()][:2] == ["none", "BatchNorm"]
    assert "![train and validation error and loss of every variant](q4_curves.png)" in text
    for figure in ("q4_curves.png", "q4_quantiles.png", "q4_quantiles_bs8.png"):
        assert (tmp_path / figure).is_file()


def test_a_partial_cpu_study_names_the_runs_it_has_not_reached(tmp_path):
    import runpy

    for norm, bs in (("nn", 128), ("bn", 128), ("gn", 8)):
        write_run(tmp_path, norm, bs, 0, 0.5)
    # nn from 0 to 1 h, bn from 0 to 0.5 h, gn at batch 8 from 1 h to 2 h (started at 2026-01-01 00:00)
    hours = {"nn": (0, 1), "bn": (0, 0.5), "gn": (1, 2)}
    for config_file in tmp_path.glob("q4_normalization/*/config.json"):
        config = json.loads(config_file.read_text())
        start, end = hours[config["norm"]]
        provenance = {"started": f"2026-01-01T0{start}:00:00+0000",
                      "command": f"train.py --norm {config['norm']}"}
        config_file.write_text(json.dumps({**config, "recipe": "cpu", "smoke": False, "epochs": 15,
                                           "_provenance": provenance}))
        with open(config_file.parent / "metrics.jsonl", "a") as metrics:
            if config["norm"] == "nn":
                for epoch, seconds in ((3, 100.0), (4, 400.0), (5, 150.0)):
                    metrics.write(json.dumps({"step": epoch, "epoch": epoch, "epoch_time": seconds}) + "\n")
            metrics.write(json.dumps({"step": 9, "time": 1767225600 + 3600 * end}) + "\n")
    text = report.main(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "q4.md"),
                        "--recipe", "cpu"]).read_text()
    # nine runs in the study; three are here
    assert ("**Not run yet**, 6 of the study's 9 runs: InstanceNorm at batch 128, Batch-Instance Norm at "
            "batch 128, LayerNorm at batch 128, GroupNorm at batch 128, torch BatchNorm2d at batch 128, "
            "BatchNorm at batch 8.") in text
    # 1 + 0.5 + 1 hours of runs; 2 hours from the first start to the last end
    assert ("Wall time of the 3 runs of the tables: 2.50 h added up, 2.00 h from the first start to the last "
            "end. Median epoch time (training and validation): ") in text
    assert "none at batch 128 150 s" in text  # the median of 100, 150 and 400 s
    assert "| `python -m q4_normalization.train --norm gn` |" in text  # the provenance table
    root = Path(__file__).resolve().parents[1]
    render = runpy.run_path(str(root / "scripts" / "render_results.py"))["main"]
    rows = render(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "README.md")])
    assert "| Q4 CIFAR-10 (cpu recipe) | ResNet-14, bn, batch 128 | test accuracy | 50.00% | 81.39% |" in rows
    assert ("| Q4 CIFAR-10 (cpu recipe) | ResNet-14, in, batch 128 | test accuracy | not run yet | 83.35% "
            "| >= 83.35% | the study has not reached this run") in rows
    assert "| ResNet-14, bn, batch 8 | test accuracy | not run yet | — | — |" in rows
    assert "| ResNet-14, gn, batch 8 | test accuracy | 50.00% | — | — |" in rows
    assert rows.count("not run yet") == 6


def test_no_runs_is_one_line_and_exit_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--runs-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no Q4 runs") and "\n" not in err


def test_select_lr_picks_on_validation_with_ties_to_the_smaller_lr_and_diverged_last(tmp_path):
    from common.report import RunRecord
    from q4_normalization.select_lr import pick, sweep_scores, sweep_table

    def record(norm, lr, val=None, diverged=False):
        summary = {"diverged": True} if diverged else {"val_accuracy": val, "test_accuracy": 0.99}
        return RunRecord(tmp_path / f"{norm}-{lr}", {"norm": norm, "lr": lr}, summary)

    scores = sweep_scores([record("bn", 0.05, 0.40), record("bn", 0.1, 0.52), record("bn", 0.2, 0.52),
                           record("gn", 0.05, 0.30), record("gn", 0.1, diverged=True),
                           record("nn", 0.1, diverged=True), record("nn", 0.02, diverged=True)])
    assert pick(scores["bn"]) == 0.1    # 0.1 and 0.2 tie: the smaller lr
    assert pick(scores["gn"]) == 0.05   # a diverged run ranks below any finished one
    assert pick(scores["nn"]) == 0.02   # all diverged: the smallest lr
    table = sweep_table(scores)  # columns: the union of the grids, 0.02 0.05 0.1 0.2
    assert "| bn | — | 40.00% | 52.00% | 52.00% | 0.1 |" in table
    assert "| gn | — | 30.00% | diverged | — | 0.05 |" in table
    assert "| nn | diverged | — | diverged | — | 0.02 |" in table


def test_cpu_recipe_defaults_are_the_committed_sweeps_picks():
    # The sweep behind results/ (2 epochs per lr on 10,000 training images, scored on validation)
    # picked each norm's peak lr; train.py's CPU_LR must hold those picks, torch_bn taking bn's.
    from pathlib import Path

    from q4_normalization.select_lr import main as select
    from q4_normalization.train import CPU_LR

    sweep = Path(__file__).resolve().parents[1] / "results" / "runs" / "q4_lr_sweep"
    picks = select(["--sweep-dir", str(sweep)])
    assert picks == {norm: lr for norm, lr in CPU_LR.items() if norm != "torch_bn"}
    assert CPU_LR["torch_bn"] == CPU_LR["bn"]


def test_batch_8_verdict_names_the_norm_that_loses_more_beyond_two_standard_errors(tmp_path):
    runs = {("bn", 128): 0.80, ("bn", 8): 0.40, ("gn", 128): 0.65, ("gn", 8): 0.64}
    for (norm, bs), accuracy in runs.items():
        write_run(tmp_path, norm, bs, 0, accuracy)
    text = report.main(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "q4.md")]).read_text()
    # Binomial over 100 images: BN 4.0 and 4.899 points, drop 40 ± 6.3246; GN 4.7697 and 4.8,
    # drop 1 ± 6.7668; BN's minus GN's 39 ± sqrt(40 + 45.79) = 9.2623, beyond 2 x 9.26.
    assert ("Test accuracy lost from batch 128 to 8, BatchNorm's minus GroupNorm's: +39.00 ± 9.26 points, "
            "outside 2 standard errors: BatchNorm loses more.") in text


def test_widening_grid_steps_past_an_edge_pick_and_stops_inside():
    from q4_normalization.select_lr import next_lr

    assert next_lr({0.1: 0.80, 0.2: 0.82, 0.4: 0.84}) == 0.8      # best at the top: try twice it
    assert next_lr({0.05: 0.83, 0.1: 0.82, 0.2: 0.80}) == 0.025   # best at the bottom: half it
    assert next_lr({0.05: 0.80, 0.1: 0.84, 0.2: 0.82}) is None    # inside: done
    assert next_lr({0.1: 0.80, 0.2: 0.84, 0.4: -1.0}) is None     # the lr past the pick diverged
    assert next_lr({0.1: 0.82, 0.2: 0.82}) == 0.05                # a tie goes to the smaller lr, an edge


def test_converge_sweep_section_ranks_at_the_end_and_before_the_cool_down(tmp_path):
    from common.report import RunRecord
    from q4_normalization.report import converge_sweep_section

    def record(norm, lr, vals, cooldown_after, diverged=False):
        epochs = range(1, len(vals) + 1)
        summary = ({"diverged": True} if diverged else
                   {"val_accuracy": max(vals), "cooldown_after_epoch": cooldown_after,
                    "epochs_run": len(vals), "train_images": 10000})
        metrics = [{"epoch": e, "val_accuracy": v, "time": 1000.0 + 60 * e} for e, v in zip(epochs, vals)]
        config = {"norm": norm, "lr": lr, "_provenance": {"started": "1970-01-01T00:16:40+0000"}}
        return RunRecord(tmp_path / f"{norm}-{lr}", config, summary, metrics)

    # bn: 0.1 leads before the cool-down (0.60 > 0.58), 0.2 after it (0.80 > 0.78): the ranking moved.
    # gn: 0.1 leads at both points, inside its grid.
    sweep = [record("bn", 0.1, [0.5, 0.6, 0.78], 2), record("bn", 0.2, [0.5, 0.58, 0.80], 2),
             record("gn", 0.05, [0.4, 0.5, 0.6, 0.7], 3), record("gn", 0.1, [0.5, 0.6, 0.65, 0.75], 3),
             record("gn", 0.2, [], None, diverged=True)]
    text = "\n".join(converge_sweep_section(sweep))
    assert "| BatchNorm | — | 78.00 (60.00; 2+1) | 80.00 (58.00; 2+1) | 0.2 | 0.1 |" in text
    assert "| GroupNorm | 70.00 (60.00; 3+1) | 75.00 (65.00; 3+1) | diverged | 0.1 | 0.1 |" in text
    assert "pick before cool-down |" in text and "differ for BatchNorm" in text
    assert "Picked at an end of the lrs tried, so a better lr may lie beyond it: BatchNorm (0.2)" in text
    # Wall time: each run from its start (t = 1000 s) to its last line, 3, 3, 4 and 4 epochs of 60 s.
    assert "5 run(s), 0.2 hours of wall time added up" in text
    assert "on 10,000 training images" in text
    # Only bn and gn were swept, bn at two lrs: the sweep is not finished and says so.
    assert ("The sweep has not finished: none, BatchNorm, InstanceNorm, Batch-Instance Norm, LayerNorm have "
            "fewer than the three learning rates") in text
    assert "Every pick lies inside" not in text
    assert converge_sweep_section([]) == []

    # Fixed-budget runs with a budget check: the earlier ranking is the check's (30 of 40 epochs).
    def checked(norm, lr, final, at_check):
        summary = {"val_accuracy": final, "check_val_accuracy": at_check, "check_epochs": 30,
                   "epochs_run": 40, "train_images": 10000, "val_images": 10000}
        config = {"norm": norm, "lr": lr, "_provenance": {"started": "1970-01-01T00:16:40+0000"}}
        return RunRecord(tmp_path / f"{norm}-{lr}", config, summary, [{"epoch": 40, "time": 1000.0}])

    sweep = [checked("ln", 0.05, 0.70, 0.69), checked("ln", 0.1, 0.74, 0.71), checked("ln", 0.2, 0.72, 0.72)]
    text = "\n".join(converge_sweep_section(sweep))
    assert ("| LayerNorm | 70.00 (69.00; 30/40) | 74.00 (71.00; 30/40) | 72.00 (72.00; 30/40) | 0.1 | 0.2 |"
            in text)
    assert "pick at the budget check |" in text and "differ for LayerNorm" in text
    assert "last fifth of a fixed budget" in text
    # The moved ranking against the noise: 0.1 leads 0.2 by 74 - 72 = 2 points at the end and trails it
    # by 72 - 71 = 1 at the check; 2 x sqrt(0.74 x 0.26 / 10,000) = 0.88.
    assert ("LayerNorm: lr 0.1 leads lr 0.2 by 2.00 points at the end, and trails it by 1.00 at the "
            "budget check, against two standard errors of 0.88 points on 10,000 validation images: beyond "
            "the noise, so the ranking really moved.") in text
    # 80.33 - 79.59 = 0.74 and 80.15 - 79.50 = 0.65 against 2 x sqrt(0.8033 x 0.1967 / 10,000) = 0.80.
    sweep = [checked("bn", 0.2, 0.7959, 0.8015), checked("bn", 0.4, 0.8016, 0.7998),
             checked("bn", 0.8, 0.8033, 0.7950)]
    assert ("BatchNorm: lr 0.8 leads lr 0.2 by 0.74 points at the end, and trails it by 0.65 at the "
            "budget check, against two standard errors of 0.80 points on 10,000 validation images: the "
            "ranking moved inside the noise") in "\n".join(converge_sweep_section(sweep))
    # Only the two picks count: lr 0.4, far below both, does not make a move inside the noise look real.
    # 76.52 - 75.84 = 0.68 and 75.31 - 74.80 = 0.51 against 2 x sqrt(0.7652 x 0.2348 / 10,000) = 0.85.
    sweep = [checked("in", 0.1, 0.7652, 0.7480), checked("in", 0.2, 0.7584, 0.7531),
             checked("in", 0.4, 0.7456, 0.7380)]
    text = "\n".join(converge_sweep_section(sweep))
    assert ("InstanceNorm: lr 0.1 leads lr 0.2 by 0.68 points at the end, and trails it by 0.51 at the "
            "budget check, against two standard errors of 0.85 points on 10,000 validation images: the "
            "ranking moved inside the noise") in text
    assert "The sweep has not finished: none, BatchNorm, Batch-Instance Norm, LayerNorm, GroupNorm have" in text
    sweep = [checked(norm, lr, 0.7, 0.7) for norm in ("nn", "bn", "in", "bin", "ln") for lr in (0.1, 0.2, 0.4)]
    assert ("The sweep has not finished: GroupNorm has fewer than the three learning rates of its starting "
            "grid. Its pick (if any) is provisional") in "\n".join(converge_sweep_section(sweep))


def test_budget_check_lines_judge_the_budget_by_the_largest_gain_of_its_last_quarter(tmp_path):
    from common.report import RunRecord
    from q4_normalization.report import budget_check_lines

    def run(norm, final, at_check):
        summary = {"val_accuracy": final, "check_val_accuracy": at_check, "check_gain": final - at_check,
                   "check_epochs": 30, "epochs_run": 40}
        return RunRecord(tmp_path / norm, {"norm": norm, "bs": 128, "recipe": "converge"}, summary, [])

    groups = {("bn", 128, "converge"): [run("bn", 0.852, 0.850)],
              ("ln", 128, "converge"): [run("ln", 0.790, 0.770)]}
    keys = list(groups)
    text = "\n".join(budget_check_lines(groups, keys))
    assert "| BatchNorm | 30 / 40 | 85.00% | 85.20% | +0.20 |" in text
    assert "| LayerNorm | 30 / 40 | 77.00% | 79.00% | +2.00 |" in text
    assert "LayerNorm (+2.00) gained 0.5 points or more" in text and "BatchNorm (+" not in text
    groups = {("bn", 128, "converge"): [run("bn", 0.852, 0.850)]}
    assert "the budget is long enough" in "\n".join(budget_check_lines(groups, list(groups)))
    assert budget_check_lines({("bn", 128, "cpu"): [RunRecord(tmp_path, {}, {"val_accuracy": 0.8}, [])]},
                              [("bn", 128, "cpu")]) == []


def test_headline_rows_list_the_converge_study_once_its_sweep_has_begun(tmp_path):
    # No converge run or sweep run: no converge rows. A sweep run: the seven batch-128 rows, each
    # "not run yet" until its run is there; a finished run's note carries its budget check.
    from q4_normalization.report import headline_rows

    def write(folder, config, summary):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "summary.json").write_text(json.dumps(summary))
        (folder / "metrics.jsonl").write_text("")

    assert headline_rows(tmp_path) == []
    write(tmp_path / "q4_lr_sweep_converge" / "q4_normalization" / "sweep-bn-lr0.4",
          {"norm": "bn", "lr": 0.4, "bs": 128, "recipe": "converge"}, {"finished": True, "val_accuracy": 0.8})
    rows = headline_rows(tmp_path)
    assert [row[1] for row in rows] == [f"ResNet-14, {norm}, batch 128"
                                        for norm in ("nn", "bn", "in", "bin", "ln", "gn", "torch_bn")]
    assert all(row[3] == "not run yet" and "--recipe converge` carries it on" in row[6] for row in rows)
    write(tmp_path / "q4_normalization" / "ln-bs128-converge-seed0",
          {"norm": "ln", "bs": 128, "recipe": "converge", "epochs": 40, "seed": 0},
          {"finished": True, "test_accuracy": 0.78, "val_accuracy": 0.79, "check_gain": 0.012,
           "epochs_run": 40, "best_epoch": 39})
    ln = [row for row in headline_rows(tmp_path) if row[1] == "ResNet-14, ln, batch 128"][0]
    assert ln[3] == "78.00%" and ln[4] == "76.61%"
    assert ("epochs run/allowed 40/40; best epoch 39; budget check: the last quarter added +1.20 val points"
            in ln[6])


def test_converge_section_ranks_each_budget_beside_the_report(tmp_path):
    # Report-recipe runs (the main tables) and converge-recipe runs of three norms. Orders: report
    # recipe BN 80 > IN 70 > none 50; converge IN 85 > BN 83 > none 74; the original report (over
    # these three) IN > BN > none. Spearman over 3: 1 - 6 * sum(d^2) / (3 * 8): one swap gives 0.50.
    for norm, first, converged, gain in (("nn", 0.50, 0.74, 0.004), ("bn", 0.80, 0.83, 0.001),
                                         ("in", 0.70, 0.85, 0.009)):
        write_run(tmp_path, norm, 128, 0, first)
        write_run(tmp_path / "converge", norm, 128, 0, converged)
        folder = tmp_path / "converge" / "q4_normalization" / f"smoke-{norm}-bs128-seed0"
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "recipe": "converge", "epochs": 60}))
        summary = json.loads((folder / "summary.json").read_text())
        summary.update(check_gain=gain, check_val_accuracy=converged - gain, check_epochs=45, epochs_run=60)
        (folder / "summary.json").write_text(json.dumps(summary))
        folder.rename(tmp_path / "q4_normalization" / f"smoke-{norm}-bs128-converge-seed0")
    text = report.main(["--runs-dir", str(tmp_path), "--out", str(tmp_path / "q4.md")]).read_text()
    section = text.split("## Convergence recipe (`--recipe converge`)")[1]
    assert "| InstanceNorm | 1 | 85.00% | 84.00% | 85.00% | 83.35% | +1.65 pts |" in section
    assert "Ranking by test accuracy: InstanceNorm (85.00%) > BatchNorm (83.00%) > none (74.00%)." in section
    # The budget check: InstanceNorm's last quarter added 0.9 points, at or over 0.5.
    assert "| InstanceNorm | 45 / 60 | 84.10% | 85.00% | +0.90 |" in section
    assert "InstanceNorm (+0.90) gained 0.5 points or more" in section
    # Ranks: the report's among its seven variants, ours among the three run.
    assert "| BatchNorm | 81.39% (4) | 80.00% (1) | 83.00% (2) |" in section
    assert "| InstanceNorm | 83.35% (1) | 70.00% (2) | 85.00% (1) |" in section
    assert ("- `report` recipe: best BatchNorm (the report's best: InstanceNorm); Spearman rank correlation "
            "with the report's order 0.50 over 3 variants.") in section
    assert ("- `converge` recipe: best InstanceNorm (the report's best: InstanceNorm); Spearman rank "
            "correlation with the report's order 1.00 over 3 variants.") in section
    assert ("- `converge` recipe against `report` recipe: Spearman 0.50; the variants that change place: "
            "InstanceNorm, BatchNorm.") in section
    assert (tmp_path / "q4_converge_curves.png").is_file()
