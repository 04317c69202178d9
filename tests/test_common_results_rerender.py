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
def rendering_root(tmp_path):
    """A scratch copy of the layout the committed reports were rendered in: run from the
    repository root with `--runs-dir results/runs --out results/qN.md`. Here results/runs is a
    link to the committed records, so the reports' relative links and named paths come out the
    same while their files are written to the scratch folder."""
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs").symlink_to(RESULTS / "runs", target_is_directory=True)
    before = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path / "results"
    os.chdir(before)


@pytest.mark.parametrize("report", COMMITTED)
def test_committed_study_report_rerenders_byte_for_byte(report, rendering_root):
    module = importlib.import_module(f"{STUDIES[report]}.report")
    module.main(["--runs-dir", "results/runs", "--out", f"results/{report}.md"])
    assert (rendering_root / f"{report}.md").read_text() == (RESULTS / f"{report}.md").read_text()


def test_results_readme_rerenders_byte_for_byte(rendering_root):
    import runpy

    # The page links the study reports that lie beside it: give the rendering the same neighbours.
    for report in COMMITTED:
        (rendering_root / f"{report}.md").write_text("")
    render = runpy.run_path(str(ROOT / "scripts" / "render_results.py"))["main"]
    render(["--runs-dir", "results/runs", "--out", "results/README.md"])
    assert (rendering_root / "README.md").read_text() == (RESULTS / "README.md").read_text()
