#!/usr/bin/env bash
# Run one benchmark and keep its output with the machine it ran on, for the README to quote:
#
#   bash benchmarks/record.sh bench_train_step --threads 1 --mode compiled
#       -> benchmarks/results/bench_train_step.txt (or NAME given with OUT_NAME=...)
#
# The header records the date, the CPU, the cores, torch and the load average when it started
# (a benchmark is meant to run on an otherwise idle machine: the load says whether it did).
source "$(dirname "$0")/../scripts/_env.sh"
name=$1
shift
out="benchmarks/results/${OUT_NAME:-$name}.txt"
mkdir -p benchmarks/results
{
    echo "# python benchmarks/$name.py${*:+ $*}"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) | $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(getconf _NPROCESSORS_ONLN) cores" \
         "| torch $(python -c 'import torch; print(torch.__version__)')" \
         "| OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} | load average at start:" \
         "$(cut -d' ' -f1-3 /proc/loadavg)"
    (cd benchmarks && python "$name.py" "$@")
} > "$out.tmp" 2> "$out.stderr" || {
    cat "$out.stderr" >&2
    echo "error: $name failed; nothing recorded" >&2
    rm -f "$out.tmp" "$out.stderr"
    exit 1
}
rm -f "$out.stderr"  # library warnings (compiler notices), not results
mv "$out.tmp" "$out"
tail -n 1 "$out"
