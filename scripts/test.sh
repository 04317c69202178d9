#!/usr/bin/env bash
# The test command: set-up, then the whole test suite (extra arguments go to pytest).
#
#   bash scripts/test.sh                       # everything
#   bash scripts/test.sh tests/test_q4_*.py    # grade one question
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/_env.sh
exec python -m pytest "$@"
