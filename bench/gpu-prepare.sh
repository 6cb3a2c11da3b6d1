#!/usr/bin/env bash
# Builds the kit bench/gpu.sh runs on a GPU machine: bench/gpu-kit/mammo (stripped release
# binary with the vulkan feature; FEATURES=vulkan,cuda adds CUDA where its LLVM download is
# possible) and bench/gpu-kit/lib/libvulkan.so.1 (Debian's libvulkan1), 64 MiB at most in all.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=bench/gpu-kit
features="${FEATURES:-vulkan}"
cargo build --release --locked -p mammo-cli --features "$features"
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$kit/lib"
strip -o "$kit/mammo" "$target/release/mammo"
lib=$(ldconfig -p | awk '/libvulkan.so.1 / {print $NF; exit}')
[ -n "$lib" ] || { echo "install libvulkan1 (apt-get install libvulkan1) to copy the loader" >&2; exit 1; }
cp -L "$lib" "$kit/lib/libvulkan.so.1"
du -sh "$kit" "$kit"/mammo "$kit"/lib/libvulkan.so.1
size=$(du -sb "$kit" | cut -f1)
[ "$size" -le $((64 * 1024 * 1024)) ] || { echo "kit is over 64 MiB" >&2; exit 1; }
