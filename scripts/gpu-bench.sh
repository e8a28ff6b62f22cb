#!/usr/bin/env bash
# GPU speed, natively on whatever Vulkan, Metal or DX12 adapter wgpu finds
# (mesa's lavapipe where there is no GPU): SmolLM2 and Gemma 3, prefill and
# decode tokens a second for each GPU kernel family (software, hardware, and
# hardware with subgroups, f16 or both where the adapter has them) beside
# the CPU backend, in a table that names the adapter. A few minutes on a
# real GPU; on lavapipe, which emulates one on the CPU, more (fewer tokens:
# PROMPT=32 DECODE=16 RUNS=1).
#
#   scripts/gpu-bench.sh [MODEL.gguf...]     (default: the two test models)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -eq 0 ]; then
  bash scripts/fetch-models.sh >/dev/null
  set -- models/SmolLM2-135M-Instruct.Q4_1.gguf models/gemma-3-270m-q4_k_m.gguf
fi
cargo build --quiet --release --features gpu --example gpu_bench
# wgpu's Vulkan loader looks for a Wayland socket it does not need.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
target/release/examples/gpu_bench "$@" --prompt "${PROMPT:-128}" --decode "${DECODE:-64}" --runs "${RUNS:-2}"
