"""CoNLL-2003 statistics: samples per split and the NER tag distribution (Q1, step 1 of 3).

Reproduces the first part of the Q1 report ("Number of training samples: 14987", "Entity
distribution: {...}") and logs it to the W&B project `Q1-weak-supervision-ner`.

    python q1_weak_supervision/dataset_stats.py                      # HuggingFace eriktks/conll2003
    python q1_weak_supervision/dataset_stats.py --conll-dir data/conll2003 --keep-docstart
    python q1_weak_supervision/dataset_stats.py --smoke              # built-in corpus, offline

Prints the samples per split, the training split's tag distribution in the report's format and a
table tag x split; writes them to the run folder with a bar chart.
Departures from the report and why: see q1_weak_supervision/README.md.
"""

from __future__ import annotations

import argparse
import collections
import sys

import matplotlib.pyplot as plt
import numpy as np

from common.cli import HelpFormatter, add_common_args, entry_point
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.corpus import (SPLITS, add_source_args, describe_source, is_docstart,
                                        load_splits, resolve_source, run_name)

PROJECT = "Q1-weak-supervision-ner"
SPLIT_TITLES = {"train": "training", "validation": "validation", "test": "test"}
TAG_ORDER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_source_args(parser)
    add_common_args(parser)
    return parser.parse_args(argv)


def tag_distribution(sentences) -> collections.Counter:
    """Count of every NER tag over every sample, in order of first appearance (the report's
    dict order). A kept `-DOCSTART-` separator is a sample with one `O` tag, counted as the
    report counted it; without --keep-docstart there are no separators to count."""
    counts: collections.Counter = collections.Counter()
    for sentence in sentences:
        counts.update(sentence.ner)
    return counts


def split_statistics(splits) -> dict[str, dict]:
    """Per split: samples, separators among them, tokens and the tag distribution."""
    return {split: {"samples": len(sentences),
                    "docstart": sum(is_docstart(s) for s in sentences),
                    "tokens": sum(len(s) for s in sentences if not is_docstart(s)),
                    "distribution": tag_distribution(sentences)}
            for split, sentences in splits.items()}


def ordered_tags(stats) -> list[str]:
    """CoNLL-2003's tags in their usual order, then any others alphabetically."""
    seen = {tag for split in stats.values() for tag in split["distribution"]}
    return [t for t in TAG_ORDER if t in seen] + sorted(seen - set(TAG_ORDER))


def distribution_figure(stats, tags):
    """Grouped bars of each tag's count per split (log scale: `O` is ~80% of the tokens)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(stats)
    positions = np.arange(len(tags))
    for offset, (split, split_stats) in enumerate(stats.items()):
        counts = [split_stats["distribution"].get(tag, 0) for tag in tags]
        ax.bar(positions + offset * width, counts, width, label=split)
    ax.set_xticks(positions + width * (len(stats) - 1) / 2, tags)
    ax.set_yscale("log")
    ax.set_ylabel("tokens")
    ax.set_title("CoNLL-2003 NER tag distribution")
    ax.legend()
    return fig


def results_table(stats, tags) -> str:
    """Fixed-width table: one row per tag (and samples, tokens), one column per split."""
    lines = [f"{'':<10}" + "".join(f"{split:>12}" for split in stats)]
    lines.append(f"{'samples':<10}" + "".join(f"{s['samples']:>12}" for s in stats.values()))
    lines.append(f"{'-DOCSTART-':<10}" + "".join(f"{s['docstart']:>12}" for s in stats.values()))
    lines.append(f"{'tokens':<10}" + "".join(f"{s['tokens']:>12}" for s in stats.values()))
    for tag in tags:
        lines.append(f"{tag:<10}" + "".join(f"{s['distribution'].get(tag, 0):>12}"
                                            for s in stats.values()))
    return "\n".join(lines)


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    source = resolve_source(args)
    name = run_name(args, "stats")
    data = describe_source(args)
    print(f"[Q1] data: {data}")
    splits = load_splits(args)  # before start_run: missing data leaves no run folder behind
    run = start_run(args, project=PROJECT, question="q1_weak_supervision", default_name=name,
                    job_type="dataset_stats")

    stats = split_statistics(splits)
    for split in SPLITS:
        print(f"Number of {SPLIT_TITLES[split]} samples: {stats[split]['samples']}")
    if args.keep_docstart:
        print("(samples include the -DOCSTART- separators, as the report counted them: "
              + ", ".join(f"{split} {stats[split]['docstart']}" for split in SPLITS) + ")")
    print(f"Entity distribution: {dict(stats['train']['distribution'])}")
    tags = ordered_tags(stats)
    print(results_table(stats, tags))
    sys.stdout.flush()

    summary = {
        "stage": "dataset_stats", "data": data, "source": source, "keep_docstart": args.keep_docstart,
        "num_train_samples": stats["train"]["samples"],
        "num_validation_samples": stats["validation"]["samples"],
        "num_test_samples": stats["test"]["samples"],
        "entity_distribution": dict(stats["train"]["distribution"]),
        "entity_distribution_validation": dict(stats["validation"]["distribution"]),
        "entity_distribution_test": dict(stats["test"]["distribution"]),
    }
    for split in SPLITS:
        summary[f"num_{split}_docstart"] = stats[split]["docstart"]
        summary[f"num_{split}_tokens"] = stats[split]["tokens"]
    run.summary(summary)
    run.table("entity_distribution_table", ["tag", *SPLITS],
              [[tag, *(stats[split]["distribution"].get(tag, 0) for split in SPLITS)] for tag in tags])
    figure = distribution_figure(stats, tags)
    run.image("entity_distribution", figure, caption=data)
    plt.close(figure)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
