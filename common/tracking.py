"""Run tracking: Weights & Biases plus a local run folder that always holds everything.

    run = start_run(args, project="Q4-normalization", question="q4_normalization",
                    default_name=f"{args.norm}-bs{args.bs}")
    run.log({"train_loss": 0.7, "epoch": 1}, step=1)
    run.summary({"test_accuracy": 0.81})
    run.finish()

writes `<out-dir>/q4_normalization/<run-name>/`:

    config.json     every argument, the git commit, the command line, library versions
    metrics.jsonl   one JSON object per `log()` call ({"step": ..., **metrics})
    summary.json    the final figures (rewritten atomically on every `summary()`)
    tables/*.csv    every `table()`
    *.png           every `image()` given a matplotlib figure
    wandb/          W&B's own files (offline mode by default; `wandb sync` uploads them)

W&B is optional: `--wandb-mode disabled` skips it, and if W&B fails to start or to log, the run
goes on with one warning and the local files stay complete. Under torchrun only rank 0 writes;
the other ranks get a run whose methods do nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from common.atomic import atomic_write_json, atomic_write_text, to_jsonable


def git_commit() -> str | None:
    """The current commit of the repository holding this file (with `-dirty` when modified)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not commit:
        return None
    return commit + ("-dirty" if dirty else "")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class Run:
    """A run folder plus an optional W&B run. Every method is safe to call when W&B is off."""

    def __init__(self, directory: Path, config: dict[str, Any], wandb_run: Any = None,
                 active: bool = True):
        self.dir = Path(directory)
        self.config = config
        self.wandb = wandb_run
        self.active = active
        self._summary: dict[str, Any] = {}
        if active:
            self.dir.mkdir(parents=True, exist_ok=True)
            summary_path = self.dir / "summary.json"
            if summary_path.exists():
                self._summary = json.loads(summary_path.read_text())

    # ---- local files -------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Append one line to metrics.jsonl and send the same values to W&B."""
        if not self.active:
            return
        record = {"step": step, "time": round(time.time(), 3), **to_jsonable(dict(metrics))}
        with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self._wandb_call("log", lambda run: run.log(dict(metrics), step=step))

    def rewind(self, step: int) -> None:
        """Drop metrics.jsonl lines logged after `step` (used by --resume, so that the steps
        replayed after the last checkpoint are not recorded twice)."""
        path = self.dir / "metrics.jsonl"
        if not self.active or not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            if line.strip():
                logged_at = json.loads(line).get("step")
                if logged_at is None or logged_at <= step:
                    kept.append(line + "\n")
        atomic_write_text(path, "".join(kept))

    def summary(self, values: Mapping[str, Any]) -> None:
        """Merge `values` into summary.json (written atomically) and the W&B summary."""
        if not self.active:
            return
        self._summary.update(to_jsonable(dict(values)))
        atomic_write_json(self.dir / "summary.json", self._summary)
        self._wandb_call("summary", lambda run: run.summary.update(dict(values)))

    def table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path | None:
        """Write `tables/<key>.csv` and log a `wandb.Table` under `key`."""
        if not self.active:
            return None
        rows = [list(to_jsonable(list(row))) for row in rows]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        path = atomic_write_text(self.dir / "tables" / f"{key}.csv", buffer.getvalue())

        def send(run):
            import wandb

            run.log({key: wandb.Table(columns=list(columns), data=rows)})

        self._wandb_call("table", send)
        return path

    def image(self, key: str, figure_or_path: Any, caption: str | None = None) -> Path | None:
        """Save a matplotlib figure as `<key>.png` in the run folder (or take an existing image
        file) and log it as a `wandb.Image`."""
        if not self.active:
            return None
        if isinstance(figure_or_path, (str, os.PathLike)):
            path = Path(figure_or_path)
        else:
            from common.report import save_figure

            path = save_figure(figure_or_path, self.dir / f"{key}.png")

        def send(run):
            import wandb

            run.log({key: wandb.Image(str(path), caption=caption)})

        self._wandb_call("image", send)
        return path

    def wandb_log(self, build: Any) -> None:
        """Log W&B-only objects (e.g. `wandb.plot.confusion_matrix`): `build(wandb)` returns the
        dict to log. Skipped when W&B is off; the caller writes the local equivalent itself."""
        def send(run):
            import wandb

            run.log(build(wandb))

        self._wandb_call("wandb_log", send)

    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run (flushes offline files)."""
        self._wandb_call("finish", lambda run: run.finish(exit_code=exit_code))
        self.wandb = None

    # ---- W&B -----------------------------------------------------------------------------
    def _wandb_call(self, what: str, call) -> None:
        if self.wandb is None:
            return
        try:
            call(self.wandb)
        except Exception as exc:  # W&B must never take a run down with it
            warnings.warn(f"W&B {what} failed ({type(exc).__name__}: {exc}); "
                          f"continuing with the local run folder only", RuntimeWarning, stacklevel=3)
            self.wandb = None


def run_config(args: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """vars(args) plus provenance: git commit, command line, python/torch versions, host, hardware."""
    import torch

    config = dict(vars(args)) if args is not None else {}
    config.update(extra or {})
    config["_provenance"] = {
        "git_commit": git_commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "host": platform.node(),
        # The hardware, so that a run's wall time can be read: cores seen, torch's threads, GPU.
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }
    return config


def earlier_sittings(config_path: Path) -> list[dict[str, Any]]:
    """The sittings recorded in a run folder's config.json: its earlier ones and its last, each as
    its start and commit; none where the file is missing or unreadable (a run that never started)."""
    try:
        provenance = json.loads(config_path.read_text()).get("_provenance", {})
    except (OSError, ValueError, AttributeError):
        return []
    if not provenance.get("started"):
        return []
    return [*provenance.get("earlier_sittings", []),
            {"started": provenance["started"], "git_commit": provenance.get("git_commit")}]


def run_dir_for(args: Any, question: str, default_name: str) -> Path:
    """`<out-dir>/<question>/<run-name>`; --run-name wins over the script's default name."""
    name = getattr(args, "run_name", None) or default_name
    return Path(getattr(args, "out_dir", "runs")) / question / name


def finished_summary(directory: str | os.PathLike, args: Any,
                     must_match: Sequence[str]) -> dict[str, Any] | None:
    """The summary of a run folder whose run has finished (its summary.json holds a final result
    or `"diverged": true`) with the same settings `must_match` as `args` (from its config.json);
    None otherwise. What `--resume auto` checks before redoing a run."""
    directory = Path(directory)
    try:
        summary = json.loads((directory / "summary.json").read_text())
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not (summary.get("finished") or summary.get("diverged")):
        return None
    if any(config.get(key) != to_jsonable(getattr(args, key, None)) for key in must_match):
        return None
    return summary


def start_run(args: Any, project: str, question: str, default_name: str,
              extra_config: Mapping[str, Any] | None = None, group: str | None = None,
              job_type: str | None = None) -> Run:
    """Create the run folder, write config.json and start W&B in `args.wandb_mode`.

    A fresh start clears the folder's earlier metrics.jsonl and summary.json (checkpoints stay
    until the run overwrites them); `args.resume` keeps them so the run continues its records.
    """
    directory = run_dir_for(args, question, default_name)
    if not _is_main_process():
        return Run(directory, {}, None, active=False)
    directory.mkdir(parents=True, exist_ok=True)
    keep = getattr(args, "resume", False)
    if keep == "auto":  # a fresh start unless there is a checkpoint to continue from
        keep = any((directory / "checkpoints").glob("*.pt"))
    if not keep:
        for stale in ("metrics.jsonl", "summary.json"):
            (directory / stale).unlink(missing_ok=True)
    config = run_config(args, extra_config)
    if keep:  # a resumed run keeps when (and at which commit) each earlier sitting started
        config["_provenance"]["earlier_sittings"] = earlier_sittings(directory / "config.json")
    atomic_write_json(directory / "config.json", config)

    wandb_run = None
    mode = getattr(args, "wandb_mode", "offline")
    if mode != "disabled":
        try:
            import wandb

            wandb_run = wandb.init(
                project=getattr(args, "wandb_project", None) or project,
                name=directory.name, group=group, job_type=job_type,
                config=to_jsonable(config), dir=str(directory), mode=mode,
                reinit="finish_previous",
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
            )
        except Exception as exc:
            warnings.warn(f"W&B failed to start ({type(exc).__name__}: {exc}); "
                          f"continuing with the local run folder only", RuntimeWarning, stacklevel=2)
            wandb_run = None
    return Run(directory, config, wandb_run, active=True)
