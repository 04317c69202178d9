"""Launching the 2-process torchrun tests (tests/test_common_distributed.py, tests/test_q4_train.py)."""

import subprocess


def run_torchrun(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a `torch.distributed.run` command (output captured, text). When a rank dies by a signal
    (a rank was once seen to abort with SIGABRT, its launcher then stopping the other, on a 2-core
    machine running four other jobs; dozens of launches before and after passed), launch it once
    more: the caller still checks everything the run wrote, and a rank that crashes on every
    launch still fails the test. Both torchrun tests share the xdist group "torchrun"
    (scripts/test.sh runs --dist loadgroup), so they never launch side by side."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0 and "received by PID" in result.stderr:
        result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return result


def torchrun_failure(result: subprocess.CompletedProcess) -> str:
    """The start and the end of a failed launch's output: the rank's own error comes first, the
    launcher's summary last."""
    text = result.stdout[-1000:] + result.stderr
    return text if len(text) <= 4000 else text[:2500] + "\n...\n" + text[-1500:]
