"""The reproduce scripts' run queue (scripts/_env.sh: --jobs, submit, wait_all) on stub commands
in a scratch folder: how many runs go at once, per-run logs, a failed run that stops neither the
others nor goes unnoticed, the threads each run gets; and reproduce_q2.sh --smoke --jobs 2 against
the same script run one run at a time."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV_SH = REPO / "scripts" / "_env.sh"


def queue(tmp_path: Path, body: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `body` in bash after sourcing _env.sh and parse_reproduce_args(args), in tmp_path."""
    script = f'source "{ENV_SH}"\ncd "{tmp_path}"\nparse_reproduce_args "$@"\n{body}\n'
    return subprocess.run(["bash", "-c", script, "queue", *args], capture_output=True, text=True,
                          env=env if env is not None else os.environ.copy(), timeout=120)


# Each stub run notes its start and end in one shared file, then prints a line of its own.
STUB = """
stub() {  # stub NAME SECONDS [STATUS]
    echo "start $1" >> "$EVENTS"
    sleep "$2"
    echo "end $1" >> "$EVENTS"
    echo "output of $1 (OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset})"
    return "${3:-0}"
}
EVENTS="$PWD/events"
"""


def most_at_once(events_file: Path) -> int:
    running = peak = 0
    for line in events_file.read_text().splitlines():
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_jobs_bounds_the_runs_at_once_and_each_run_has_its_log(tmp_path, jobs):
    body = STUB + "for i in 1 2 3 4 5; do submit run$i stub run$i 0.6; done\nwait_all\necho ALL DONE"
    proc = queue(tmp_path, body, "--smoke", "--jobs", str(jobs))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("ALL DONE")
    assert most_at_once(tmp_path / "events") == jobs
    logs = tmp_path / "runs" / "smoke" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [f"run{i}.log" for i in range(1, 6)]
    for i in range(1, 6):
        assert (logs / f"run{i}.log").read_text().splitlines()[0].startswith(f"output of run{i} ")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failed_run_stops_neither_the_others_nor_goes_unnoticed(tmp_path, jobs):
    body = STUB + """
submit first stub first 0.3
submit broken stub broken 0.1 5
submit third stub third 0.3
submit fourth stub fourth 0.1
wait_all
echo REPORT RENDERED"""
    proc = queue(tmp_path, body, "--jobs", str(jobs))
    assert proc.returncode != 0
    assert "REPORT RENDERED" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert "1 run(s) failed: broken" in last and "first" not in last
    events = (tmp_path / "events").read_text().splitlines()
    ended = [line.split()[1] for line in events if line.startswith("end")]
    assert sorted(ended) == ["broken", "first", "fourth", "third"]
    for name in ("first", "broken", "third", "fourth"):
        assert (tmp_path / "runs" / "logs" / f"{name}.log").read_text().startswith(f"output of {name} ")


@pytest.mark.parametrize("diverged_is_result, expected", [(1, 0), (0, 1)])
def test_a_diverged_run_counts_as_done_only_where_the_script_says_so(tmp_path, diverged_is_result, expected):
    body = STUB + f"DIVERGED_IS_RESULT={diverged_is_result}\nsubmit nan stub nan 0 3\nwait_all"
    proc = queue(tmp_path, body, "--jobs", "2")
    assert proc.returncode == expected


@pytest.mark.parametrize("jobs, preset, expected", [
    ("1", None, "unset"),
    ("2", None, str(max(1, os.sysconf("SC_NPROCESSORS_ONLN") // 2))),
    ("64", None, "1"),
    ("2", "7", "7"),
])
def test_each_run_gets_a_share_of_the_cores_unless_the_caller_chose(tmp_path, jobs, preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if preset is not None:
        env["OMP_NUM_THREADS"] = preset
    proc = queue(tmp_path, STUB + "submit one stub one 0\nwait_all", "--jobs", jobs, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"(OMP_NUM_THREADS={expected})" in (tmp_path / "runs" / "logs" / "one.log").read_text()


def test_jobs_is_taken_out_of_the_flags_passed_to_the_runs(tmp_path):
    body = 'echo "jobs=$JOBS runs=$RUNS extra=${EXTRA[*]} smoke=${SMOKE[*]}"'
    proc = queue(tmp_path, body, "--seed", "1", "--jobs=3", "--smoke", "--epochs", "2")
    assert proc.stdout.strip() == "jobs=3 runs=runs/smoke extra=--seed 1 --epochs 2 smoke=--smoke"


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--jobs", "two"], ["--jobs"], ["--jobs=-1"]])
def test_a_bad_jobs_value_is_a_one_line_usage_error(tmp_path, args):
    proc = queue(tmp_path, "echo STARTED", *args)
    assert proc.returncode == 2
    assert "STARTED" not in proc.stdout
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --jobs")


def test_reproduce_q2_smoke_with_two_jobs_equals_one_at_a_time(tmp_path):
    """The whole Q2 grid (4 runs, 1 epoch each) in two copies of the scripts folder, so that
    runs/ and reports/ land in tmp_path, with the same thread count: every run's summary,
    metrics (less the wall-clock time) and config, and the rendered report, are the same."""
    env = os.environ.copy()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["OMP_NUM_THREADS"] = "1"
    roots = {}
    for label, jobs in (("sequential", []), ("parallel", ["--jobs", "2"])):
        root = roots[label] = tmp_path / label
        (root / "scripts").mkdir(parents=True)
        for name in ("_env.sh", "reproduce_q2.sh"):
            shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
        proc = subprocess.run(["bash", str(root / "scripts" / "reproduce_q2.sh"), "--smoke", *jobs,
                               "--epochs", "1", "--wandb-mode", "disabled"],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    def results(root: Path) -> dict:
        found = {"report": (root / "reports" / "q2.md").read_text(),
                 "logs": sorted(p.name for p in (root / "runs" / "smoke" / "logs").iterdir())}
        for run in sorted((root / "runs" / "smoke" / "q2_transfer").iterdir()):
            config = json.loads((run / "config.json").read_text())
            config.pop("_provenance")
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            for record in metrics:
                record.pop("time")
            found[run.name] = {"summary": json.loads((run / "summary.json").read_text()),
                               "metrics": metrics, "config": config}
        return found

    sequential, parallel = results(roots["sequential"]), results(roots["parallel"])
    assert len(sequential) == 2 + 4
    orders = ("c100-c10", "c10-c100", "c10", "c100")
    assert sequential["logs"] == sorted(f"q2-{order}.log" for order in orders)
    assert parallel == sequential


def submitted_commands(tmp_path: Path, script: str, *args: str) -> list[str]:
    """The commands `script` runs, recorded by a stub `python` in a copy of scripts/ with no venv."""
    (tmp_path / "scripts").mkdir()
    for name in ("_env.sh", script):
        shutil.copy(REPO / "scripts" / name, tmp_path / "scripts" / name)
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "$*" >> "$COMMANDS"\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}",
           "COMMANDS": str(tmp_path / "commands")}
    proc = subprocess.run(["bash", str(tmp_path / "scripts" / script), *args], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return (tmp_path / "commands").read_text().splitlines()


@pytest.mark.parametrize("script, module, row", [
    ("reproduce_q5.sh", "q5_ner_crf.train", "--char --layer-norm gates --crf"),
    ("reproduce_q6.sh", "q6_cnn_wandb.train", "--config 1 --augment"),
])
@pytest.mark.parametrize("args, seeds", [((), ["0", "1", "2"]), (("--smoke",), ["0"]),
                                         (("--seed", "5"), ["5"])])
def test_the_headline_row_runs_three_seeds_in_the_real_data_mode(tmp_path, script, module, row, args, seeds):
    commands = submitted_commands(tmp_path, script, *args)
    headline = [c for c in commands if f"-m {module} " in c and row in c
                and ("--recipe modern" in c or module != "q5_ner_crf.train")]
    # a run without --seed is seed 0; the last --seed on a command line wins
    found = [c.split("--seed ")[-1].split()[0] if "--seed " in c else "0" for c in headline]
    assert found == seeds
