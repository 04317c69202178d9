"""Render reports/q5.md from the Q5 runs: the BiLSTM tagger rows of report 1 beside the original
report's test micro-F1, per-type tables, the three comparisons (characters vs GloVe alone, layer
norm vs not, CRF vs softmax), and the multilingual MultiCoNER II table when such runs exist.

    python -m q5_ner_crf.report --runs-dir runs --out reports/q5.md
    python -m q5_ner_crf.report --runs-dir runs/smoke           # after reproduce_q5.sh --smoke

Reads every `<runs-dir>/q5_ner_crf/*/summary.json` (the newest run of each data set and variant
when there are several) and writes the markdown report and reports/q5_val_f1.png (validation
entity F1 per epoch). Every conclusion is computed from the numbers in the tables. With one seed
per row, differences below 0.5 F1 points are called "no clear difference".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import RunRecord, fmt, fmt_pct, load_runs, markdown_table, plot_curves, write_report

# Report 1's rows: (section, variant as in train.py's run names, description, original test micro-F1)
ROWS = (
    ("2.1.1", "random", "BiLSTM, random embeddings", 0.66),
    ("2.1.2", "glove", "BiLSTM, GloVe (fine-tuned)", 0.74),
    ("2.1.3", "glove-char", "BiLSTM, GloVe + character BiLSTM", 0.68),
    ("2.1.4", "glove-char-ln", "LayerNorm-BiLSTM, GloVe + characters", 0.75),
    ("2.2", "random-crf", "BiLSTM-CRF, random embeddings", 0.69),
    ("new", "glove-char-ln-crf", "LayerNorm-BiLSTM-CRF, GloVe + characters", None),
)
# (title, variant with the feature, variant without it, what the feature is)
COMPARISONS = (
    ("Characters vs GloVe alone", "glove-char", "glove", "character-BiLSTM features"),
    ("Layer normalisation vs none", "glove-char-ln", "glove-char", "LayerNorm-LSTM cells"),
    ("CRF vs BiLSTM (softmax)", "random-crf", "random", "a CRF output layer"),
    ("CRF on the full model", "glove-char-ln-crf", "glove-char-ln", "a CRF output layer"),
)
NOISE_POINTS = 0.5  # F1 points; one seed per row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root of the run folders (holds q5_ner_crf/)")
    parser.add_argument("--out", default="reports/q5.md", help="markdown file to write")
    return parser.parse_args(argv)


def variant_of(run: RunRecord) -> str:
    """The run's model flags as in train.py's run names (read from its summary, not its name)."""
    s = run.summary
    flags = [flag for flag, key in (("char", "char"), ("ln", "layer_norm"), ("crf", "crf"),
                                    ("uni", "unidirectional")) if s.get(key)]
    return "-".join([s.get("embeddings", "random")] + flags)


def data_of(run: RunRecord) -> str:
    s = run.summary
    if s.get("dataset") == "multiconer":
        return f"multiconer-{s.get('lang')}-{s.get('granularity')}"
    return s.get("dataset", "?")


def newest_runs(runs: list[RunRecord]) -> tuple[dict[tuple[str, str], RunRecord], list[str]]:
    """{(data, variant): run}, the most recently started run of each, and notes on the rest."""
    chosen: dict[tuple[str, str], RunRecord] = {}
    notes = []
    started = lambda run: run.config.get("_provenance", {}).get("started", "")  # noqa: E731
    for run in sorted(runs, key=started):
        key = (data_of(run), variant_of(run))
        if key in chosen:
            notes.append(f"`{chosen[key].name}` left out: `{run.name}` is a newer run of {key[0]} {key[1]}")
        chosen[key] = run
    return chosen, notes


def points(difference: float) -> float:
    """A difference of two F1 fractions in points, rounded as printed (verdicts match the text)."""
    return round(100 * difference, 1)


def verdict(difference: float) -> str:
    if abs(points(difference)) < NOISE_POINTS:
        return "no clear difference"
    return "better" if difference > 0 else "worse"


def data_description(runs: list[RunRecord]) -> str:
    sources = sorted({run.summary.get("data_source", "?") for run in runs})
    smoke = [run.summary.get("smoke") for run in runs]
    if all(smoke):
        kind = ("**built-in smoke data** (template sentences and tiny models, for a check that everything "
                "runs; the numbers say nothing about GMB)")
    elif any(smoke):
        kind = "**a mix of built-in smoke data and real data** (compare rows with care)"
    else:
        kind = "**the real data**"
    return f"These runs used {kind}: " + "; ".join(f"`{s}`" for s in sources) + "."


def report1_table(runs: Mapping[str, RunRecord]) -> str:
    rows = []
    for section, variant, description, original in ROWS:
        run = runs.get(variant)
        if run is None:
            original_cell = fmt(original, 2) if original else "—"
            rows.append([section, description, "missing run", original_cell, *["—"] * 6])
            continue
        s = run.summary
        rows.append([section, description, fmt(s["test_f1"]), fmt(original, 2) if original else "—",
                     fmt(s["test_precision"]), fmt(s["test_recall"]), fmt(s["test_macro_f1"]),
                     fmt_pct(s["test_token_accuracy"]), fmt(s["val_f1"]), f"{s['best_epoch']}/{s['epochs']}"])
    return markdown_table(["row", "model", "test micro-F1", "original test micro-F1", "test P", "test R",
                           "test macro-F1", "test token acc", "val micro-F1", "best epoch"], rows,
                          align=["l", "l"] + ["r"] * 8)


def per_type_table(runs: Mapping[str, RunRecord]) -> str:
    present = [(variant, runs[variant]) for _, variant, _, _ in ROWS if variant in runs]
    types = sorted({t for _, run in present for t in run.summary.get("per_class", {}).get("test", {})})
    rows = []
    for name in types:
        cells = [run.summary["per_class"]["test"].get(name, {}).get("f1") for _, run in present]
        support = next((run.summary["per_class"]["test"][name]["support"] for _, run in present
                        if name in run.summary["per_class"]["test"]), None)
        rows.append([name, support, *cells])
    return markdown_table(["type", "test support", *[variant for variant, _ in present]], rows)


def split_details(run: RunRecord) -> str:
    """Per-type precision/recall/F1 on train, validation and test of one run, collapsed."""
    s = run.summary
    rows = []
    for name in sorted(s.get("per_class", {}).get("test", {})):
        row = [name]
        for split in ("train", "val", "test"):
            v = s["per_class"].get(split, {}).get(name)
            row += [v["precision"], v["recall"], v["f1"], v["support"]] if v else [None] * 4
        rows.append(row)
    rows.append(["**micro avg**"] + [value for split in ("train", "val", "test")
                                     for value in (s[f"{split}_precision"], s[f"{split}_recall"],
                                                   s[f"{split}_f1"], None)])
    headers = ["type"] + [f"{split} {m}" for split in ("train", "val", "test") for m in ("P", "R", "F1", "n")]
    return (f"<details><summary>{run.name}: per-type scores on train / val / test "
            f"(token accuracy {fmt_pct(s['train_token_accuracy'])} / {fmt_pct(s['val_token_accuracy'])} / "
            f"{fmt_pct(s['test_token_accuracy'])})</summary>\n\n"
            + markdown_table(headers, rows) + "\n</details>\n")


def comparison(title: str, with_feature: RunRecord | None, without: RunRecord | None, with_name: str,
               without_name: str, feature: str, originals: Mapping[str, float | None]) -> str:
    """One comparison paragraph, every claim from the two runs' numbers."""
    if with_feature is None or without is None:
        missing = [name for name, run in ((with_name, with_feature), (without_name, without)) if run is None]
        return (f"**{title}** (`{with_name}` vs `{without_name}`): not available, the run(s) "
                f"{', '.join(missing)} are missing.\n")
    a, b = with_feature.summary, without.summary
    difference = a["test_f1"] - b["test_f1"]
    result = verdict(difference)
    if result == "no clear difference":
        text = (f"adding {feature} makes no clear difference to test micro-F1 "
                f"({fmt(a['test_f1'])} vs {fmt(b['test_f1'])}, {points(difference):+.1f} points)")
    else:
        text = (f"adding {feature} makes test micro-F1 {result}: {fmt(a['test_f1'])} vs {fmt(b['test_f1'])} "
                f"({points(difference):+.1f} points)")
    precision = points(a["test_precision"] - b["test_precision"])
    recall = points(a["test_recall"] - b["test_recall"])
    text += f"; precision {precision:+.1f} points, recall {recall:+.1f} points"
    types_a, types_b = a.get("per_class", {}).get("test", {}), b.get("per_class", {}).get("test", {})
    changes = {name: types_a[name]["f1"] - types_b[name]["f1"] for name in types_a if name in types_b}
    if changes:
        best = max(changes, key=changes.get)
        worst = min(changes, key=changes.get)
        gain = (f"the largest gain is on `{best}` ({points(changes[best]):+.1f} points)"
                if points(changes[best]) > 0 else "no type gains")
        loss = (f"the largest loss on `{worst}` ({points(changes[worst]):+.1f} points)"
                if points(changes[worst]) < 0 else "no type loses")
        text += f". By type, {gain} and {loss}"
    original_a, original_b = originals.get(with_name), originals.get(without_name)
    if original_a is not None and original_b is not None:
        original_result = verdict(original_a - original_b)
        agrees = original_result == result
        described = {"better": "a better F1", "worse": "a worse F1",
                     "no clear difference": "no clear difference"}
        text += (f". In the original report the same change gave {described[original_result]} "
                 f"({original_a:.2f} vs {original_b:.2f}); "
                 f"this run {'agrees' if agrees else 'does not agree'}")
    epochs_a, epochs_b = a["best_epoch"], b["best_epoch"]
    text += (f". Best validation epoch {epochs_a} vs {epochs_b}; training took {a['train_time_s']:.0f} s vs "
             f"{b['train_time_s']:.0f} s")
    return f"**{title}** (`{with_name}` vs `{without_name}`): {text}.\n"


def multilingual_table(runs: Mapping[tuple[str, str], RunRecord]) -> str | None:
    rows = []
    for (data, variant), run in sorted(runs.items()):
        if not data.startswith("multiconer"):
            continue
        s = run.summary
        rows.append([s.get("lang"), s.get("granularity"), variant, s.get("num_tags"), fmt(s["test_f1"]),
                     fmt(s["test_macro_f1"]), fmt_pct(s["test_token_accuracy"]),
                     fmt_pct(s["test_token_accuracy_with_padding"]) if "test_token_accuracy_with_padding" in s
                     else "—", f"{s.get('test_tokens', 0):,}"])
    if not rows:
        return None
    return markdown_table(["lang", "types", "model", "labels", "test micro-F1", "test macro-F1",
                           "token acc (no padding)", "token acc (padding counted)", "test tokens"], rows,
                          align=["l", "l", "l"] + ["r"] * 6)


def multilingual_observations(runs: Mapping[tuple[str, str], RunRecord]) -> str:
    multi = [run.summary for (data, _), run in runs.items() if data.startswith("multiconer")]
    sentences = []
    padded = [s for s in multi if "test_token_accuracy_with_padding" in s]
    if padded:
        gap = max(points(s["test_token_accuracy_with_padding"] - s["test_token_accuracy"]) for s in padded)
        sentences.append(f"Counting padding as correct, as report 2 did, raises token accuracy by up to "
                         f"{gap:.1f} points; entity F1 is unaffected by padding and is the figure to "
                         "compare.")
    by_lang: dict[str, dict[str, float]] = {}
    for s in multi:
        by_lang.setdefault(s["lang"], {})[s["granularity"]] = s["test_f1"]
    for lang, scores in sorted(by_lang.items()):
        if "fine" in scores and "coarse" in scores:
            difference = scores["coarse"] - scores["fine"]
            relation = {"no clear difference": "the same entity F1, within noise, as",
                        "better": "a higher entity F1 than",
                        "worse": "a lower entity F1 than"}[verdict(difference)]
            sentences.append(f"{lang}: coarse tags give {relation} fine tags ({fmt(scores['coarse'])} vs "
                             f"{fmt(scores['fine'])}, {points(difference):+.1f} points).")
    return " ".join(sentences)


def curves(runs: Mapping[str, RunRecord], path: Path) -> Path | None:
    series = {variant: runs[variant].series("epoch", "val_f1")
              for _, variant, _, _ in ROWS if variant in runs}
    series = {name: xy for name, xy in series.items() if xy[0]}
    if not series:
        return None
    return plot_curves(series, path, title="Validation entity micro-F1 per epoch", ylabel="val micro-F1")


@entry_point
def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    runs_dir = Path(args.runs_dir)
    runs = load_runs(str(runs_dir / "q5_ner_crf" / "*"))
    if not runs:
        raise DataError(f"no Q5 runs under {runs_dir / 'q5_ner_crf'}; run scripts/reproduce_q5.sh "
                        "(or with --smoke) first")
    chosen, notes = newest_runs(runs)
    out = Path(args.out)
    originals = {variant: original for _, variant, _, original in ROWS}

    parts = ["# Q5: BiLSTM NER taggers, a CRF from scratch, multilingual NER\n",
             data_description(list(chosen.values())) + "\n",
             "Entity scores are seqeval's strict IOB2 micro averages (an entity counts only with exact "
             "boundaries and type); token accuracy excludes padding. Each model is evaluated at its best "
             "validation epoch. The original report's figures are quoted as published.\n"]
    datasets = sorted({data for data, _ in chosen if not data.startswith("multiconer")})
    for data in datasets:
        runs_here = {variant: run for (d, variant), run in chosen.items() if d == data}
        parts.append(f"## Report 1: taggers on {data.upper()}\n")
        parts.append(report1_table(runs_here))
        figure = curves(runs_here, out.parent / f"q5_val_f1_{data}.png")
        if figure is not None:
            parts.append(f"\n![validation F1 per epoch]({figure.name})\n")
        parts.append("\n### Test F1 per entity type\n")
        parts.append(per_type_table(runs_here))
        parts.append("")
        parts += [split_details(runs_here[variant]) for _, variant, _, _ in ROWS if variant in runs_here]
        parts.append("### Comparisons\n")
        for title, with_name, without_name, feature in COMPARISONS:
            parts.append(comparison(title, runs_here.get(with_name), runs_here.get(without_name), with_name,
                                    without_name, feature, originals))
        best = max(runs_here.values(), key=lambda run: run.summary["test_f1"])
        parts.append(f"The best test micro-F1 here is {fmt(best.summary['test_f1'])} (`{variant_of(best)}`); "
                     "the original report's best was 0.75, and published BiLSTM-CRF results on GMB are "
                     "about 0.82.\n")
    table = multilingual_table(chosen)
    if table is not None:
        parts += ["## Report 2: multilingual NER (MultiCoNER II)\n", table, "",
                  multilingual_observations(chosen) + "\n"]
    else:
        parts.append("## Report 2: multilingual NER (MultiCoNER II)\n\nNo MultiCoNER runs found "
                     "(set MULTICONER_DIR for scripts/reproduce_q5.sh).\n")
    if notes:
        parts.append("Runs left out: " + "; ".join(notes) + ".\n")
    text = "\n".join(parts)
    write_report(out, text)
    return text


if __name__ == "__main__":
    main()
