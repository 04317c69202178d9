#!/usr/bin/env bash
# The test command: set-up, then the whole test suite (extra arguments go to pytest). Tests run
# in PYTEST_WORKERS processes (pytest-xdist, default 2: one per core of a small machine; 0 runs
# them in this process), each with one torch thread (tests/conftest.py).
#
#   bash scripts/test.sh                       # everything
#   bash scripts/test.sh tests/test_q4_*.py    # grade one question
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/_env.sh
# --dist loadgroup: the two torchrun tests (xdist group "torchrun") run in one worker, one after
# the other; every other test is spread as with the default --dist load.
exec python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
