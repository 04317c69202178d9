"""Report tables and figures rendered from run folders, never typed by hand.

    runs = load_runs("runs/q4_normalization/*")
    rows = [[r.name, fmt_pct(r.summary["test_accuracy"])] for r in runs]
    text = markdown_table(["run", "test acc"], rows)
    plot_curves({r.name: r.series("epoch", "val_error") for r in runs}, "reports/q4_errors.png")
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from common.atomic import atomic_write, atomic_write_text
from common.errors import DataError


@dataclass
class RunRecord:
    """One run folder: its config, summary and logged metrics."""

    dir: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.dir.name

    def series(self, x: str, y: str) -> tuple[list[float], list[float]]:
        """(xs, ys) over the metrics lines that hold both keys."""
        points = [(m[x], m[y]) for m in self.metrics if x in m and y in m and m[y] is not None]
        return [p[0] for p in points], [p[1] for p in points]


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_run(run_dir: str | os.PathLike) -> RunRecord:
    """A run folder with a summary.json; DataError (one line) when there is none."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise DataError(f"no summary.json in {run_dir}: the run did not finish; re-run it first")
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    return RunRecord(run_dir, config, json.loads(summary_path.read_text()), read_metrics(run_dir))


def load_runs(patterns: str | Iterable[str]) -> list[RunRecord]:
    """Every run folder matching the glob pattern(s) that has a summary.json, sorted by path."""
    if isinstance(patterns, str):
        patterns = [patterns]
    dirs = sorted({Path(p) for pattern in patterns for p in glob.glob(pattern)
                   if (Path(p) / "summary.json").is_file()})
    return [load_run(d) for d in dirs]


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: numbers rounded, missing values as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * float(value):.{digits}f}%"


def spread_cell(values: Sequence[float], format_value: Callable[[float], str] = fmt,
                count: bool = True) -> str:
    """Several seeds' values as 'mean ± sample std (n=N)' (without the count if `count` is False),
    one value alone, none as an em dash; both figures formatted by `format_value`."""
    if not values:
        return "—"
    if len(values) == 1:
        return format_value(values[0])
    text = f"{format_value(statistics.fmean(values))} ± {format_value(statistics.stdev(values))}"
    return text + (f" (n={len(values)})" if count else "")


SEED_VERDICT_RULE = ("\"better\" or \"worse\" when the difference of the means over seeds exceeds two "
                     "standard errors (sqrt(s1²/n1 + s2²/n2), sample std), else \"no clear difference\"; "
                     "fewer than two seeds on either side give no verdict")


def beyond_noise(gap: float, error: float) -> bool:
    """The rule of every verdict in the reports: a gap counts only beyond 2 standard errors."""
    return abs(gap) > 2 * error


def seed_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """The seeds' values `a` against `b` by SEED_VERDICT_RULE: 'better', 'worse', 'no clear
    difference', or 'one seed' when either side has fewer than two values (no measured spread)."""
    if len(a) < 2 or len(b) < 2:
        return "one seed"
    error = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    difference = statistics.fmean(a) - statistics.fmean(b)
    if not beyond_noise(difference, error):
        return "no clear difference"
    return "better" if difference > 0 else "worse"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; cells go through `fmt`. `align` holds 'l' or 'r' per column
    (default: first column left, the others right)."""
    rows = [[fmt(cell) for cell in row] for row in rows]
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
               align: Sequence[str] | None = None) -> str:
    """A fixed-width table for the terminal, each column as wide as its widest cell, two spaces
    between columns; `align` as in `markdown_table` (default: first column left, the others right).
    The training scripts print their final figures with it."""
    rows = [[str(cell) for cell in row] for row in rows]
    headers = [str(header) for header in headers]
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) if side == "l" else cell.rjust(width)
                       for cell, width, side in zip(line, widths, align)).rstrip()
             for line in [headers, *rows]]
    return "\n".join(lines)


def data_kind(runs: Sequence[RunRecord]) -> str:
    """'smoke' when every run trained on built-in smoke data (`--smoke`, as its config or summary
    records it), 'real' when none did, 'mixed' otherwise: the first sentence of every report."""
    flags = {bool(run.config.get("smoke") or run.summary.get("smoke")) for run in runs}
    if flags == {True}:
        return "smoke"
    if flags == {False}:
        return "real"
    return "mixed"


def plot_curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike,
                title: str = "", xlabel: str = "epoch", ylabel: str = "", bands: Mapping[str, tuple[
                    Sequence[float], Sequence[float]]] | None = None, logy: bool = False) -> Path:
    """Line plot of several (xs, ys) series into a PNG; `bands[label] = (low, high)` shades a
    band around that series (e.g. mean +/- std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (xs, ys) in series.items():
        line, = ax.plot(xs, ys, marker="o" if len(xs) <= 25 else None, markersize=3, label=label)
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    path = save_figure(fig, path)
    plt.close(fig)
    return path


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120,
                                                         bbox_inches="tight"))


def write_report(path: str | os.PathLike, text: str) -> Path:
    """Write a markdown report atomically and print where it is."""
    path = atomic_write_text(path, text)
    print(f"wrote {path}")
    return path


def _timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def sittings(run: RunRecord) -> tuple[list[tuple[float, float]], bool]:
    """The run's sittings as (start, end) seconds, and whether their time is complete.

    A resumed run records the start of each earlier sitting (`earlier_sittings` in the config's
    provenance) beside the last one's `started`; a sitting ends at the last metrics line logged
    before the next one began (work lost with a stopped process is not counted). A run resumed
    before sittings were recorded has metrics lines from before its one recorded start: that time
    is counted from its first line, so its set-up is missing and the result is flagged incomplete.
    """
    provenance = run.config.get("_provenance", {})
    times = sorted(m["time"] for m in run.metrics if "time" in m)
    if not provenance.get("started") or not times:
        return [], False
    starts = sorted(_timestamp(earlier["started"]) for earlier in provenance.get("earlier_sittings", []))
    starts.append(_timestamp(provenance["started"]))
    complete = times[0] >= starts[0]
    if not complete:
        starts.insert(0, times[0])
    spans = []
    for start, following in zip(starts, [*starts[1:], math.inf]):
        inside = [t for t in times if start <= t < following]
        if inside:
            spans.append((start, inside[-1]))
    return spans, complete


def wall_time_s(run: RunRecord) -> float | None:
    """Seconds the run ran: each sitting's start to its last logged metrics line, added up."""
    spans, _ = sittings(run)
    return sum(end - start for start, end in spans) if spans else None


def run_command(run: RunRecord) -> str:
    """The command line that made the run, as `python -m <module> <flags>`."""
    command = run.config.get("_provenance", {}).get("command", "")
    script, _, flags = command.partition(" ")
    module = f"{run.dir.parent.name}.{script.removesuffix('.py')}" if script.endswith(".py") else script
    return f"python -m {module} {flags}".strip()


def provenance_section(runs: Sequence[RunRecord], runs_dir: str | os.PathLike) -> str:
    """Markdown: per run its command, commit (each sitting's, where a resumed run changed it), first
    start and wall time (added up over its sittings, see `sittings`); then the machine and the data
    checksums recorded beside the runs (`machine.txt`, `data.sha256` in `runs_dir`), if present."""
    rows = []
    for run in runs:
        provenance = run.config.get("_provenance", {})
        spans, complete = sittings(run)
        seconds = sum(end - start for start, end in spans) if spans else None
        wall = "—" if seconds is None else f"{'' if complete else '≥ '}{seconds / 60:.1f} min" + (
            f" ({len(spans)} sittings)" if len(spans) > 1 else "")
        commits = [earlier.get("git_commit") or "" for earlier in provenance.get("earlier_sittings", [])]
        commits = list(dict.fromkeys(c[:10] for c in [*commits, provenance.get("git_commit") or ""] if c))
        hardware = "—" if "cpus" not in provenance else (
            f"{provenance['gpu'] or 'CPU'}, {provenance['torch_threads']} of {provenance['cpus']} threads")
        first_start = min([provenance.get("started", ""), *[earlier["started"] for earlier in
                                                             provenance.get("earlier_sittings", [])]])
        rows.append([run.name, f"`{run_command(run)}`", ", ".join(commits), first_start, wall, hardware])
    headers = ["run", "command", "commit", "started", "wall time", "hardware"]
    parts = ["## Provenance\n", markdown_table(headers, rows, align=["l", "l", "l", "l", "r", "l"])]
    for name, title in (("machine.txt", "Machine"), ("data.sha256", "Data (sha256)")):
        path = Path(runs_dir) / name
        if path.is_file():
            parts.append(f"\n{title}:\n\n```\n{path.read_text().strip()}\n```\n")
    return "\n".join(parts)
