#!/usr/bin/env bash
# Runs one benchmark and records what it printed in benchmarks/results/<name>.txt, under the command, the date and
# the machine (the performance page of the docs shows these records). The record is replaced only when the
# benchmark succeeds.
#   PYTHON=.venv/bin/python bash benchmarks/record.sh bench_w2 [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
py=${PYTHON:-python3}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
{
    echo "\$ python benchmarks/$name.py $*"
    echo "# $(date -u +%Y-%m-%d), $(nproc) CPUs (${cpu:-unknown}), $($py -c 'import torch; print("torch", torch.__version__, "| CUDA:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")')"
} >"$tmp"
"$py" "benchmarks/$name.py" "$@" 2>&1 | tee -a "$tmp"
mkdir -p benchmarks/results
cp "$tmp" "benchmarks/results/$name.txt"
