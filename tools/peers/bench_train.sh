#!/usr/bin/env bash
# loom against its PyTorch twin, whole training steps, interleaved on the same cores
# (issue #15; docs/results/training-speed.md):
#   tools/peers/bench_train.sh LOOM MODEL ROUNDS THREADS [STEPS]
# LOOM is the loom binary, MODEL one step_twins.py knows (vae, classifier, bernoulli, markov,
# nade, pixelcnn, pixelrnn, aae, infogan, text2image, cyclegan, progan, ddpm, stargan, puzzlegan, gan,
# cgan, dcgan). Each round runs `loom bench train` and the twin (step_twins.py) once each
# (alternating which goes first), STEPS timed steps each (default 20); prints each round's rows
# and ratio (loom's median step time / the twin's: below 1 is loom faster), then the median
# ratio and its range over the rounds.
set -euo pipefail
loom=${1:?usage: bench_train.sh LOOM MODEL ROUNDS THREADS [STEPS]}
model=${2:?} rounds=${3:?} threads=${4:?} steps=${5:-20}
here=$(cd "$(dirname "$0")" && pwd)
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=passive
# loom picks OpenBLAS's kernels for this CPU itself (kernels::restart_with_fast_openblas); PyTorch
# does not, so on a CPU OpenBLAS does not know, export OPENBLAS_CORETYPE (docs/results/cpu.md) for both.
[ -n "${OPENBLAS_CORETYPE:-}" ] || echo "note: OPENBLAS_CORETYPE is unset; the twin may run generic kernels" >&2
ratios=()
for r in $(seq 1 "$rounds"); do
  run_loom() { "$loom" bench train "$model" --threads "$threads" --steps "$steps" --json 2>/dev/null; }
  run_twin() { /usr/bin/python3 "$here/step_twins.py" "$model" --threads "$threads" --steps "$steps"; }
  if ((r % 2)); then l=$(run_loom); t=$(run_twin); else t=$(run_twin); l=$(run_loom); fi
  echo "$l"
  echo "$t"
  ratio=$(/usr/bin/python3 -c 'import json,sys; print("%.3f" % (json.loads(sys.argv[1])["median_ms"] / json.loads(sys.argv[2])["median_ms"]))' "$l" "$t")
  echo "round $r: loom/torch step time $ratio"
  ratios+=("$ratio")
done
/usr/bin/python3 -c 'import statistics,sys; r=sorted(map(float,sys.argv[1:])); print("ratio (loom/torch step time) median %.3f, range %.3f-%.3f over %d rounds" % (statistics.median(r), r[0], r[-1], len(r)))' "${ratios[@]}"
