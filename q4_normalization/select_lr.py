"""Pick each normalization's peak learning rate from the sweep runs, on validation accuracy.

    python -m q4_normalization.select_lr --sweep-dir runs/q4_lr_sweep            # the table
    python -m q4_normalization.select_lr --sweep-dir runs/q4_lr_sweep --norm gn  # prints the lr
    python -m q4_normalization.select_lr --sweep-dir runs/q4_lr_sweep --norm gn --widen  # next lr

The sweep (scripts/reproduce_q4.sh --recipe cpu) trains each norm briefly at every lr of a grid;
the runs live under `<sweep-dir>/q4_normalization/`. A norm's pick is the lr whose run reached
the highest validation accuracy (its best epoch); a diverged run counts as the lowest, and a tie
goes to the smaller lr. The test split plays no part (the sweep runs do not evaluate it).

`--widen` prints the lr a widening grid tries next for a norm whose pick lies at an edge of the
lrs tried (twice the largest, or half the smallest), and nothing once the pick lies inside the
grid: scripts/reproduce_q4.sh --recipe converge widens until every pick is inside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import RunRecord, load_runs, markdown_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--sweep-dir", required=True, help="--out-dir of the sweep runs")
    parser.add_argument("--norm", default=None, help="print only this norm's chosen lr")
    parser.add_argument("--widen", action="store_true",
                        help="with --norm: print the next lr to try if the pick is at an edge of the grid")
    return parser.parse_args(argv)


def sweep_scores(runs: list[RunRecord]) -> dict[str, dict[float, float]]:
    """{norm: {lr: best validation accuracy}}; a diverged run scores -1."""
    scores: dict[str, dict[float, float]] = {}
    for run in runs:
        norm, lr = run.config["norm"], float(run.config["lr"])
        value = -1.0 if run.summary.get("diverged") else float(run.summary["val_accuracy"])
        scores.setdefault(norm, {})[lr] = value
    return scores


def pick(lr_scores: dict[float, float]) -> float:
    """The lr with the highest score; the smaller lr on a tie."""
    return max(sorted(lr_scores), key=lambda lr: (lr_scores[lr], -lr))


def next_lr(lr_scores: dict[float, float]) -> float | None:
    """Twice the largest lr when the pick is the largest, half the smallest when it is the
    smallest (a diverged run scores lowest, so a pick next to one is not widened past it); None
    when the pick lies inside the grid."""
    chosen, tried = pick(lr_scores), sorted(lr_scores)
    if chosen == tried[-1] and lr_scores[chosen] >= 0:
        return 2 * chosen
    if chosen == tried[0] and len(tried) > 1:
        return chosen / 2
    return None


def sweep_table(scores: dict[str, dict[float, float]]) -> str:
    """Markdown: one row per norm, validation accuracy per lr, the pick."""
    grid = sorted({lr for per_norm in scores.values() for lr in per_norm})
    rows = []
    for norm in sorted(scores):
        cells = [("diverged" if scores[norm][lr] < 0 else f"{100 * scores[norm][lr]:.2f}%")
                 if lr in scores[norm] else "—" for lr in grid]
        rows.append([norm, *cells, f"{pick(scores[norm]):g}"])
    return markdown_table(["norm", *(f"lr {lr:g}" for lr in grid), "picked"], rows)


@entry_point
def main(argv=None) -> dict[str, float]:
    args = parse_args(argv)
    folder = Path(args.sweep_dir) / "q4_normalization"
    scores = sweep_scores(load_runs(str(folder / "*")))
    if args.norm is not None:
        if args.norm not in scores:
            raise DataError(f"no finished sweep run of norm {args.norm} under {folder}")
        if args.widen:
            following = next_lr(scores[args.norm])
            if following is not None:
                print(f"{following:g}")
            return {args.norm: following}
        chosen = pick(scores[args.norm])
        print(f"{chosen:g}")
        return {args.norm: chosen}
    if not scores:
        raise DataError(f"no finished sweep run under {folder}")
    print(sweep_table(scores))
    return {norm: pick(per_norm) for norm, per_norm in scores.items()}


if __name__ == "__main__":
    main()
