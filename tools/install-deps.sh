#!/usr/bin/env bash
# Installs the Debian packages loom builds against, when any is missing.
# (The CUDA toolkit is optional and not installed here: without nvcc loom
# builds its CPU backend only.)
set -euo pipefail
pkgs=(cmake ninja-build g++ libgtest-dev libbenchmark-dev libstb-dev zlib1g-dev libpng-dev
      libjpeg62-turbo-dev libopenblas-dev
      libopenblas0-pthread dataset-fashion-mnist)
# oneDNN 2.x: conv variant v0 on the CPU (kernels/cpu/conv_dnnl.cpp); loom builds without it.
pkgs+=(libdnnl-dev)
# The sanitizer build of .ci/run is clang's, with libFuzzer (tests/fuzz).
pkgs+=(clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
