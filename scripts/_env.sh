# Sourced by the scripts in this folder: run from the repository root, use the project's venv,
# keep W&B offline unless the caller says otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .venv/bin/python ]]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi
export WANDB_SILENT="${WANDB_SILENT:-true}"
export MPLBACKEND="${MPLBACKEND:-Agg}"

# The reproduce scripts' arguments: `--smoke` switches to the built-in data and the run folders
# under runs/smoke (so they never mix with real runs); every other argument is passed on to each
# run. Sets SMOKE (an array, empty or --smoke), RUNS and EXTRA, and creates $RUNS/logs.
parse_reproduce_args() {
    SMOKE=()
    RUNS=runs
    EXTRA=()
    local arg
    for arg in "$@"; do
        if [[ "$arg" == "--smoke" ]]; then
            SMOKE=(--smoke)
            RUNS=runs/smoke
        else
            EXTRA+=("$arg")
        fi
    done
    mkdir -p "$RUNS/logs"
}
