"""The figures the READMEs quote come from committed outputs, not from a hand that typed them:
every benchmark line in the top-level README's benchmark table is the last line of the recorded
output file the same row links to (benchmarks/record.sh writes them with the machine they ran on),
and every decimal figure a README states is one that a committed output shows: a rendered report
(results/*.md), a recorded benchmark, or a run record under results/runs (summary.json,
metrics.jsonl), as printed or rounded to the README's number of decimals."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("q[1-6]_*/README.md"))]


def benchmark_rows() -> list[tuple[str, str]]:
    """(recorded file, quoted line) for every README table row that links a recorded output."""
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        link = re.search(r"\]\((benchmarks/results/[^)]+\.txt)\)", line)
        if line.startswith("|") and link:
            quoted = re.findall(r"`(ratio [^`]+)`", line)
            rows += [(link.group(1), text) for text in quoted]
    return rows


def test_every_quoted_benchmark_line_is_the_recorded_last_line():
    rows = benchmark_rows()
    assert rows, "the README's benchmark table links no recorded output"
    for path, quoted in rows:
        recorded = (ROOT / path).read_text().strip().splitlines()
        assert recorded[0].startswith("# python benchmarks/"), path  # the command it ran
        assert "load average at start" in recorded[1], path          # the machine and its load
        assert recorded[-1] == quoted, (path, quoted, recorded[-1])


def test_every_recorded_benchmark_output_is_quoted():
    quoted = {path for path, _ in benchmark_rows()}
    recorded = {f"benchmarks/results/{p.name}" for p in (ROOT / "benchmarks" / "results").glob("*.txt")}
    assert recorded == quoted


# Figures the READMEs cite from the literature rather than from this repository's outputs.
CITED = {
    "90.94": "Lample et al. 2016, BiLSTM-CRF test F1 on CoNLL-2003",
}
# A decimal number that is not part of a version (0.29.1), a path or a longer number.
FIGURE = re.compile(r"(?<![\w.])(-?\d+\.\d+)(?![\w.]*\d)(%?)")


def json_numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_numbers(item)


def committed_figures() -> set[str]:
    """Every committed figure as text with 1 to 4 decimals (a fraction also as a percentage)."""
    texts = [p.read_text() for p in (ROOT / "results").glob("*.md")]
    texts += [p.read_text() for p in (ROOT / "benchmarks" / "results").glob("*.txt")]
    numbers = {float(m.group(1)) for text in texts for m in FIGURE.finditer(text)}
    records = []
    for path in (ROOT / "results" / "runs").rglob("*.json*"):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        records += [json.loads(line) for line in lines if line.strip()]
    for record in records:
        for x in json_numbers(record):
            numbers.add(x)
            if abs(x) <= 1:
                numbers.add(100 * x)
    return {f"{x:.{d}f}" for x in numbers for d in range(1, 5)}


def test_every_decimal_figure_in_a_readme_is_a_committed_output():
    committed = committed_figures()
    unexplained = []
    for readme in READMES:
        for number, line in enumerate(readme.read_text().splitlines(), 1):
            for match in FIGURE.finditer(line):
                figure = match.group(1)
                if figure not in committed and figure not in CITED:
                    unexplained.append(f"{readme.relative_to(ROOT)}:{number}: {figure}{match.group(2)}")
    assert not unexplained, "\n".join(unexplained)
