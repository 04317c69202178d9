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
# under runs/smoke (so they never mix with real runs); `--out-dir DIR` puts the run folders (and
# logs) under DIR instead of runs/ (DIR/smoke with --smoke), for example outside the work tree so
# that a long study outlives a checkout; `--jobs N` runs up to N runs at once (see submit); every
# other argument is passed on to each run. Sets SMOKE (an array, empty or --smoke), RUNS, EXTRA
# and JOBS, and creates $RUNS/logs.
parse_reproduce_args() {
    SMOKE=()
    local root=runs
    EXTRA=()
    JOBS=1
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --smoke) SMOKE=(--smoke) ;;
            --out-dir) root="${2-}"; shift $(($# > 1 ? 2 : 1)); continue ;;
            --out-dir=*) root="${1#--out-dir=}" ;;
            --jobs) JOBS="${2-}"; shift $(($# > 1 ? 2 : 1)); continue ;;
            --jobs=*) JOBS="${1#--jobs=}" ;;
            *) EXTRA+=("$1") ;;
        esac
        shift
    done
    if [[ -z "$root" ]]; then
        echo "error: --out-dir needs a folder" >&2
        exit 2
    fi
    RUNS="$root"
    if [[ ${#SMOKE[@]} -gt 0 ]]; then
        RUNS="$root/smoke"
    fi
    if [[ ! "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: --jobs needs a positive integer, got '$JOBS'" >&2
        exit 2
    fi
    if [[ $JOBS -gt 1 && -z "${OMP_NUM_THREADS:-}" ]]; then
        # Concurrent runs share the cores: oversubscribed torch threads slow every run down. A CPU
        # run's last digits can depend on its thread count: to compare with runs made one at a
        # time, set OMP_NUM_THREADS for both.
        local cores
        cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
        export OMP_NUM_THREADS=$((cores / JOBS > 1 ? cores / JOBS : 1))
    fi
    mkdir -p "$RUNS/logs"
}

# The run queue. `submit NAME CMD...` runs CMD with its output in $RUNS/logs/NAME.log: with
# --jobs 1 at once, its output also on the terminal; with --jobs N in the background, once fewer
# than N runs are going. A failed run does not stop the others. `wait_all` waits for every run,
# names the failed ones and returns non-zero if there are any. A run exiting with status 3 (a
# diverged run, recorded in its summary) counts as done when DIVERGED_IS_RESULT=1. Runs started
# together must not download the same data (--download): fetch it with one run first.
JOB_PIDS=()
JOB_NAMES=()
JOB_STARTS=()
FAILED_RUNS=()
DIVERGED_IS_RESULT=0

submit() {  # submit NAME CMD...
    local name=$1
    shift
    local log="$RUNS/logs/$name.log"
    echo "== $name: $*"
    if [[ $JOBS -eq 1 ]]; then
        local status=0 started=$SECONDS
        "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
        _run_ended "$name" "$status" "$started"
        return
    fi
    _reap_runs
    while [[ ${#JOB_PIDS[@]} -ge $JOBS ]]; do
        sleep 0.2
        _reap_runs
    done
    trap '_stop_runs 130' INT
    trap '_stop_runs 143' TERM
    "$@" > "$log" 2>&1 &
    JOB_PIDS[$!]=$!
    JOB_NAMES[$!]=$name
    JOB_STARTS[$!]=$SECONDS
}

wait_all() {
    while [[ ${#JOB_PIDS[@]} -gt 0 ]]; do
        sleep 0.2
        _reap_runs
    done
    if [[ ${#FAILED_RUNS[@]} -gt 0 ]]; then
        echo "error: ${#FAILED_RUNS[@]} run(s) failed: ${FAILED_RUNS[*]} (logs in $RUNS/logs/)" >&2
        return 1
    fi
}

_reap_runs() {  # record every background run that has ended (arrays indexed by pid)
    local pid status
    for pid in ${JOB_PIDS[@]+"${JOB_PIDS[@]}"}; do
        kill -0 "$pid" 2>/dev/null && continue
        status=0
        wait "$pid" || status=$?
        _run_ended "${JOB_NAMES[$pid]}" "$status" "${JOB_STARTS[$pid]}"
        unset "JOB_PIDS[$pid]"
    done
}

_run_ended() {  # _run_ended NAME STATUS START_SECONDS
    local took="after $((SECONDS - $3)) s"
    if [[ $2 -eq 0 ]]; then
        echo "== $1 done $took"
    elif [[ $2 -eq 3 && $DIVERGED_IS_RESULT -eq 1 ]]; then
        echo "== $1 diverged $took (exit status 3, recorded in its summary)"
    else
        echo "== $1 FAILED $took with exit status $2 (log: $RUNS/logs/$1.log)" >&2
        FAILED_RUNS+=("$1")
    fi
}

_stop_runs() {  # _stop_runs EXIT_STATUS: on Ctrl-C, end the background runs too
    local pid
    for pid in ${JOB_PIDS[@]+"${JOB_PIDS[@]}"}; do
        kill "$pid" 2>/dev/null || true
    done
    exit "$1"
}
