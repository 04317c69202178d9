"""results/runs: every committed run is one that its study's reproduce script issues today, with
the command results/README.md names for that study (scripts/render_results.py STUDY_COMMANDS).

The scripts run in a scratch copy of scripts/ with a stub `python` that records each command
(Q4's learning-rate pick, select_lr, runs for real on a copy of the committed sweep). A recorded
command and a committed run are the same run when the command, parsed by the run's own script
today, gives the arguments the run recorded in its config.json: a flag renamed, a default changed
or a run made with flags no script passes (say --epochs 8) all fail here. Where a run is written,
with how many threads, whether it resumed and how it logs to W&B do not change its numbers and
are not compared."""

import importlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs"
NOT_COMPARED = {"out_dir", "threads", "resume", "wandb_mode", "wandb_project", "keep_checkpoints",
                "download", "run_name"}
# A recorded value that the script reads as a newer one: Q5's --layer-norm was a switch for Ba et
# al.'s cell before it took hidden|gates, and train.py reads layer_norm true as "gates".
SAME_AS = {("layer_norm", False): "none", ("layer_norm", True): "gates"}
# select_lr must answer for real: the table's learning rates come from the committed sweep.
STUB = f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "q4_normalization.select_lr" ]; then
    exec "{sys.executable}" "$@"
fi
# One argument per unit separator, one command per line, written at once: runs submitted with
# --jobs 2 record side by side.
line=$(printf '%s\\037' "$@")
printf '%s\\n' "$line" >> "$COMMANDS"
"""


def study_commands() -> dict[str, tuple[str, str]]:
    spec = importlib.util.spec_from_file_location("render_results", ROOT / "scripts" / "render_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.STUDY_COMMANDS


def out_dir_of(words: list[str]) -> str:
    """The --out-dir a command line passes, or the scripts' default."""
    return words[words.index("--out-dir") + 1] if "--out-dir" in words else "runs"


def issued_commands(tmp_path: Path, env_text: str, command: str) -> list[list[str]]:
    """The `python ...` argument lists that `command` (bash scripts/reproduce_qN.sh ...) runs."""
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    for script in (ROOT / "scripts").glob("*.sh"):
        shutil.copy(script, work / "scripts" / script.name)
    (work / "q4_normalization").symlink_to(ROOT / "q4_normalization")
    (work / "common").symlink_to(ROOT / "common")
    words = shlex.split(command)
    out_dir = out_dir_of(words)
    for sweep in (RUNS / "q4_lr_sweep", RUNS / "q4_lr_sweep_converge"):
        if "reproduce_q4.sh" in command and sweep.is_dir():
            shutil.copytree(sweep, (work / out_dir / sweep.name).resolve())
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
           "COMMANDS": str(tmp_path / "commands"), "PYTHONPATH": str(ROOT)}
    env.update(dict(item.split("=", 1) for item in shlex.split(env_text)))
    proc = subprocess.run(words, cwd=work, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "commands").read_text().splitlines()
    return [line.split("\037")[:-1] for line in lines]


def jsonable(value):
    return json.loads(json.dumps(value, default=str))


def parsed(argv: list[str], scratch: Path) -> tuple[str, dict]:
    """(script file name, arguments) of `-m module args...` as the module parses them today, in
    `scratch`, where the files one run hands to the next (Q1's weak labels, which Q5's train.py
    checks for) stand empty."""
    assert argv[0] == "-m", argv
    words = argv[2:]
    out_dir = out_dir_of(words)
    for word in words:
        if word.startswith(out_dir.rstrip("/") + "/") and Path(word).suffix:
            (scratch / word).parent.mkdir(parents=True, exist_ok=True)
            (scratch / word).touch()
    module = importlib.import_module(argv[1])
    before = os.getcwd()
    os.chdir(scratch)
    try:
        args = vars(module.parse_args(words))
    finally:
        os.chdir(before)
    return argv[1].rsplit(".", 1)[-1] + ".py", args


def comparable(args: dict) -> dict:
    """The arguments that decide a run's numbers, with paths under its --out-dir made relative."""
    out_dir = str(args.get("out_dir", "runs")).rstrip("/")
    kept = {}
    for key, value in jsonable(args).items():
        if key in NOT_COMPARED:
            continue
        if isinstance(value, str) and value.startswith(out_dir + "/"):
            value = "<out-dir>/" + value[len(out_dir) + 1:]
        kept[key] = value
    return kept


def committed_runs() -> list[Path]:
    return sorted(path.parent for path in RUNS.glob("**/config.json"))


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> dict[str, list[dict]]:
    """Every command the studies' commands issue, by script file name, parsed."""
    by_script: dict[str, list[dict]] = {}
    for study, (env_text, command) in study_commands().items():
        scratch = tmp_path_factory.mktemp(study)
        for argv in issued_commands(scratch, env_text, command):
            if argv[1].endswith(".report"):
                continue
            script, args = parsed(argv, scratch)
            by_script.setdefault(script, []).append(comparable(args))
    return by_script


ABSENT = object()  # a key the run's config.json does not have


def same(key: str, recorded, issued_value) -> bool:
    """A flag added after the run (absent from its record) matches only while it is off (None or
    false): then the run did what the flag's default does today."""
    if recorded is ABSENT:
        return issued_value is None or issued_value is False
    if isinstance(recorded, bool):
        recorded = SAME_AS.get((key, recorded), recorded)
    return recorded == issued_value


def differences(recorded: dict, issued_args: dict) -> list[str]:
    return [f"{key}: run {recorded.get(key, '<absent>')!r}, script {value!r}"
            for key, value in sorted(issued_args.items()) if not same(key, recorded.get(key, ABSENT), value)]


@pytest.mark.parametrize("run", committed_runs(), ids=lambda path: str(path.relative_to(RUNS)))
def test_every_committed_run_is_issued_by_its_study_command(run, issued):
    config = json.loads((run / "config.json").read_text())
    script = config["_provenance"]["command"].split()[0]
    candidates = issued.get(script, [])
    assert candidates, f"no study command runs {script}"
    recorded = comparable({key: value for key, value in config.items() if not key.startswith("_")})
    mismatches = [differences(recorded, args) for args in candidates]
    closest = min(mismatches, key=len)
    assert closest == [], (f"{run.relative_to(RUNS)} is not a run the study commands issue; "
                           f"closest issued command differs in " + "; ".join(closest))


def test_the_check_tells_a_changed_flag_from_an_equal_run(issued):
    """The comparison is not vacuous: the committed Q6 config-1 run matches its command, and the same
    record with one changed setting (epochs) matches none."""
    run = RUNS / "q6_cnn_wandb" / "config1-sgd-ce-lr0.001-bs64-val0.1-seed0"
    config = json.loads((run / "config.json").read_text())
    recorded = comparable({key: value for key, value in config.items() if not key.startswith("_")})
    assert any(differences(recorded, args) == [] for args in issued["train.py"])
    recorded["epochs"] += 1
    assert all(differences(recorded, args) for args in issued["train.py"])
