"""One round of self-training in BOND's spirit (Liang et al. 2020): a tagger trained on the weak
labels (the teacher) relabels the training and dev sentences, and the union of its entities with
the weak labels' becomes the next tagger's (the student's) training and dev file.

    python -m q1_weak_supervision.self_train --conll-dir data/conll2003 --round 1 \\
        --labels-dir runs/q1_weak_supervision/weak-labels-conll-dir/labels/majority_doc \\
        --teacher-run runs/q5_ner_crf/conll2003-weak-majority-doc-glove-char-crf-modern-seed0

The teacher tags the sentences through Q5's command line (`python -m q5_ner_crf.predict`, its
checkpoint selected on the weak dev labels): the hand-off stays a file, as in the rest of the
chain. The student's labels keep every entity of the weak labels (precise: the labeling
functions' votes) and add each teacher entity that overlaps none of them (the recall the teacher
learnt beyond the functions). Departure from BOND: BOND keeps the teacher's soft labels above a
confidence threshold; Q5's tagger gives Viterbi tags only, so the weak labels stand in for the
confident part. Writes `<run>/labels/self_train_round<r>/train.txt` and `valid.txt` and scores
the teacher's tags, the student's labels and the weak labels against gold (analysis only: the
student never sees gold).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from seqeval.metrics.sequence_labeling import get_entities

from common.atomic import atomic_write_text
from common.cli import HelpFormatter, add_common_args, entry_point
from common.data.conll import read_conll
from common.errors import DataError
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.aggregate import entity_scores
from q1_weak_supervision.analyze_lfs import format_table
from q1_weak_supervision.corpus import add_source_args, describe_source, load_splits, resolve_source, run_name

PROJECT = "Q1-weak-supervision-ner"
FILES = {"train": "train.txt", "validation": "valid.txt"}
TABLE_HEADERS = ["labels", "split", "entity P", "entity R", "entity F1", "entities"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--labels-dir", required=True,
                        help="the weak label folder (train.txt, valid.txt) the teacher was trained on")
    parser.add_argument("--teacher-run", required=True, help="the teacher's Q5 run folder")
    parser.add_argument("--round", type=int, default=1, help="the round's number (names the output)")
    add_source_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.keep_docstart:
        parser.error("--keep-docstart makes no sense here: separators are not sentences to label")
    if args.round < 1:
        parser.error("--round must be 1 or more")
    return args


def union_with_teacher(weak: list[str], teacher: list[str]) -> list[str]:
    """IOB2 tags of one sentence: the weak entities, plus each teacher entity overlapping none."""
    tags = list(weak)
    taken = {i for _, start, end in get_entities(weak) for i in range(start, end + 1)}
    for kind, start, end in get_entities(teacher):
        if not taken & set(range(start, end + 1)):
            tags[start:end + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start)
    return tags


def teacher_tags(teacher_run: Path, sentences: list[list[str]], work: Path) -> list[list[str]]:
    """The teacher's tags of `sentences`, through `python -m q5_ner_crf.predict`."""
    path = atomic_write_text(work, "".join(" ".join(tokens) + "\n" for tokens in sentences))
    proc = subprocess.run([sys.executable, "-m", "q5_ner_crf.predict", "--run-dir", str(teacher_run),
                           "--input", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise DataError(f"the teacher {teacher_run} could not tag the sentences: {last}")
    blocks = [block for block in proc.stdout.split("\n\n") if block.strip()]
    tagged = [[line.split("\t") for line in block.splitlines()] for block in blocks]
    if [[token for token, _ in rows] for rows in tagged] != sentences:
        raise DataError(f"the teacher {teacher_run} returned other sentences than it was given")
    return [[tag for _, tag in rows] for rows in tagged]


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    labels_dir, teacher_run = Path(args.labels_dir), Path(args.teacher_run)
    for name in FILES.values():
        if not (labels_dir / name).is_file():
            raise DataError(f"{labels_dir / name} not found: --labels-dir must be a folder weak_labels.py "
                            "wrote (labels/<method>/ with train.txt and valid.txt)")
    if not (teacher_run / "checkpoints" / "best.pt").is_file():
        raise DataError(f"{teacher_run / 'checkpoints' / 'best.pt'} not found: --teacher-run must be a "
                        "finished q5_ner_crf.train run folder")
    data = describe_source(args)
    print(f"[Q1] data: {data}; teacher {teacher_run}")
    gold_splits = load_splits(args)
    run = start_run(args, project=PROJECT, question="q1_weak_supervision",
                    default_name=run_name(args, f"self-train-{labels_dir.name.replace('_', '-')}"
                                                f"-round{args.round}"),
                    job_type="self_train")
    summary = {"stage": "self_train", "data": data, "source": resolve_source(args), "round": args.round,
               "labels": labels_dir.name, "teacher_run": teacher_run.name}
    out = run.dir / "labels" / f"self_train_round{args.round}"
    rows = []
    for split, name in FILES.items():
        weak = read_conll(labels_dir / name, tag_scheme="iob2")
        gold = gold_splits[split]
        if [s.tokens for s in weak] != [s.tokens for s in gold]:
            raise DataError(f"{labels_dir / name} holds other sentences than the {split} split of {data}")
        sentences = [list(s.tokens) for s in weak]
        teacher = teacher_tags(teacher_run, sentences, run.dir / "sentences" / name)
        student = [union_with_teacher(list(s.ner), t) for s, t in zip(weak, teacher)]
        lines = ["".join(f"{token} {tag}\n" for token, tag in zip(tokens, tags)) + "\n"
                 for tokens, tags in zip(sentences, student)]
        path = atomic_write_text(out / name, "".join(lines))
        summary[f"student/{split}/file"] = str(path)
        print(f"wrote {path}")
        gold_tags = [list(s.ner) for s in gold]
        for labels, tags in (("weak", [list(s.ner) for s in weak]), ("teacher", teacher),
                             ("student", student)):
            entities = sum(len(get_entities(sentence_tags)) for sentence_tags in tags)
            for key, value in {**entity_scores(gold_tags, tags), "entities": entities}.items():
                summary[f"{labels}/{split}/{key}"] = value
            rows.append([labels, split, *(summary[f"{labels}/{split}/{key}"] for key in
                                          ("entity_precision", "entity_recall", "entity_f1", "entities"))])
    print("\nLabels against gold (seqeval strict IOB2; the student's file is the weak labels plus the "
          "teacher's entities that overlap none of them):")
    print(format_table(TABLE_HEADERS, rows))
    run.table("self_train_scores", TABLE_HEADERS, rows)
    run.summary(summary)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
