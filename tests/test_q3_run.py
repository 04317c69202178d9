"""q3_active_learning.run end to end on built-in data: learning, the labeling budget per episode,
the shared initial pool, --resume, the report, and clear errors."""

import json

import pytest
import torch

from common.data.images import MEAN_STD, ImageSet
from q3_active_learning import report
from q3_active_learning.model import Net
from q3_active_learning.run import SMOKE_DEFAULTS, load_data, main, parse_args, split_validation

SMOKE = ["--smoke", "--wandb-mode", "disabled"]
SMOKE_EPOCHS = SMOKE_DEFAULTS["epochs"]


def episode_state(out_dir, name: str, episode: int) -> dict:
    path = out_dir / "q3_active_learning" / name / "checkpoints" / f"episode_{episode:02d}.pt"
    return torch.load(path, weights_only=False)


@pytest.fixture(scope="module")
def coreset_run(tmp_path_factory):
    """One uninterrupted smoke run (builtin10, 40 initial labels + 3 episodes of 40)."""
    out_dir = tmp_path_factory.mktemp("q3")
    # Module fixtures run before conftest's per-test one-thread setting; the resumed run is
    # compared with this one to the last bit, so both must use the same thread count.
    torch.set_num_threads(1)
    summary = main([*SMOKE, "--method", "coreset", "--out-dir", str(out_dir)])
    return out_dir, summary


def test_smoke_run_learns_from_the_first_episode_to_the_last(coreset_run):
    _, summary = coreset_run
    curve = summary["test_accuracy_curve"]
    assert curve[-1] > curve[0] + 0.05, curve
    assert curve[-1] > 0.2  # 10 classes: chance is 0.1


def test_each_episode_labels_exactly_al_bsize_new_images(coreset_run):
    out_dir, summary = coreset_run
    assert summary["labeled_sizes"] == [40, 80, 120, 160]
    previous = None
    for episode in range(4):
        labeled = episode_state(out_dir, "smoke-cifar10-coreset-seed0", episode)["extra"]["labeled_idx"]
        assert len(labeled) == 40 * (episode + 1) == len(set(labeled.tolist()))
        assert 0 <= int(labeled.min()) and int(labeled.max()) < 1000  # the smoke pool
        if previous is not None:  # earlier labels are kept; the new ones were unlabeled
            assert torch.equal(labeled[:len(previous)], previous)
        previous = labeled


def test_initial_pool_is_identical_across_methods(coreset_run, tmp_path):
    out_dir, summary = coreset_run
    other = main([*SMOKE, "--method", "bald", "--max-episodes", "1", "--out-dir", str(tmp_path)])
    first = episode_state(out_dir, "smoke-cifar10-coreset-seed0", 0)["extra"]["labeled_idx"]
    second = episode_state(tmp_path, "smoke-cifar10-bald-seed0", 0)["extra"]["labeled_idx"]
    assert torch.equal(first, second)
    # Same images, same seeded initialisation and batch order: the same first network.
    assert other["test_accuracy_curve"][0] == summary["test_accuracy_curve"][0]
    # After the first query the methods part ways.
    chosen = episode_state(tmp_path, "smoke-cifar10-bald-seed0", 1)["extra"]["labeled_idx"]
    coreset_chosen = episode_state(out_dir, "smoke-cifar10-coreset-seed0", 1)["extra"]["labeled_idx"]
    assert not torch.equal(chosen, coreset_chosen)


def test_resume_ends_with_the_uninterrupted_numbers(coreset_run, tmp_path):
    _, uninterrupted = coreset_run
    args = [*SMOKE, "--method", "coreset", "--out-dir", str(tmp_path)]
    main([*args, "--max-episodes", "1"])  # stopped after episode 1
    with pytest.raises(SystemExit) as refused:  # another network width: refused before loading
        main([*args, "--max-episodes", "3", "--resume", "--width", "4"])
    assert refused.value.code == 1
    resumed = main([*args, "--max-episodes", "3", "--resume"])
    assert resumed["labeled_sizes"] == uninterrupted["labeled_sizes"]
    assert resumed["test_accuracy_curve"] == uninterrupted["test_accuracy_curve"]
    assert resumed["test_loss_curve"] == uninterrupted["test_loss_curve"]
    metrics = (tmp_path / "q3_active_learning" / "smoke-cifar10-coreset-seed0" / "metrics.jsonl")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    # Every epoch of every episode once (the resumed episodes' lines are not repeated), then the
    # episode's result at the step of its last epoch.
    epochs = SMOKE_EPOCHS
    per_epoch = [(r["episode"], r["epoch"]) for r in records if "epoch_train_loss" in r]
    assert per_epoch == [(e, k) for e in range(4) for k in range(1, epochs + 1)]
    assert [r["step"] for r in records if "test_accuracy" in r] == [epochs * (e + 1) for e in range(4)]
    assert all(0 <= r["epoch_train_accuracy"] <= 1 for r in records if "epoch_train_loss" in r)


def test_validation_split_is_fixed_and_apart_from_the_pool():
    # 300 images whose label is their index: the held-out 50 and the pool never share an image,
    # together they are all of them, and the split does not depend on the run's --seed.
    images = ImageSet(torch.zeros(300, 3, 2, 2, dtype=torch.uint8), torch.arange(300), ["x"])
    pool, val = split_validation(images, 50)
    assert len(val) == 50 and len(pool) == 250
    assert set(val.labels.tolist()).isdisjoint(pool.labels.tolist())
    assert sorted(val.labels.tolist() + pool.labels.tolist()) == list(range(300))
    torch.manual_seed(123)
    assert torch.equal(split_validation(images, 50)[1].labels, val.labels)
    with pytest.raises(Exception, match="--val-size 300 leaves no pool"):
        split_validation(images, 300)


def test_validation_accuracy_is_the_final_networks_on_the_held_out_images(coreset_run):
    # The last episode's checkpoint, evaluated here on the held-out validation images, gives the
    # accuracy the run recorded for that episode; the pool's labeled indices never reach them.
    out_dir, summary = coreset_run
    args = parse_args([*SMOKE, "--method", "coreset"])
    _, pool, val, _ = load_data(args)
    assert len(val) == SMOKE_DEFAULTS["val_size"] and summary["val_images"] == len(val)
    state = episode_state(out_dir, "smoke-cifar10-coreset-seed0", 3)
    model = Net(in_channels=3, image_size=val.images.shape[-1], num_classes=len(val.classes),
                width=args.width)
    model.load_state_dict(state["model"])
    model.eval()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in MEAN_STD["builtin10"])
    with torch.no_grad():  # the loaders' normalisation, written out
        predicted = model((val.images.float() / 255 - mean) / std).argmax(1)
    accuracy = (predicted == val.labels).float().mean().item()
    assert summary["val_accuracy_curve"][-1] == pytest.approx(accuracy, abs=1e-6)
    assert summary["final_val_accuracy"] == summary["val_accuracy_curve"][-1]


def test_report_chooses_the_recipe_on_validation_not_test(tmp_path):
    # Recipe A has the better validation accuracy, recipe B the better test accuracy: A is chosen.
    for recipe, seed, val, test in [("report", 0, 0.50, 0.40), ("report", 1, 0.52, 0.42),
                                    ("report-aug-ep40", 0, 0.45, 0.48), ("report-aug-ep40", 1, 0.47, 0.50)]:
        run_dir = tmp_path / "runs" / "q3_active_learning" / f"cifar10-random-{recipe}-seed{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps({"smoke": False, "data": "cifar10"}))
        (run_dir / "summary.json").write_text(json.dumps({
            "dataset": "cifar10", "method": "random", "seed": seed, "recipe": recipe, "episodes": 1,
            "labeled_sizes": [100], "test_accuracy_curve": [test], "final_test_accuracy": test,
            "final_val_accuracy": val, "selection_seconds_total": 0.0, "class_names": ["cat", "dog"],
            "labeled_class_counts": [50, 50]}))
    text = report.main(["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "q3.md")])
    assert "Chosen on validation accuracy: the report recipe" in text
    # mean 0.51 and std 0.0141 on validation; the test column beside it
    assert "| report | 2 | 51.00 ± 1.41 (n=2) | 41.00 ± 1.41 (n=2) |" in text
    # results/README.md names the chosen recipe's rows, and only those, as chosen
    labels = [row[0] for row in report.headline_rows(tmp_path / "runs")]
    assert labels == ["Q3 CIFAR-10 (report recipe, chosen on validation)",
                      "Q3 CIFAR-10 (report-aug-ep40 recipe)"]
    # Without a validation figure for one of them, nothing is chosen.
    for seed in (0, 1):
        path = tmp_path / "runs" / "q3_active_learning" / f"cifar10-random-report-seed{seed}" / "summary.json"
        summary = json.loads(path.read_text())
        del summary["final_val_accuracy"]
        path.write_text(json.dumps(summary))
    text = report.main(["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "q3.md")])
    assert "No recipe is chosen: the runs of report have no validation split" in text


def test_report_renders_mean_and_std_over_seeds(tmp_path):
    # Two hand-made summaries per method; the table cell is their mean ± sample std.
    for method, seed, accuracies in [("random", 0, [0.2, 0.3]), ("random", 1, [0.2, 0.5]),
                                     ("coreset", 0, [0.2, 0.6]), ("coreset", 1, [0.2, 0.7])]:
        run_dir = tmp_path / "runs" / "q3_active_learning" / f"cifar10-{method}-seed{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps({"smoke": False, "data": "cifar10"}))
        (run_dir / "summary.json").write_text(json.dumps({
            "dataset": "cifar10", "method": method, "seed": seed, "episodes": 2,
            "labeled_sizes": [100, 200], "test_accuracy_curve": accuracies,
            "selection_seconds_total": 1.0, "class_names": ["cat", "dog"],
            "labeled_class_counts": [100, 100] if method == "random" else [150, 50]}))
        (run_dir / "metrics.jsonl").write_text("".join(
            json.dumps({"episode": e, "epoch": k, "labeled": 100 * (e + 1), "epoch_train_accuracy": 0.1 * k})
            + "\n" for e in (0, 1) for k in (1, 2)))
    text = report.main(["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "q3.md")])
    # random at 200: mean 0.4, std sqrt(((0.1)^2 + (0.1)^2) / 1) = 0.1414; coreset: 0.65, 0.0707.
    assert "| 200 | 40.00 ± 14.14 (n=2) | 65.00 ± 7.07 (n=2) |" in text
    # Gap 25 points > the larger spread (14.14): Core-set is ahead beyond the spread.
    assert "Core-set beats random sampling beyond the seed spread" in text
    assert (tmp_path / "q3_cifar10.png").is_file()
    # Class balance: 100/100 is balanced (1); 150/50 has entropy -(.75 ln .75 + .25 ln .25) / ln 2.
    assert "| random | 200 | cat (100) | cat (100) | 1.000 |" in text
    assert "| coreset | 200 | dog (50) | cat (150) | 0.811 |" in text
    assert (tmp_path / "q3_cifar10_coreset_episodes.png").is_file()


def test_missing_real_data_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", "flowers102", "--data-root", str(tmp_path), "--wandb-mode", "disabled",
              "--out-dir", str(tmp_path / "runs")])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "flowers-102" in error and "\n" not in error


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["--method", "nope"])
    assert exit_info.value.code == 2
