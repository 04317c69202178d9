"""The figures the READMEs quote come from committed outputs, not from a hand that typed them:
every benchmark line in the top-level README's benchmark table is the last line of the recorded
output file the same row links to (benchmarks/record.sh writes them with the machine they ran on),
and every results/ figure a README quotes as `results/<file>: <figure>` is in that file."""

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
