#!/usr/bin/env bash
# The checks owed to a GPU (docs/results/kernels.md, "Still owed"), as one script for a short lease
# of a machine that has a GPU, CUDA's toolkit and a driver, but none of loom's other dependencies
# (OpenBLAS, oneDNN, libpng, libjpeg) and no network to install them:
#
#   tools/gpu-checks.sh bundle BUILD      # here: BUILD's GPU binaries, the shared libraries they need
#                                         # beyond glibc and CUDA's, and a small Fashion-MNIST, packed
#                                         # into BUILD-bundle/bundle.tar.xz (~25 MiB) to carry
#   [GPU_CHECKS_SECONDS=540] \
#   tools/gpu-checks.sh run BUNDLE OUT    # there: unpack BUNDLE (the folder holding bundle.tar.xz)
#                                         # and run the checks, each under a time limit; in OUT:
#                                         # summary.txt, bench_train.jsonl and logs.tar.gz (every log,
#                                         # the VAE's pictures; three files, as a lease's $OUT takes few)
#
# BUILD is a CUDA build for the GPU's architecture (cmake -DLOOM_CUDA=ON
# -DCMAKE_CUDA_ARCHITECTURES=90 for Hopper). The CUDA libraries (cuBLAS, cuDNN) are the machine's
# own: `run` looks for them in the toolkit and in PyTorch's wheels (nvidia/*/lib). The data set is
# Fashion-MNIST's 10 000 test images standing in as the training split too: the runs here time
# steps and check that training works on the device, they do not report a model's quality.
# Every check's exit status and time go to summary.txt; one failing does not stop the others. The checks
# run in order of what is owed most (the suite, cuDNN, a training run, loom-bench, the bench rows,
# the sanitizers, then PyTorch's rows), each under its own time limit and all of them within
# GPU_CHECKS_SECONDS (default 540: a device call of timeout_s 600 keeps a minute to unpack and pack);
# a check the time left cannot hold is listed as not run.
set -uo pipefail

bundle() {
  local build=${1:?usage: gpu-checks.sh bundle BUILD}
  local dir="$build-bundle" stage
  stage=$(mktemp -d)
  mkdir -p "$stage/bin" "$stage/lib" "$stage/lib-compat" "$stage/data" "$dir"
  local bins=("$build/tools/loom" "$build/tests/loom_cuda_tests" "$build/tools/loom-bench")
  for b in "${bins[@]}"; do
    [ -x "$b" ] || { echo "gpu-checks: $b is missing: build BUILD with -DLOOM_CUDA=ON first" >&2; exit 1; }
    cp "$b" "$stage/bin/"
  done
  # What the binaries load beyond glibc's own libraries and CUDA's (the GPU machine brings those).
  # The C++ runtime and zlib go to lib-compat, used there only when the machine's own are missing
  # or too old: everything started under the checks (python3, compute-sanitizer) sees the path.
  ldd "${bins[@]}" | awk '/=> \// {print $1, $3}' | sort -u | while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda.so*|libcudart*|libcublas*|libcudnn*) ;;
      libstdc++*|libgcc_s*|libz.so*) cp -L "$path" "$stage/lib-compat/$name" ;;
      *) cp -L "$path" "$stage/lib/$name" ;;
    esac
  done
  local fm=/usr/share/datasets/fashion-mnist
  for kind in images-idx3 labels-idx1; do
    cp "$fm/t10k-$kind-ubyte.gz" "$stage/data/"
    cp "$fm/t10k-$kind-ubyte.gz" "$stage/data/train-$kind-ubyte.gz"
  done
  tar -C "$stage" -cf - bin lib lib-compat data | xz -T0 -6 > "$dir/bundle.tar.xz"
  rm -rf "$stage"
  echo "gpu-checks: $dir/bundle.tar.xz ($(du -h "$dir/bundle.tar.xz" | cut -f1)); carry $dir"
}

run() {
  local from=${1:?usage: gpu-checks.sh run BUNDLE OUT} out=${2:?usage: gpu-checks.sh run BUNDLE OUT}
  mkdir -p "$out"
  local root logs
  root=$(mktemp -d)
  logs="$root/logs"
  mkdir -p "$logs"
  xz -dc "$from/bundle.tar.xz" | tar -C "$root" -xf - || { echo "gpu-checks: cannot unpack $from/bundle.tar.xz" >&2; exit 1; }
  # CUDA's libraries: the toolkit's, else PyTorch's wheels (nvidia/<lib>/lib).
  local cuda_libs
  cuda_libs=$( (ls -d /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null
                python3 -c 'import glob, os, nvidia; print("\n".join(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib"))))' 2>/dev/null) | paste -sd:)
  local own_path=${LD_LIBRARY_PATH:-}  # what python3 (the twins) runs with
  export LD_LIBRARY_PATH="$root/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export OMP_WAIT_POLICY=passive
  local bin="$root/bin" data="$root/data" summary="$out/summary.txt"
  : > "$summary"
  if ldd "$bin"/* | grep -q "not found"; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$root/lib-compat"
    echo "libraries: the bundle's C++ runtime or zlib in use (the machine's missing or too old)" | tee -a "$summary"
  fi
  ldd "$bin"/* | grep "not found" | sort -u | sed 's/^/libraries: still /' | tee -a "$summary"
  local deadline=$(( $(date +%s) + ${GPU_CHECKS_SECONDS:-540} ))
  check() {  # check NAME SECONDS COMMAND...: its output in logs/NAME.log, its status in the summary
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    if (( deadline - start < 10 )); then
      echo "$name: not run (GPU_CHECKS_SECONDS spent)" | tee -a "$summary"
      return
    fi
    (( limit > deadline - start )) && limit=$(( deadline - start ))
    timeout --kill-after=5 "$limit" "$@" > "$logs/$name.log" 2>&1
    rc=$?
    echo "$name: rc=$rc ($(( $(date +%s) - start )) s)$([ $rc = 124 ] && echo ", timed out after $limit s")" | tee -a "$summary"
  }
  { date -u; nvidia-smi; echo; ldd "$bin/loom_cuda_tests"; } > "$logs/machine.log" 2>&1
  # 1. The CUDA suite against the CPU backend, graphs included; the cuDNN path (v0) through a step.
  check cuda_tests 240 "$bin/loom_cuda_tests" --gtest_brief=1
  check cudnn_v0 60 env LOOM_CONV=v0 "$bin/loom" train classifier --steps 3 --device cuda --data "$data" \
    --out "$logs/v0"
  # 2. A training run on the device, with its progress and pictures; the kernels against cuBLAS/cuDNN
  #    and the device's ceilings.
  check train_vae 120 "$bin/loom" train vae --epochs 1 --device cuda --data "$data" --out "$logs/vae"
  check loom_bench 120 "$bin/loom-bench"
  # 3. Whole steps eager and replayed as a CUDA graph (issue #15's GPU rows).
  for m in gan classifier vae dcgan nade pixelcnn ddpm; do
    for graph in "" --cuda-graph; do
      check "bench_${m}${graph:+_graph}" 30 "$bin/loom" bench train "$m" --device cuda $graph --steps 20 \
        --data "$data" --json
    done
  done
  # 4. compute-sanitizer (a Firecracker machine runs it; gVisor refuses the device).
  if command -v compute-sanitizer > /dev/null; then
    check sanitizer_memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 1 "$bin/loom_cuda_tests" \
      --gtest_filter='CudaConv*' --gtest_brief=1
    check sanitizer_racecheck 90 compute-sanitizer --tool racecheck --error-exitcode 1 "$bin/loom_cuda_tests" \
      --gtest_filter='CudaConv.Float32*' --gtest_brief=1
    check sanitizer_synccheck 45 compute-sanitizer --tool synccheck --error-exitcode 1 "$bin/loom_cuda_tests" \
      --gtest_filter='CudaConv.Float32*' --gtest_brief=1
    check sanitizer_initcheck 90 compute-sanitizer --tool initcheck --error-exitcode 1 "$bin/loom_cuda_tests" \
      --gtest_filter='CudaConv*' --gtest_brief=1
  else
    echo "sanitizers: compute-sanitizer not found" | tee -a "$summary"
  fi
  # 5. The same steps in PyTorch on the same card, eager and compiled (tools/peers/step_twins.py; the
  #    machine's own PyTorch and libraries).
  local twins
  twins="$(cd "$(dirname "$0")" && pwd)/peers/step_twins.py"
  for m in gan classifier vae dcgan nade pixelcnn ddpm; do
    check "twin_${m}" 60 env LD_LIBRARY_PATH="$own_path" python3 "$twins" "$m" --device cuda --steps 20 --data "$data"
  done
  for m in vae dcgan ddpm; do
    check "twin_${m}_compiled" 120 env LD_LIBRARY_PATH="$own_path" python3 "$twins" "$m" --device cuda --compile \
      --steps 20 --warmup 10 --data "$data"
  done
  grep -h '^{' "$logs"/bench_*.log "$logs"/twin_*.log > "$out/bench_train.jsonl" 2>/dev/null
  tar -C "$logs" --exclude='*.safetensors' -czf "$out/logs.tar.gz" .
  rm -rf "$root"
}

case "${1:-}" in
  bundle) shift; bundle "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: gpu-checks.sh bundle BUILD | run BUNDLE OUT" >&2; exit 2 ;;
esac
