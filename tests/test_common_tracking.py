"""common.tracking: the run folder holds what was logged, with W&B disabled, offline, or broken."""

import argparse
import json
import os

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.tracking import start_run  # noqa: E402


def make_args(tmp_path, mode="disabled", resume=False, run_name=None):
    return argparse.Namespace(out_dir=str(tmp_path), run_name=run_name, wandb_mode=mode,
                              wandb_project=None, resume=resume, seed=3)


def exercise(run):
    run.log({"loss": 1.5, "epoch": 1}, step=1)
    run.log({"loss": 0.5, "epoch": 2}, step=2)
    run.summary({"test_accuracy": 0.75})
    run.summary({"best_epoch": 2})
    run.table("per_class", ["class", "acc"], [["cat", 0.5], ["dog", 1.0]])
    fig = plt.figure()
    plt.plot([0, 1])
    run.image("curve", fig)
    plt.close(fig)
    run.finish()


def check_folder(directory):
    lines = [json.loads(x) for x in (directory / "metrics.jsonl").read_text().splitlines()]
    assert [(x["step"], x["loss"]) for x in lines] == [(1, 1.5), (2, 0.5)]
    assert json.loads((directory / "summary.json").read_text()) == {"test_accuracy": 0.75, "best_epoch": 2}
    config = json.loads((directory / "config.json").read_text())
    assert config["seed"] == 3 and "git_commit" in config["_provenance"]
    # The hardware beside the run (this machine's, as the standard library and torch see it).
    provenance = config["_provenance"]
    assert provenance["cpus"] == os.cpu_count() and provenance["torch_threads"] >= 1
    table = (directory / "tables" / "per_class.csv").read_text().splitlines()
    assert table == ["class,acc", "cat,0.5", "dog,1.0"]
    assert (directory / "curve.png").stat().st_size > 0


def test_disabled_mode_writes_the_run_folder(tmp_path):
    run = start_run(make_args(tmp_path), project="p", question="q9_demo", default_name="demo")
    assert run.wandb is None and run.dir == tmp_path / "q9_demo" / "demo"
    exercise(run)
    check_folder(run.dir)
    assert not (run.dir / "wandb").exists()


def test_offline_mode_writes_wandb_files_inside_the_run_folder(tmp_path):
    run = start_run(make_args(tmp_path, "offline", run_name="named"), project="p",
                    question="q9_demo", default_name="ignored")
    assert run.wandb is not None and run.dir.name == "named"
    exercise(run)
    check_folder(run.dir)
    assert list((run.dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_a_failing_wandb_warns_and_keeps_the_local_files(tmp_path):
    run = start_run(make_args(tmp_path), project="p", question="q9_demo", default_name="demo")

    class Broken:
        def log(self, *a, **k):
            raise ConnectionError("network down")

    run.wandb = Broken()
    with pytest.warns(RuntimeWarning, match="network down"):
        run.log({"loss": 1.5, "epoch": 1}, step=1)
    assert run.wandb is None  # one warning, then W&B is left alone
    run.log({"loss": 0.5, "epoch": 2}, step=2)
    lines = (run.dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_fresh_start_clears_old_records_and_resume_rewinds(tmp_path):
    args = make_args(tmp_path)
    run = start_run(args, project="p", question="q", default_name="r")
    for step in (1, 2, 3):
        run.log({"loss": float(step)}, step=step)
    run.summary({"done": False})
    resumed = start_run(make_args(tmp_path, resume=True), project="p", question="q", default_name="r")
    resumed.summary({"epoch": 3})  # merged into the summary the run had written
    assert json.loads((resumed.dir / "summary.json").read_text()) == {"done": False, "epoch": 3}
    resumed.rewind(2)  # the checkpoint was taken after step 2
    steps = [json.loads(x)["step"] for x in (resumed.dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    fresh = start_run(args, project="p", question="q", default_name="r")
    assert not (fresh.dir / "metrics.jsonl").exists() and not (fresh.dir / "summary.json").exists()
    fresh.summary({"epoch": 1})
    assert json.loads((fresh.dir / "summary.json").read_text()) == {"epoch": 1}


def test_resumed_run_keeps_each_earlier_sittings_start_and_commit(tmp_path):
    def provenance():
        return json.loads((tmp_path / "q" / "r" / "config.json").read_text())["_provenance"]

    start_run(make_args(tmp_path), project="p", question="q", default_name="r")
    first = provenance()
    assert "earlier_sittings" not in first
    # Made-up start times, so that the three sittings differ whatever the clock says.
    config = json.loads((tmp_path / "q" / "r" / "config.json").read_text())
    config["_provenance"].update(started="2026-11-30T03:00:00+0000", git_commit="aaaa")
    (tmp_path / "q" / "r" / "config.json").write_text(json.dumps(config))
    start_run(make_args(tmp_path, resume=True), project="p", question="q", default_name="r")
    second = provenance()
    assert second["earlier_sittings"] == [{"started": "2026-11-30T03:00:00+0000", "git_commit": "aaaa"}]
    start_run(make_args(tmp_path, resume=True), project="p", question="q", default_name="r")
    assert provenance()["earlier_sittings"] == [
        {"started": "2026-11-30T03:00:00+0000", "git_commit": "aaaa"},
        {"started": second["started"], "git_commit": second["git_commit"]}]
    start_run(make_args(tmp_path), project="p", question="q", default_name="r")  # a fresh start
    assert "earlier_sittings" not in provenance()


def test_non_zero_rank_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    run = start_run(make_args(tmp_path), project="p", question="q", default_name="r")
    run.log({"loss": 1.0}, step=1)
    run.summary({"x": 1})
    assert not (tmp_path / "q").exists()
