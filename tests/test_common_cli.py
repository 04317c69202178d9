"""common.cli, common.device, common.seed: flags, exit statuses, device choice, seeding."""

import argparse
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.cli import add_common_args, add_threads_arg, entry_point
from common.device import pick_device
from common.errors import DataError, DivergenceError
from common.seed import seed_everything


def parser():
    return add_common_args(argparse.ArgumentParser())


def test_common_defaults():
    args = parser().parse_args([])
    assert (args.seed, args.device, args.wandb_mode, args.out_dir, args.smoke, args.resume) == \
        (0, "auto", "offline", "runs", False, False)


def test_unknown_choice_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["--wandb-mode", "sometimes"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_threads_must_be_a_positive_integer(value, capsys):
    threads = argparse.ArgumentParser()
    add_threads_arg(threads)
    assert threads.parse_args(["--threads", "3"]).threads == 3
    assert threads.parse_args([]).threads is None
    with pytest.raises(SystemExit) as exc:
        threads.parse_args(["--threads", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "argument --threads" in err[-1]


@pytest.mark.parametrize("error, status", [(DataError("no file /x; run fetch"), 1),
                                           (DivergenceError("loss is nan"), 3)])
def test_entry_point_turns_known_errors_into_one_line(error, status, capsys):
    @entry_point
    def main():
        raise error

    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(error) in err


def test_entry_point_lets_bugs_through():
    @entry_point
    def main():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        main()


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    expected = ("cuda" if torch.cuda.is_available()
                else ("mps" if torch.backends.mps.is_available() else "cpu"))
    assert pick_device("auto").type == expected
    with pytest.raises(ValueError):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="CUDA is not available"):
            pick_device("cuda")


def draws():
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_seed_everything_repeats_all_generators():
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert draws() != first


def test_script_exit_status_in_a_real_process(tmp_path):
    code = ("from common.cli import entry_point\nfrom common.errors import DataError\n"
            "@entry_point\ndef main():\n    raise DataError('missing data/cifar-10-batches-py')\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "error: missing data/cifar-10-batches-py\n"


@pytest.mark.parametrize("argv, expected", [([], (100, 64)), (["--smoke"], (3, 64)),
                                            (["--smoke", "--epochs", "7"], (7, 64))])
def test_fill_defaults_smoke_values_unless_given(argv, expected):
    from common.cli import fill_defaults

    p = parser()
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--bs", type=int, default=None)
    args = fill_defaults(p.parse_args(argv), {"epochs": 100, "bs": 64}, {"epochs": 3, "bs": 64})
    assert (args.epochs, args.bs) == expected


def test_bf16_and_channels_last_on_cuda_by_default_on_the_cpu_only_when_asked():
    from common.cli import add_accel_args
    from common.device import autocast_context, use_bf16, use_channels_last

    parser = add_accel_args(argparse.ArgumentParser())
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    plain, asked = parser.parse_args([]), parser.parse_args(["--cpu-bf16"])
    assert (use_bf16(plain, cuda), use_channels_last(plain, cuda)) == (True, True)
    assert (use_bf16(plain, cpu), use_channels_last(plain, cpu)) == (False, False)
    assert (use_bf16(asked, cpu), use_channels_last(asked, cpu)) == (True, True)
    no_bf16 = parser.parse_args(["--cpu-bf16", "--no-bf16"])
    assert (use_bf16(no_bf16, cpu), use_channels_last(no_bf16, cpu)) == (False, False)
    layer = torch.nn.Linear(4, 4)
    with autocast_context(cpu, use_bf16(asked, cpu)):
        assert layer(torch.ones(2, 4)).dtype == torch.bfloat16
    with autocast_context(cpu, use_bf16(plain, cpu)):
        assert layer(torch.ones(2, 4)).dtype == torch.float32
