#!/usr/bin/env bash
# Runs every fuzz target of a LOOM_FUZZ build for SECONDS each on its seed
# corpus (and what earlier runs in that build added to it); stops at the first
# crash, leak, sanitizer report, input slower than 10 s or above 2 GB, printing
# the input's file, which then belongs in tests/data/reliability/ with a unit test.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# LOOM_FUZZ_SEED=N fixes libFuzzer's random seed (CI sets it, so that a commit's
# CI run is the same every time; a long exploratory run leaves it unset: random).
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json safetensors idx image captions attributes cli)
here=$(cd "$(dirname "$0")" && pwd)
fuzz=$build/tests/fuzz
export OMP_NUM_THREADS=1  # one input at a time; loom's OpenMP loops would only add threads to wait for
for t in "${targets[@]}"; do
  corpus=$fuzz/corpus/$t
  mkdir -p "$corpus" "$fuzz/crashes"
  # What the build's earlier runs found, the seeds, and every input that once failed a reader.
  dirs=("$corpus" "$fuzz/seeds/$t" "$here/../data/reliability")
  echo "== fuzz_$t: ${seconds} s"
  # libFuzzer's lines per new input and new function are left out of the log; its status is the pipeline's (pipefail).
  if ! "$fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -seed="${LOOM_FUZZ_SEED:-0}" \
    -artifact_prefix="$fuzz/crashes/$t-" "${dirs[@]}" 2>&1 | { grep -v '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)\|NEW_FUNC' || true; }; then
    echo "fuzz_$t failed: the input is in $fuzz/crashes/" >&2
    exit 1
  fi
done
