"""Q4 training script: every normalization learns on built-in data, its accuracy and F1 values
match scikit-learn on the best checkpoint's predictions, the report's learning-rate schedules, the
argmax over the real classes when --r exceeds them, --resume ends where an uninterrupted run ends
and refuses another depth, torchrun with two processes works, missing data is one line."""

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from common.data.images import MEAN_STD, ImageLoader
from common.distributed import DistContext
from q4_normalization import train
from q4_normalization.resnet import ResNet
from q4_normalization.train import main
from tests.torchrun import run_torchrun, torchrun_failure

REPO = Path(__file__).resolve().parents[1]
TINY = ["--smoke", "--wandb-mode", "disabled", "--val-size", "32", "--test-size", "32", "--probe-size", "8"]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def check_against_sklearn(run_dir: Path, argv: list[str]) -> None:
    """The summary's accuracy, macro F1 and micro F1 on every split against scikit-learn on the
    predictions of the best checkpoint, run here in one process over whole splits."""
    args = train.parse_args(argv)
    splits = train.load_splits(args)
    net = ResNet(args.n, args.r, args.norm, args.groups)
    net.load_state_dict(torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["model"])
    net.eval()
    summary = json.loads((run_dir / "summary.json").read_text())
    for split in ("train", "val", "test"):
        batches = list(train.eval_loader(getattr(splits, split), args, DistContext()))
        with torch.no_grad():
            predicted = torch.cat([net(images).argmax(1) for images, _ in batches]).numpy()
        truth = torch.cat([labels for _, labels in batches]).numpy()
        assert summary[f"{split}_accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        assert summary[f"{split}_macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
        assert summary[f"{split}_micro_f1"] == pytest.approx(f1_score(truth, predicted, average="micro"))


@pytest.mark.parametrize("norm", ["nn", "bn", "in", "bin", "ln", "gn", "torch_bn"])
def test_smoke_run_learns_for_every_norm(norm, tmp_path):
    # 64 built-in images, batch 8, 8 epochs (64 SGD steps). Learning is measured on the training
    # images: builtin10's classes are hues, which per-image normalization (IN, GN on 16 channels)
    # partly removes, so those need far more steps before the validation split moves. The lr is
    # 0.2 (0.05 without normalization) instead of the report's presets (0.001 for none, 0.01 for
    # LN), which need hundreds of steps. Chance is 10%; 30% on 64 images is over 5 standard errors.
    lr = "0.05" if norm == "nn" else "0.2"
    argv = ["--norm", norm, "--bs", "8", "--train-size", "64", "--epochs", "8", "--lr", lr,
            "--schedule", "constant", "--run-name", "learn", "--out-dir", str(tmp_path), *TINY]
    summary = main(argv)
    run_dir = tmp_path / "q4_normalization" / "learn"
    epochs = [m for m in metrics(run_dir) if "train_loss" in m]
    assert [m["epoch"] for m in epochs] == list(range(1, 9))
    assert epochs[-1]["train_accuracy"] >= 0.30
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"] - 0.25
    check_against_sklearn(run_dir, argv)
    assert summary["diverged"] is False
    assert summary["train_images"] == 64 and summary["test_images"] == 32
    # The probe quantiles, at initialisation (step 0) and after every epoch, are ordered.
    probes = [m for m in metrics(run_dir) if "probe_q01" in m]
    assert [m["step"] for m in probes] == list(range(0, 9))
    assert all(m["probe_q01"] <= m["probe_q20"] <= m["probe_q80"] <= m["probe_q99"] for m in probes)
    assert (run_dir / "curves.png").is_file() and (run_dir / "quantiles.png").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    if norm == "bin":  # rho clipped into [0, 1] after every step of the real loop
        state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
        rhos = torch.cat([v for k, v in state.items() if k.endswith("rho")])
        assert rhos.min() >= 0 and rhos.max() <= 1


def test_plot_history_draws_error_and_loss_curves():
    probe = {"probe_q01": -1.0, "probe_q20": -0.2, "probe_q80": 0.2, "probe_q99": 1.0}
    history = [{"epoch": 0, **probe}]
    history += [{"epoch": e, "train_error": 0.5 / e, "val_error": 0.6 / e, "train_loss": 2.0 / e,
                 "val_loss": 3.0 / e, **probe} for e in (1, 2)]
    curves, _ = train.plot_history(history, "bn, batch 8")
    error, loss = curves.axes
    assert [list(line.get_ydata()) for line in error.lines] == [[50.0, 25.0], [60.0, 30.0]]
    assert [list(line.get_ydata()) for line in loss.lines] == [[2.0, 1.0], [3.0, 1.5]]
    assert [line.get_label() for line in loss.lines] == ["train", "val"]


@pytest.mark.parametrize("norm, lrs", [
    ("nn", {1: 0.001, 100: 0.001}),
    ("ln", {1: 0.01, 100: 0.01}),
    ("bn", {1: 1.0, 2: 0.96, 3: 0.9216, 4: 0.884736}),          # 0.96 ** (epoch - 1)
    ("torch_bn", {1: 1.0, 2: 0.96, 3: 0.9216, 4: 0.884736}),
    ("in", {1: 1.0, 50: 1.0, 51: 0.1, 100: 0.1}),                # 0.1 after epoch 50
    ("bin", {1: 1.0, 30: 1.0, 31: 0.1, 100: 0.1}),               # 0.1 after epoch 30
    ("gn", {1: 0.1, 20: 0.1, 21: 0.01, 100: 0.01}),              # 0.01 after epoch 20
])
def test_report_learning_rate_schedules(norm, lrs):
    args = train.parse_args(["--norm", norm])
    assert {epoch: train.learning_rate(args, epoch) for epoch in lrs} == pytest.approx(lrs, rel=1e-12)


class FixedLogits(torch.nn.Module):
    """Returns the same logits whatever the images, with one parameter so a step can run."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits + self.offset


def test_predictions_ignore_outputs_beyond_the_classes():
    # 3 classes, r = 5 outputs; the largest output of images 0, 2, 3 and 4 is an extra one (3 or 4).
    # Among the classes: image 0 (class 2) -> 0, wrong; image 1 (class 2) -> 2, right; image 2
    # (class 0) -> 1, wrong; image 3 (class 1) -> 1, right; image 4 (class 0) -> 0, right: 3 of 5.
    # (An argmax over all outputs gets 1 of 5; clamping it to the last class gets 2 of 5.)
    logits = torch.tensor([[1.0, 0.0, 0.0, 0.0, 9.0],
                           [0.0, 0.0, 3.0, 0.0, 0.0],
                           [0.0, 2.0, 1.0, 5.0, 0.0],
                           [0.0, 4.0, 0.0, 0.0, 7.0],
                           [5.0, 0.0, 0.0, 0.0, 8.0]])
    labels = torch.tensor([2, 2, 0, 1, 0])
    mean, std = MEAN_STD["builtin10"]
    loader = ImageLoader(torch.zeros(5, 3, 4, 4, dtype=torch.uint8), labels, 5, shuffle=False, augment=False,
                         mean=mean, std=std)
    model = FixedLogits(logits)
    result = train.evaluate(model, loader, 3, DistContext(), bf16=False)
    assert result["accuracy"] == pytest.approx(3 / 5)
    # rows: true class, columns: predicted class
    assert result["confusion"].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    args = argparse.Namespace(schedule="constant", label_smoothing=0.0)
    _, accuracy = train.train_one_epoch(model, loader, optimizer, args, 1, 3, DistContext(), None, False)
    assert accuracy == pytest.approx(3 / 5)


def test_resume_ends_like_an_uninterrupted_run(tmp_path):
    # --milestones 1: the lr steps down at epoch 2, the resumed epoch.
    common = ["--norm", "bin", "--bs", "16", "--train-size", "64", "--milestones", "1",
              "--out-dir", str(tmp_path), *TINY]
    whole = main([*common, "--epochs", "2", "--run-name", "whole"])
    main([*common, "--epochs", "1", "--run-name", "split"])
    resumed = main([*common, "--epochs", "2", "--run-name", "split", "--resume"])
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "test_macro_f1", "train_loss",
                "best_epoch"):
        assert resumed[key] == whole[key], key
    drop = ("time", "epoch_time")
    clean = lambda rows: [{k: v for k, v in row.items() if k not in drop} for row in rows]  # noqa: E731
    split_rows = clean(metrics(tmp_path / "q4_normalization" / "split"))
    assert split_rows == clean(metrics(tmp_path / "q4_normalization" / "whole"))
    assert [row["lr"] for row in split_rows if "lr" in row] == [1.0, 0.1]


def test_resume_refuses_a_checkpoint_of_another_depth(tmp_path, capsys):
    common = ["--norm", "gn", "--bs", "16", "--train-size", "32", "--run-name", "depth",
              "--out-dir", str(tmp_path), *TINY]
    main([*common, "--n", "1", "--epochs", "1"])
    capsys.readouterr()
    config = tmp_path / "q4_normalization" / "depth" / "config.json"
    before = config.read_text()
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--n", "2", "--epochs", "2", "--resume"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume:") and "\n" not in err and "--n 1 (now 2)" in err
    assert config.read_text() == before  # the refused command did not overwrite the run's record


@pytest.mark.xdist_group("torchrun")
def test_torchrun_two_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "q4_normalization.train", "--norm", "gn", "--bs", "16", "--train-size", "64",
               "--epochs", "1", "--run-name", "ddp", "--out-dir", str(tmp_path), *TINY]
    result = run_torchrun(command, cwd=REPO, env=env, timeout=240)
    assert result.returncode == 0, torchrun_failure(result)
    assert result.stdout.count("Epoch 1/1") == 1  # only rank 0 prints
    run_dir = tmp_path / "q4_normalization" / "ddp"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_agree"] is True
    # Each rank evaluates a disjoint half; the all-reduced figures are those of the whole splits.
    assert summary["test_images"] == 32
    check_against_sklearn(run_dir, command[command.index("--norm"):])
    assert [m["step"] for m in metrics(run_dir)] == [0, 1]


def test_missing_cifar_is_one_line_and_exit_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--norm", "bin", "--bs", "8", "--data-root", str(tmp_path / "nothing"),
              "--wandb-mode", "disabled", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cifar10") and "\n" not in err and "cifar-10-batches-py" in err


def write_fake_cifar10(root: Path, per_batch: int = 12, test_count: int = 24) -> None:
    """torchvision's cifar-10-batches-py layout with a few random images."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for name, count in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test_count)]:
        images = torch.randint(0, 256, (count, 3072), dtype=torch.uint8, generator=generator)
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images.numpy(), "labels": (torch.arange(count) % 10).tolist()}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, handle)


def test_canonical_command_runs_on_cifar10_files(tmp_path):
    # The real CIFAR-10 path (no --smoke): the 60 training images split into train/val by seed.
    write_fake_cifar10(tmp_path / "data")
    argv = ["--norm", "bin", "--bs", "8", "--data-root", str(tmp_path / "data"), "--val-size", "20",
            "--n", "1", "--epochs", "1", "--probe-size", "8", "--wandb-mode", "disabled",
            "--out-dir", str(tmp_path)]
    summary = main(argv)
    assert summary["dataset"] == "cifar10" and summary["smoke"] is False
    assert (summary["train_images"], summary["val_images"], summary["test_images"]) == (40, 20, 24)
    # The seed is in the run name, so a second seed does not overwrite the first.
    main([*argv, "--seed", "1"])
    first, second = (tmp_path / "q4_normalization" / f"bin-bs8-seed{seed}" for seed in (0, 1))
    assert json.loads((first / "config.json").read_text())["seed"] == 0
    assert json.loads((second / "config.json").read_text())["seed"] == 1


def test_bad_arguments_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--norm", "xx", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_diverged_run_is_recorded_and_exits_3(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--norm", "nn", "--bs", "16", "--train-size", "32", "--epochs", "1", "--lr", "1e6",
              "--run-name", "boom", "--out-dir", str(tmp_path), *TINY])
    assert exit_info.value.code == 3
    summary = json.loads((tmp_path / "q4_normalization" / "boom" / "summary.json").read_text())
    assert summary["diverged"] is True


def test_cpu_recipe_warm_up_cosine_and_linear_lr_scaling():
    # 10 epochs, warm-up over the first 10% of training: lr rises linearly to the peak, then a
    # cosine over the remaining 90% takes it to 0. Batch 8 scales the peak by 8/128.
    args = train.parse_args(["--recipe", "cpu", "--norm", "gn", "--lr", "0.1", "--epochs", "10"])
    assert (args.warmup, args.label_smoothing, args.decay_norm_bias) == (0.1, 0.1, False)
    assert train.learning_rate(args, 1, 0.0) == 0.0
    assert train.learning_rate(args, 1, 0.5) == pytest.approx(0.05)       # 5% done: half way up
    assert train.learning_rate(args, 2, 0.0) == pytest.approx(0.1)        # 10% done: the peak
    assert train.learning_rate(args, 6, 0.5) == pytest.approx(0.05)       # 55%: cos(pi / 2)
    assert train.learning_rate(args, 10, 1.0) == pytest.approx(0.0, abs=1e-15)
    small = train.parse_args(["--recipe", "cpu", "--norm", "gn", "--lr", "0.1", "--bs", "8",
                              "--epochs", "10"])
    assert train.learning_rate(small, 2, 0.0) == pytest.approx(0.1 * 8 / 128)
    # The other recipes keep their schedules unscaled and without warm-up.
    modern = train.parse_args(["--recipe", "modern", "--bs", "8", "--epochs", "10"])
    assert train.learning_rate(modern, 1, 0.0) == pytest.approx(0.1)


def test_resume_auto_starts_afresh_continues_and_leaves_a_finished_run(tmp_path, capsys):
    common = ["--norm", "gn", "--bs", "16", "--train-size", "32", "--out-dir", str(tmp_path), *TINY]
    whole = main([*common, "--epochs", "2", "--run-name", "whole"])
    # No checkpoint yet: --resume auto is a fresh start (plain --resume would be an error).
    first = main([*common, "--epochs", "1", "--run-name", "auto", "--resume", "auto"])
    assert first["epochs_run"] == 1
    resumed = main([*common, "--epochs", "2", "--run-name", "auto", "--resume", "auto"])
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert resumed["train_loss"] == whole["train_loss"]
    run_dir = tmp_path / "q4_normalization" / "auto"
    before = {name: (run_dir / name).read_bytes()
              for name in ("metrics.jsonl", "summary.json", "config.json")}
    capsys.readouterr()
    again = main([*common, "--epochs", "2", "--run-name", "auto", "--resume", "auto"])
    assert "nothing to do" in capsys.readouterr().out
    assert again == json.loads(before["summary.json"])
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    # A finished run with other settings is not "finished" for this command: it is continued
    # from its checkpoint (here one more epoch), not returned.
    longer = main([*common, "--epochs", "3", "--run-name", "auto", "--resume", "auto"])
    assert longer["epochs_run"] == 3


def test_reproduce_script_killed_mid_study_ends_like_an_uninterrupted_study(tmp_path):
    # Two rows of the table, 3 epochs each, one run at a time. The interrupted study is killed
    # (SIGKILL to the whole process group, as when a machine goes away) once its first run has
    # written an epoch checkpoint and before it finished; started again, it must skip nothing
    # that was unfinished, redo nothing that was finished, and end with the same summaries and
    # per-epoch records as the uninterrupted study.
    env = {**os.environ, "Q4_NORMS": "bn", "Q4_BS8_NORMS": "gn", "OMP_NUM_THREADS": "1"}
    flags = ["--smoke", "--wandb-mode", "disabled", "--epochs", "3", "--train-size", "64",
             "--val-size", "32", "--test-size", "32", "--probe-size", "8"]
    script = str(REPO / "scripts" / "reproduce_q4.sh")

    def study(out: Path) -> subprocess.Popen:
        return subprocess.Popen(["bash", script, *flags, "--out-dir", str(out)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    assert study(tmp_path / "whole").wait(timeout=600) == 0
    runs = tmp_path / "cut" / "smoke" / "q4_normalization"
    process = study(tmp_path / "cut")
    checkpoint = runs / "smoke-bn-bs128-seed0" / "checkpoints" / "last.pt"
    deadline = 600
    while not checkpoint.exists() and process.poll() is None and deadline > 0:
        time.sleep(0.05)
        deadline -= 0.05
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Killed mid-study: the first run between two epochs, the second not started.
    assert not (runs / "smoke-bn-bs128-seed0" / "summary.json").exists()
    assert not (runs / "smoke-gn-bs8-seed0" / "summary.json").exists()
    assert study(tmp_path / "cut").wait(timeout=600) == 0

    drop = ("time", "epoch_time")
    for name in ("smoke-bn-bs128-seed0", "smoke-gn-bs8-seed0"):
        whole_dir, cut_dir = tmp_path / "whole" / "smoke" / "q4_normalization" / name, runs / name
        whole_summary, cut_summary = (json.loads((d / "summary.json").read_text())
                                      for d in (whole_dir, cut_dir))
        for key in ("test_accuracy", "val_accuracy", "train_accuracy", "train_loss", "test_macro_f1",
                    "best_epoch", "epochs_run"):
            assert cut_summary[key] == whole_summary[key], (name, key)
        clean = lambda rows: [{k: v for k, v in row.items() if k not in drop} for row in rows]  # noqa: E731
        assert clean(metrics(cut_dir)) == clean(metrics(whole_dir)), name
    assert (tmp_path / "cut" / "smoke" / "logs" / "q4-bn-bs128.log").exists()


def test_wsd_schedule_warms_up_holds_the_peak_and_cools_down_linearly():
    # Warm-up over 2 epochs from 0, the peak (0.2 at batch 128; x 8/128 at batch 8) until the
    # plateau, then from the start of the epoch after it a linear fall to 0 over the cool-down.
    args = train.parse_args(["--recipe", "converge", "--norm", "bn", "--lr", "0.2"])
    assert (args.schedule, args.epochs, args.patience, args.cpu_bf16) == ("wsd", 60, 0, True)
    assert train.learning_rate(args, 1, 0.0) == 0.0
    assert train.learning_rate(args, 1, 0.5) == pytest.approx(0.05)    # a quarter of the way up
    assert train.learning_rate(args, 2, 0.5) == pytest.approx(0.15)
    assert train.learning_rate(args, 3, 0.0) == pytest.approx(0.2)
    assert train.learning_rate(args, 30, 0.7) == pytest.approx(0.2)     # no plateau yet
    cooldown = (20, 5)  # the peak up to epoch 20, then epochs 21-25 fall to 0
    assert train.learning_rate(args, 20, 0.9, cooldown) == pytest.approx(0.2)
    assert train.learning_rate(args, 21, 0.0, cooldown) == pytest.approx(0.2)
    assert train.learning_rate(args, 23, 0.5, cooldown) == pytest.approx(0.2 * (1 - 2.5 / 5))
    assert train.learning_rate(args, 25, 1.0, cooldown) == pytest.approx(0.0, abs=1e-15)
    small = train.parse_args(["--recipe", "converge", "--norm", "bn", "--lr", "0.2", "--bs", "8"])
    assert train.learning_rate(small, 3, 0.0) == pytest.approx(0.2 * 8 / 128)


def test_cooldown_starts_on_a_plateau_of_the_smoothed_accuracy_or_in_time_to_end_by_the_cap():
    defaults = train.parse_args(["--recipe", "converge", "--norm", "gn"])
    args = train.parse_args(["--recipe", "converge", "--norm", "gn", "--plateau-window", "3",
                             "--plateau-patience", "4", "--epochs", "60"])
    assert args.budget_check == 0  # a plateau test leaves no fixed budget to check
    assert train.smoothed([0.3, 0.6, 0.9, 0.3], 3) == pytest.approx([0.3, 0.45, 0.6, 0.6])
    # Noisy but rising: the raw values have no new best for 4 epochs after the lucky 0.50, the
    # 3-epoch means (0.40 0.43 0.44 0.46 0.47 ...) keep rising: no plateau.
    rising = [0.30, 0.40, 0.50, 0.40, 0.42, 0.46, 0.45, 0.48, 0.49]
    assert train.epochs_since_best(rising, 1) == 6
    assert train.epochs_since_best(rising, 3) == 0
    assert train.cooldown_plan(args, rising) is None
    # Flat after epoch 5: the mean of epochs 4-6 (0.60) stays the best; four epochs later the
    # cool-down starts, a quarter of the 10 epochs run, rounded up.
    flat = [0.3, 0.4, 0.5, 0.6, 0.6, 0.6, 0.58, 0.59, 0.58, 0.59]
    assert train.epochs_since_best(flat, 3) == 4
    assert train.cooldown_plan(args, flat[:9]) is None
    assert train.cooldown_plan(args, flat) == (10, 3)
    assert train.cooldown_plan(args, [0.5, 0.4, 0.3, 0.2, 0.1]) == (5, 2)   # at least 2 epochs
    steady = [i / 100 for i in range(48)]                                     # never a plateau
    assert train.cooldown_plan(args, steady[:47]) is None                    # 47 + 12 < 60
    assert train.cooldown_plan(args, steady) == (48, 12)                     # 48 + 12 = 60: ends at the cap
    short = train.parse_args(["--recipe", "converge", "--norm", "gn", "--epochs", "10",
                              "--plateau-window", "3", "--plateau-patience", "4"])
    assert train.cooldown_plan(short, steady[:8]) == (8, 2)
    assert train.cooldown_plan(short, flat[:9]) == (9, 1)                   # cut to the epoch left


def test_converge_recipe_cools_down_over_the_last_fifth_of_a_fixed_budget_and_checks_it_at_three_quarters():
    # The recipe's rule: no plateau test; the cool-down is a quarter of the epochs before it and ends
    # at epoch 60, so it starts after epoch 48 (47 + 12 = 59 would end early), whatever the accuracy.
    args = train.parse_args(["--recipe", "converge", "--norm", "gn"])
    assert (args.plateau_patience, args.cooldown, args.epochs, args.budget_check) == (0, 0.25, 60, 0.75)
    flat = [0.5] * 60  # a plateau from epoch 1 on starts nothing
    assert all(train.cooldown_plan(args, flat[:e]) is None for e in range(1, 48))
    assert train.cooldown_plan(args, flat[:48]) == (48, 12)
    # The check is the schedule of a 45-epoch run (0.75 x 60): cool-down after epoch 36 (36 + 9 = 45;
    # 35 + 9 = 44 would end early), branched off the run's constant phase, which lasts to epoch 48.
    assert train.budget_check_plan(args) == (45, (36, 9))
    # Too short to branch: 4 epochs (cool-down after epoch 2) checked at 3 (cool-down after epoch 1,
    # inside the warm-up, but still before the run's own: allowed); 2 epochs at 2: none.
    short = train.parse_args(["--recipe", "converge", "--norm", "gn", "--epochs", "4"])
    assert train.budget_check_plan(short) == (3, (1, 2))
    assert train.budget_check_plan(train.parse_args(["--recipe", "converge", "--norm", "gn",
                                                     "--epochs", "2"])) is None
    with pytest.raises(SystemExit):  # a plateau may start the run's cool-down before the check's
        train.parse_args(["--recipe", "converge", "--norm", "gn", "--plateau-patience", "6",
                          "--budget-check", "0.75"])


def test_budget_check_branch_is_the_shorter_runs_end(tmp_path):
    # 8 epochs checked at 0.75: the branch leaves the constant phase after epoch 4 and cools down over
    # epochs 5-6 as a 6-epoch run does, from the same weights, optimizer and random streams. So its
    # losses and accuracies are that run's, and check_gain is the difference of the two runs' best
    # validation accuracies.
    common = ["--norm", "bn", "--recipe", "converge", "--bs", "16", "--train-size", "64",
              "--warmup-epochs", "1", "--no-cpu-bf16", "--out-dir", str(tmp_path), *TINY]
    long = main([*common, "--epochs", "8", "--run-name", "long"])
    short = main([*common, "--epochs", "6", "--budget-check", "0", "--run-name", "short"])
    assert (long["check_epochs"], long["check_cooldown_after_epoch"]) == (6, 4)
    assert long["cooldown_after_epoch"] == 6
    assert short["cooldown_after_epoch"] == 4 and "check_epochs" not in short
    branch = [row for row in metrics(tmp_path / "q4_normalization" / "long") if "check_epoch" in row]
    own = [row for row in metrics(tmp_path / "q4_normalization" / "short") if row.get("epoch", 0) >= 5]
    assert [row["check_epoch"] for row in branch] == [5, 6] == [row["epoch"] for row in own]
    assert [row["step"] for row in branch] == [9, 10]  # after the run's own 8 epochs
    for mine, theirs in zip(branch, own):
        for key in ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert mine[f"check_{key}"] == pytest.approx(theirs[key], rel=1e-6), key
    assert long["check_val_accuracy"] == short["val_accuracy"]
    assert long["check_gain"] == pytest.approx(long["val_accuracy"] - short["val_accuracy"])


def test_wsd_run_refuses_to_resume_with_another_budget(tmp_path, capsys):
    # The cool-down's start and the budget check's branch are planned from --epochs: a 4-epoch run
    # resumed as a 6-epoch one would be neither. One line naming the flag, exit 1, nothing changed.
    common = ["--norm", "bn", "--recipe", "converge", "--bs", "16", "--train-size", "32", "--no-cpu-bf16",
              "--budget-check", "0", "--run-name", "budget", "--out-dir", str(tmp_path), *TINY]
    main([*common, "--epochs", "4"])
    run_dir = tmp_path / "q4_normalization" / "budget"
    before = (run_dir / "summary.json").read_text(), (run_dir / "metrics.jsonl").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "--epochs", "6", "--resume"])
    assert exit_info.value.code == 1
    assert "--epochs 4 (now 6)" in capsys.readouterr().err
    assert ((run_dir / "summary.json").read_text(), (run_dir / "metrics.jsonl").read_text()) == before


def test_wsd_run_stops_after_its_cool_down_and_resumes_inside_it(tmp_path, monkeypatch):
    # Plateau patience 1 on the raw validation accuracy and a cool-down of half the epochs before
    # it, at most 6 epochs on built-in data: the cool-down starts after the first epoch without a
    # better validation accuracy (or when a later start could not end by epoch 6), and the run ends
    # with it.
    common = ["--norm", "bn", "--recipe", "converge", "--bs", "16", "--train-size", "64", "--epochs", "6",
              "--plateau-patience", "1", "--plateau-window", "1", "--warmup-epochs", "1", "--cooldown", "0.5",
              "--no-cpu-bf16",
              "--out-dir", str(tmp_path), *TINY]
    whole = main([*common, "--run-name", "whole"])
    rows = [row for row in metrics(tmp_path / "q4_normalization" / "whole") if "lr" in row]
    val = [row["val_accuracy"] for row in rows]
    length = lambda epoch: max(2, -(-epoch // 2))  # noqa: E731  ceil(epoch / 2), at least 2
    # The first epoch after the warm-up that is worse than an earlier one (window 1: the raw
    # values; a tie is a new best), or that leaves no room for a later start.
    start = next(e for e in range(1, 7) if (e > 1 and val[e - 1] < max(val[:e - 1])) or e + length(e) >= 6)
    assert whole["cooldown_after_epoch"] == start
    assert whole["epochs_run"] == len(rows) == min(6, start + length(start))
    # The lr logged per epoch is its last step's: the peak up to the cool-down, then
    # peak * (1 - (k - 1/4) / length) in the k-th epoch of it (4 steps per epoch: 64 images / 16).
    peak, cool = 0.2 * 16 / 128, min(length(start), 6 - start)
    for row in rows[1:]:
        k = row["epoch"] - start
        assert row["lr"] == pytest.approx(peak if k <= 0 else peak * (1 - (k - 1 / 4) / cool)), row["epoch"]

    # Interrupted after epoch `start` + 1 (inside the cool-down) and resumed: the same run.
    real_epoch = train.train_one_epoch

    def interrupted(*args, **kwargs):
        if args[4] == start + 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        main([*common, "--run-name", "cut"])
    monkeypatch.setattr(train, "train_one_epoch", real_epoch)
    resumed = main([*common, "--run-name", "cut", "--resume"])
    for key in ("val_accuracy", "test_accuracy", "train_loss", "best_epoch", "epochs_run",
                "cooldown_after_epoch"):
        assert resumed[key] == whole[key], key
    drop = ("time", "epoch_time")
    clean = lambda rows: [{k: v for k, v in row.items() if k not in drop} for row in rows]  # noqa: E731
    runs = tmp_path / "q4_normalization"
    assert clean(metrics(runs / "cut")) == clean(metrics(runs / "whole"))


def test_normalize_keeps_float32_statistics_under_cpu_bf16_autocast():
    # Under CPU autocast the convolutions hand bf16 tensors to the norms. The layers keep them in
    # bf16 but take the statistics in float32: on rows whose mean is 13 times their spread (mean
    # 40, std 3), E[x^2] - E[x]^2 in bf16 would lose every digit of the variance. Outputs, input
    # gradients, parameter gradients and running statistics must match the float32 layer applied
    # to the same (bf16-valued) input within bf16's resolution, in either memory format.
    from q4_normalization.norms import NORMS

    torch.manual_seed(0)
    x = (torch.randn(4, 16, 5, 5) * 3 + 40).to(torch.bfloat16)
    dy = torch.randn(4, 16, 5, 5).to(torch.bfloat16)
    for norm, layout in [(norm, torch.contiguous_format) for norm in ("bn", "in", "bin", "ln", "gn")] + \
            [("gn", torch.channels_last), ("bin", torch.channels_last)]:
        x, dy = x.contiguous(memory_format=layout), dy.contiguous(memory_format=layout)
        low, ref = NORMS[norm](16), NORMS[norm](16)
        for layer in (low, ref):
            with torch.no_grad():
                layer.weight.copy_(torch.linspace(0.5, 1.5, 16))
                if norm == "bin":
                    layer.rho.copy_(torch.linspace(0, 1, 16))
        x_low, x_ref = x.clone().requires_grad_(), x.float().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = low(x_low)
        assert y.dtype == torch.bfloat16, norm
        y.backward(dy)
        y_ref = ref(x_ref)
        y_ref.backward(dy.float())
        assert x_low.grad.dtype == torch.bfloat16
        torch.testing.assert_close(y.float(), y_ref, rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(x_low.grad.float(), x_ref.grad, rtol=2e-2, atol=2e-2)
        for name, parameter in low.named_parameters():
            torch.testing.assert_close(parameter.grad, dict(ref.named_parameters())[name].grad,
                                       rtol=2e-2, atol=5e-2)
        for name, buffer in low.named_buffers():
            torch.testing.assert_close(buffer, dict(ref.named_buffers())[name], rtol=1e-3, atol=1e-3)

def test_converge_sweep_widens_the_grid_until_every_pick_lies_inside(tmp_path):
    # reproduce_q4.sh --recipe converge with a stand-in `python` whose training runs only write a
    # summary: validation accuracy peaks at lr 0.8 for BatchNorm (the grid 0.2 0.4 0.8 grows to 1.6
    # and stops), at lr 0.05 for GroupNorm (0.05 0.1 0.2 grows down to 0.025 and stops), and
    # InstanceNorm diverges above 0.1 (0.1 0.2 0.4: 0.1 wins at the bottom edge, 0.05 does worse).
    # select_lr runs for real. The table's runs then get the picks; torch_bn takes bn's.
    # The scripts run from a scratch copy without .venv, which _env.sh would put before the stub.
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    for script in (REPO / "scripts").glob("*.sh"):
        shutil.copy(script, work / "scripts" / script.name)
    commands = tmp_path / "commands"
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(f"""#!/bin/sh
if [ "$1" != "-m" ] || [ "$2" != "q4_normalization.train" ]; then exec "{sys.executable}" "$@"; fi
echo "$@" >> "{commands}"
exec "{sys.executable}" - "$@" <<'PY'
import json, math, pathlib, sys
argv = sys.argv[1:]
value = lambda flag: argv[argv.index(flag) + 1]
norm, lr, out = value("--norm"), float(value("--lr")), value("--out-dir")
name = value("--run-name") if "--run-name" in argv else f"{{norm}}-table"
peak = {{"bn": 0.8, "gn": 0.05, "in": 0.1, "bin": 0.2, "nn": 0.02, "ln": 0.05}}.get(norm, 0.2)
score = 0.9 - abs(math.log2(lr / peak)) / 10
summary = {{"diverged": True}} if norm == "in" and lr > 0.1 else {{"val_accuracy": score}}
folder = pathlib.Path(out) / "q4_normalization" / name
folder.mkdir(parents=True, exist_ok=True)
(folder / "config.json").write_text(json.dumps({{"norm": norm, "lr": lr}}))
(folder / "summary.json").write_text(json.dumps(summary))
PY
""")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
           "Q4_NORMS": "bn gn in torch_bn", "Q4_BS8_NORMS": "", "PYTHONPATH": str(REPO)}
    subprocess.run(["bash", str(work / "scripts" / "reproduce_q4.sh"), "--recipe", "converge",
                    "--out-dir", str(tmp_path / "study")], cwd=work, env=env, capture_output=True, text=True,
                   timeout=300)
    issued = [line.split() for line in commands.read_text().splitlines()]

    def lrs(norm, sweep):
        return [float(words[words.index("--lr") + 1]) for words in issued
                if words[words.index("--norm") + 1] == norm and ("--run-name" in words) == sweep]

    assert lrs("bn", True) == [0.2, 0.4, 0.8, 1.6]
    assert lrs("gn", True) == [0.05, 0.1, 0.2, 0.025]       # 0.05 at the bottom edge: half it, then inside
    assert lrs("in", True) == [0.1, 0.2, 0.4, 0.05]        # a diverged lr is never widened past
    assert (lrs("bn", False), lrs("gn", False), lrs("in", False), lrs("torch_bn", False)) == \
        ([0.8], [0.05], [0.1], [0.8])
