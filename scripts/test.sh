#!/usr/bin/env bash
# Every test: native unit and integration tests (including the llama.cpp
# reference checks on the real models), the wasm32 build's tests in Node, and
# the npm package's tests in Node.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== native tests"
cargo test --release --all-targets

echo "== wasm32 (+simd128) tests in Node"
cargo test --release --target wasm32-unknown-unknown --test wasm

echo "== npm package tests in Node"
bash scripts/build-pkg.sh
node --test tests/node/
