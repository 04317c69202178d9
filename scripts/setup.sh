#!/usr/bin/env bash
# Idempotent set-up: creates .venv when missing, installs the pinned requirements and this
# repository in editable mode. A second run with nothing changed takes a few seconds, because the
# install is skipped while requirements.txt and pyproject.toml are unchanged since the last one.
#
#   bash scripts/setup.sh            # PYTHON=python3.11 bash scripts/setup.sh to pick the interpreter
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    echo "[setup] creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv .venv
fi

# The stamp holds a hash of the files that decide what is installed; skip pip when it matches.
stamp=.venv/.setup-stamp
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && .venv/bin/python -c "import common, torch" 2>/dev/null; then
    echo "[setup] .venv is up to date"
    exit 0
fi

echo "[setup] installing requirements (torch is a large wheel: the first run takes minutes)"
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "[setup] done: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
