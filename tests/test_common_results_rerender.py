"""results/: every committed report is what its study's report script renders from results/runs
today, byte for byte (so no figure in it was typed or edited by hand, and none went stale when a
report script changed)."""

import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
STUDIES = {"q1": "q1_weak_supervision", "q2": "q2_transfer", "q3": "q3_active_learning",
           "q4": "q4_normalization", "q5": "q5_ner_crf", "q6": "q6_cnn_wandb"}
COMMITTED = sorted(path.stem for path in RESULTS.glob("q[1-6].md"))


@pytest.fixture
def in_repository_root():
    """The reports name their --runs-dir as given; the committed ones were rendered with
    `--runs-dir results/runs` from the repository root."""
    before = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(before)


@pytest.mark.parametrize("report", COMMITTED)
def test_committed_study_report_rerenders_byte_for_byte(report, tmp_path, in_repository_root):
    module = importlib.import_module(f"{STUDIES[report]}.report")
    module.main(["--runs-dir", "results/runs", "--out", str(tmp_path / f"{report}.md")])
    assert (tmp_path / f"{report}.md").read_text() == (RESULTS / f"{report}.md").read_text()


def test_results_readme_rerenders_byte_for_byte(tmp_path, in_repository_root):
    import runpy

    # The page links the study reports that lie beside it: give the rendering the same neighbours.
    for report in COMMITTED:
        (tmp_path / f"{report}.md").write_text("")
    render = runpy.run_path(str(ROOT / "scripts" / "render_results.py"))["main"]
    render(["--runs-dir", "results/runs", "--out", str(tmp_path / "README.md")])
    assert (tmp_path / "README.md").read_text() == (RESULTS / "README.md").read_text()
