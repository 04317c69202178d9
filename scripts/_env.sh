# Sourced by the scripts in this folder: run from the repository root, use the project's venv,
# keep W&B offline unless the caller says otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .venv/bin/python ]]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi
export WANDB_SILENT="${WANDB_SILENT:-true}"
export MPLBACKEND="${MPLBACKEND:-Agg}"
