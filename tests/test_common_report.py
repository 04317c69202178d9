"""common.report: tables and figures from run folders."""

import json

import pytest

from common.errors import DataError
from common.report import (RunRecord, data_kind, fmt_pct, load_runs, markdown_table, plot_curves,
                           provenance_section, seed_verdict, text_table)


def write_run(root, name, summary, metrics):
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return d


def test_load_runs_and_series(tmp_path):
    write_run(tmp_path, "b", {"acc": 0.5}, [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0},
                                            {"epoch": 2, "other": 1}])
    write_run(tmp_path, "a", {"acc": 0.7}, [])
    (tmp_path / "unfinished").mkdir()
    runs = load_runs(str(tmp_path / "*"))
    assert [r.name for r in runs] == ["a", "b"]  # sorted; the unfinished folder is skipped
    assert runs[1].series("epoch", "loss") == ([1, 2], [2.0, 1.0])


def test_markdown_table():
    text = markdown_table(["run", "acc", "note"], [["bn", 0.81234, None], ["gn", 1, True]])
    assert text.splitlines() == ["| run | acc | note |", "| --- | ---: | ---: |",
                                 "| bn | 0.8123 | — |", "| gn | 1 | yes |"]
    assert fmt_pct(0.8139) == "81.39%"


def test_text_table_pads_each_column_to_its_widest_cell():
    text = text_table(["split", "tokens", "F1"], [["train", "12,345", "0.8123"], ["val", 7, "1.0"]],
                      align="lrl")
    assert text.splitlines() == ["split  tokens  F1",
                                 "train  12,345  0.8123",
                                 "val         7  1.0"]


@pytest.mark.parametrize("flags, kind", [
    ([{"smoke": True}, {"smoke": True}], "smoke"),
    ([{}, {"smoke": False}], "real"),
    ([{"smoke": True}, {}], "mixed"),
])
def test_data_kind_reads_the_smoke_flag_of_every_run(tmp_path, flags, kind):
    # Some studies record --smoke in config.json, others in summary.json: either counts.
    runs = [RunRecord(tmp_path, config=flag if i % 2 else {}, summary={} if i % 2 else flag)
            for i, flag in enumerate(flags)]
    assert data_kind(runs) == kind


def test_plot_curves_writes_a_png(tmp_path):
    path = plot_curves({"a": ([1, 2], [0.5, 0.4])}, tmp_path / "fig.png",
                       bands={"a": ([0.4, 0.3], [0.6, 0.5])})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_run_without_summary_is_one_line_error(tmp_path):
    from common.report import load_run

    with pytest.raises(DataError, match="no summary.json"):
        load_run(tmp_path)


def test_provenance_lists_command_wall_time_hardware_machine_and_checksums(tmp_path):
    run_dir = tmp_path / "q6_cnn_wandb" / "config1-seed0"
    run_dir.mkdir(parents=True)
    provenance = {"git_commit": "0123456789abcdef", "command": "train.py --config 1 --threads 1",
                  "started": "2026-11-30T03:00:00+0000", "cpus": 2, "torch_threads": 1, "gpu": None}
    (run_dir / "config.json").write_text(json.dumps({"_provenance": provenance}))
    (run_dir / "summary.json").write_text("{}")
    # The last metrics line 150 s after the start (2026-11-30T03:00:00Z is 1796007600).
    (run_dir / "metrics.jsonl").write_text(json.dumps({"step": 1, "time": 1796007600 + 150}) + "\n")
    (tmp_path / "machine.txt").write_text("cpu: test cpu\n")
    (tmp_path / "data.sha256").write_text("abc  data/file\n")
    text = provenance_section(load_runs(str(tmp_path / "q6_cnn_wandb" / "*")), tmp_path)
    assert ("| config1-seed0 | `python -m q6_cnn_wandb.train --config 1 --threads 1` | 0123456789 | "
            "2026-11-30T03:00:00+0000 | 2.5 min | CPU, 1 of 2 threads |") in text
    assert "cpu: test cpu" in text and "abc  data/file" in text


def write_timed_run(tmp_path, provenance, times):
    run_dir = tmp_path / "q6_cnn_wandb" / "config1-seed0"
    run_dir.mkdir(parents=True)
    provenance = {"command": "train.py --config 1", "cpus": 2, "torch_threads": 1, "gpu": None,
                  **provenance}
    (run_dir / "config.json").write_text(json.dumps({"_provenance": provenance}))
    (run_dir / "summary.json").write_text("{}")
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "time": t}) + "\n"
                                                   for i, t in enumerate(times)))
    return load_runs(str(tmp_path / "q6_cnn_wandb" / "*"))


def test_wall_time_adds_up_a_resumed_runs_sittings(tmp_path):
    from common.report import sittings, wall_time_s

    t0 = 1796007600  # 2026-11-30T03:00:00Z
    provenance = {"started": "2026-11-30T03:20:00+0000", "git_commit": "bbbbbbbbbbbb",
                  "earlier_sittings": [{"started": "2026-11-30T03:00:00+0000", "git_commit": "aaaaaaaaaaaa"}]}
    # Sitting 1 logs at +100 s and +300 s, then stops; sitting 2 starts at +1200 s and logs at +1400 s.
    runs = write_timed_run(tmp_path, provenance, [t0 + 100, t0 + 300, t0 + 1400])
    assert sittings(runs[0]) == ([(t0, t0 + 300), (t0 + 1200, t0 + 1400)], True)
    assert wall_time_s(runs[0]) == 500  # 300 + 200, not the 1400 s from the first start
    text = provenance_section(runs, tmp_path)
    assert ("| config1-seed0 | `python -m q6_cnn_wandb.train --config 1` | aaaaaaaaaa, bbbbbbbbbb | "
            "2026-11-30T03:00:00+0000 | 8.3 min (2 sittings) | CPU, 1 of 2 threads |") in text


def test_wall_time_of_a_run_resumed_before_sittings_were_recorded_is_a_lower_bound(tmp_path):
    from common.report import sittings

    t0 = 1796007600
    # Lines at -600 s and -100 s come from a sitting whose start was overwritten: counted from the
    # first line (500 s), plus 60 s of the recorded sitting; the earlier set-up is unknown.
    runs = write_timed_run(tmp_path, {"started": "2026-11-30T03:00:00+0000", "git_commit": "cccc"},
                     [t0 - 600, t0 - 100, t0 + 60])
    assert sittings(runs[0]) == ([(t0 - 600, t0 - 100), (t0, t0 + 60)], False)
    assert "| ≥ 9.3 min (2 sittings) |" in provenance_section(runs, tmp_path)


@pytest.mark.parametrize("a, b, expected", [
    # means 0.81 and 0.71, variances 0.0002 each: two standard errors 2 * sqrt(0.0001 + 0.0001) = 0.028
    ([0.80, 0.82], [0.70, 0.72], "better"),
    ([0.70, 0.72], [0.80, 0.82], "worse"),
    # means 0.72 and 0.71, variances 0.0008 and 0.0002: 2 * sqrt(0.0004 + 0.0001) = 0.045 > 0.01
    ([0.70, 0.74], [0.70, 0.72], "no clear difference"),
    # a 20-point gap on one seed is still not judged
    ([0.90], [0.70, 0.72], "one seed"),
    ([0.90, 0.91], [0.70], "one seed"),
])
def test_seed_verdict_uses_the_measured_spread(a, b, expected):
    assert seed_verdict(a, b) == expected
