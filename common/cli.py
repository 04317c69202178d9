"""Command-line flags shared by every script, and the entry-point wrapper that turns known
failures into one clear line and an exit status.

Every training script does::

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ...its own flags...
    add_common_args(parser)
    args = parser.parse_args(argv)

Exit statuses: 2 for bad arguments (argparse's own convention), 1 for missing or malformed
data, 3 for a diverged run (NaN/inf loss).
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

from common.errors import DataError, DivergenceError

EXIT_DATA_ERROR = 1
EXIT_DIVERGED = 3


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults in --help and keeps the docstring's line breaks."""


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --seed --device --wandb-mode --wandb-project --run-name --out-dir --data-root
    --smoke --resume to `parser` (in their own argument group) and return it."""
    group = parser.add_argument_group("common")
    group.add_argument("--seed", type=int, default=0, help="random seed for python, numpy and torch")
    group.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                       help="compute device; auto picks cuda, then mps, then cpu")
    group.add_argument("--wandb-mode", default="offline", choices=["online", "offline", "disabled"],
                       help="offline writes W&B files into the run folder (upload later with "
                            "`wandb sync`); disabled turns W&B off; the run folder is written either way")
    group.add_argument("--wandb-project", default=None,
                       help="W&B project (default: the study's own project name)")
    group.add_argument("--run-name", default=None,
                       help="name of the run folder <out-dir>/<question>/<run-name> "
                            "(default: derived from the flags)")
    group.add_argument("--out-dir", default="runs", help="root folder of all run folders")
    group.add_argument("--data-root", default="data",
                       help="folder holding the real datasets (torchvision or ImageFolder layout)")
    group.add_argument("--smoke", action="store_true",
                       help="tiny run on the built-in offline data, for a check in seconds")
    group.add_argument("--resume", nargs="?", const=True, default=False, type=resume_mode,
                       help="continue from the run folder's last checkpoint (an error when there is "
                            "none); `--resume auto` continues when there is one and starts afresh "
                            "otherwise, and leaves a finished run as it is (what the reproduce "
                            "scripts use, so that a stopped study picks up where it stopped)")
    return parser


def resume_mode(text: str) -> bool | str:
    """argparse type of `--resume [auto]`: the only value it takes is `auto`."""
    if text != "auto":
        raise argparse.ArgumentTypeError(f"--resume takes no value or 'auto', not {text!r}")
    return "auto"


def add_accel_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Speed flags for image models. bf16 autocast and channels-last take effect on CUDA, and on
    the CPU only with --cpu-bf16 (common.device.use_bf16); the CPU path is float32 otherwise."""
    group = parser.add_argument_group("acceleration")
    group.add_argument("--no-bf16", dest="bf16", action="store_false",
                       help="disable bf16 autocast on CUDA")
    group.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                       help="disable the channels-last memory format on CUDA")
    group.add_argument("--cpu-bf16", action=argparse.BooleanOptionalAction, default=False,
                       help="on the CPU too: bf16 autocast and channels-last (about 2x faster ResNet "
                            "steps on CPUs with AMX, e.g. Xeon Sapphire Rapids; slower where there is "
                            "no bf16 hardware)")
    group.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                       help="torch.compile the model (inductor; on the CPU it needs a C++ compiler)")
    return parser


def add_threads_arg(parser: argparse.ArgumentParser, why: str = "") -> None:
    """Add --threads to `parser` (or an argument group): torch CPU threads, a positive integer;
    None leaves torch's choice. `why` is appended to the help text."""
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 with --smoke)" + why)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (anything else is a one-line usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def fill_defaults(args: argparse.Namespace, defaults: dict, smoke_defaults: dict) -> argparse.Namespace:
    """Give every setting still None (flags default to None when --smoke changes their value)
    its value from `smoke_defaults` under --smoke, else from `defaults`. A flag given on the
    command line always wins."""
    for key, value in (smoke_defaults if args.smoke else defaults).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def fail(message: str, status: int = EXIT_DATA_ERROR) -> None:
    """Print `error: message` on one line to stderr and exit with `status`."""
    first_line = " ".join(str(message).split("\n")).strip()
    print(f"error: {first_line}", file=sys.stderr)
    raise SystemExit(status)


def entry_point(main: Callable[..., object]) -> Callable[..., object]:
    """Decorator for a script's main(): DataError -> one line, exit 1; DivergenceError -> one
    line, exit 3. Everything else propagates with its traceback (a bug, not bad input)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except DataError as exc:
            fail(str(exc), EXIT_DATA_ERROR)
        except DivergenceError as exc:
            fail(str(exc), EXIT_DIVERGED)

    return wrapper
