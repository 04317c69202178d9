"""q6_cnn_wandb/wandb_report.py: the W&B Report is built without a network or an API key (never
saved here), its blocks come in the assignment's order, its runsets select the four
configurations, its text is theory.py's and report.py's, an offline call stops in one line, and
online (the server replaced by stand-ins) the combined confusion figure's run is what it shows."""

import re

import numpy as np
import pytest
import torch
import wandb
import wandb_workspaces.reports.v2 as wr
from PIL import Image
from wandb_workspaces import expr
from wandb_workspaces.reports.v2 import interface

from common.report import load_runs, save_figure
from q6_cnn_wandb import report, results, theory, wandb_report
from tests.test_q6_theory_report import make_runs


@pytest.fixture
def no_wandb_account(tmp_path, monkeypatch):
    """No API key anywhere, and any call to the W&B server fails the test."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".config" / "wandb"))

    def no_server(*args, **kwargs):
        raise AssertionError("the W&B server was contacted")

    monkeypatch.setattr(interface, "_get_api", no_server)


def leaves(runset):
    """{(section, name): (op, value)} of a runset's filters, parsed back from their string."""
    return {(f.key.section, f.key.name): (f.op, f.value)
            for f in expr.string_to_filterexpr_list(runset.filters)}


def logged_by_every_run():
    """{key: value} of what results.log_final_results logs to W&B, recorded on a stand-in run."""
    logged = {}

    class Recorder:
        active = False

        def image(self, key, figure):
            logged[key] = figure

        def wandb_log(self, build):
            logged.update(build(wandb))

    labels = torch.arange(20) % 10
    results.log_final_results(Recorder(), labels, labels.roll(1), torch.zeros(20, 3, 8, 8, dtype=torch.uint8),
                              [f"c{i}" for i in range(10)], "title", num_samples=4)
    return logged


def test_report_blocks_offline(tmp_path, monkeypatch, no_wandb_account):
    monkeypatch.setattr(report, "run_checks", lambda: theory.check_boolean_network())  # keep it fast
    make_runs(tmp_path / "runs", [0.60, 0.58, 0.10, 0.40], 0.80, pretrained=True)
    runs = load_runs(str(tmp_path / "runs" / "q6_cnn_wandb" / "*"))
    cnn = [run for run in runs if run.summary["kind"] == "cnn"]
    mlp = [run for run in runs if run.summary["kind"] == "resnet34_mlp"]
    built = wandb_report.build_report("someone", "Q6-cnn-wandb", "Q6 report", cnn, mlp, "fig123")

    assert (built.entity, built.project, built.title) == ("someone", "Q6-cnn-wandb", "Q6 report")
    assert isinstance(built.blocks[0], wr.MarkdownBlock)  # the introduction
    headings = [block.text for block in built.blocks if isinstance(block, wr.H1)]
    assert headings == ["Training curves of the four configurations", "Confusion matrices",
                        "Sample predictions", "The CNN's parameters",
                        "ResNet-34 features against the four configurations", "Theory"]
    sections = {}
    for block in built.blocks[1:]:
        if isinstance(block, wr.H1):
            sections[block.text] = []
        else:
            sections[list(sections)[-1]].append(block)

    curves, = sections["Training curves of the four configurations"]
    assert [panel.y for panel in curves.panels] == [["train_loss"], ["test_accuracy", "val_accuracy"],
                                                    ["test_loss"]]
    assert {panel.x for panel in curves.panels} == {"epoch"}
    four = leaves(curves.runsets[0])
    assert four[("config", "config_id")] == ("IN", [1, 2, 3, 4])
    assert four[("run", "Name")] == ("IN", ["config1", "config2", "config3", "config4"])

    figure, = sections["Confusion matrices"]
    assert leaves(figure.runsets[0]) == {("run", "ID"): ("=", "fig123")}
    assert figure.panels[0].media_keys == [wandb_report.FIGURE_KEY]

    samples, = sections["Sample predictions"]
    assert leaves(samples.runsets[0]) == four
    assert isinstance(logged_by_every_run()[samples.panels[0].table_name], wandb.Table)

    parameters, = sections["The CNN's parameters"]
    assert "**62,006**" in parameters.text  # 456 + 2,416 + 48,120 + 10,164 + 850, by hand

    text, charts = sections["ResNet-34 features against the four configurations"]
    # one seed per side: the numbers without a verdict
    assert "**Cannot judge from these runs**" in text.text and "80.00%" in text.text and "60.00%" in text.text
    assert leaves(charts.runsets[0]) == {("run", "Name"): ("IN", ["config1", "config2", "config3", "config4",
                                                                   "resnet"])}
    assert [type(panel) for panel in charts.panels] == [wr.BarPlot, wr.LinePlot]

    answers, = sections["Theory"]
    fenced = re.findall(r"```text\n(.*?)\n```", answers.text, flags=re.S)
    assert fenced == [answer() for answer, _ in theory.QUESTIONS]


@pytest.mark.parametrize("mode", [[], ["--wandb-mode", "disabled"], ["--wandb-mode", "online"]])
def test_cli_without_wandb_account_exits_2_in_one_line(mode, capsys, no_wandb_account):
    with pytest.raises(SystemExit) as exit_info:
        wandb_report.main(["--entity", "someone", "--runs-dir", "no-such-folder", *mode])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "wandb login" in error[0] and "--wandb-mode online" in error[0]


def test_online_logs_the_combined_figure_and_saves(tmp_path, monkeypatch, capsys, no_wandb_account):
    """The online path with the server replaced by stand-ins: the figure run's id reaches the report."""
    monkeypatch.setattr(report, "run_checks", lambda: theory.check_boolean_network())
    make_runs(tmp_path / "runs", [0.60, 0.58, 0.10, 0.40], 0.80, pretrained=True)
    figure_runs, saved = [], []

    class FigureRun:
        id = "fig42"

        def __init__(self, **settings):
            self.settings, self.logged = settings, {}
            figure_runs.append(self)

        def log(self, values):  # a run copies the file when logging it; the folder goes after
            self.logged.update(values)
            self.sizes = {key: value.image.size for key, value in values.items()}

        def finish(self):
            pass

    monkeypatch.setattr(wandb, "Api", lambda: None)
    monkeypatch.setattr(wandb, "init", FigureRun)
    monkeypatch.setattr(wr.Report, "save", lambda self: saved.append(self))
    monkeypatch.setattr(wr.Report, "url",
                        property(lambda self: f"https://example/{self.entity}/{self.project}"))
    result = wandb_report.main(["--entity", "someone", "--runs-dir", str(tmp_path / "runs"),
                                "--wandb-mode", "online"])

    figure_run, = figure_runs
    assert (figure_run.settings["entity"], figure_run.settings["project"]) == ("someone", "Q6-cnn-wandb")
    assert figure_run.settings["mode"] == "online" and figure_run.settings["job_type"] == "report"
    image = figure_run.logged[wandb_report.FIGURE_KEY]
    assert isinstance(image, wandb.Image)
    names = [f"c{i}" for i in range(10)]
    single = Image.open(save_figure(results.confusion_figure(np.eye(10, dtype=int), names),
                                    tmp_path / "one.png"))
    # Four matrices in two rows and two columns: about twice one matrix's figure each way.
    assert all(combined > 1.5 * one
               for combined, one in zip(figure_run.sizes[wandb_report.FIGURE_KEY], single.size))
    built, = saved
    assert [leaves(runset) for block in built.blocks if isinstance(block, wr.PanelGrid)
            for runset in block.runsets if "ID" in runset.filters] == [{("run", "ID"): ("=", "fig42")}]
    assert capsys.readouterr().out.strip() == result["url"] == "https://example/someone/Q6-cnn-wandb"
