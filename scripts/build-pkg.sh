#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm32 (+simd128) engine through
# wasm-bindgen (--target web, which browsers, Node and Deno all load), plus the
# JS glue, types and package.json from pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --release --target wasm32-unknown-unknown --lib
rm -rf pkg
mkdir -p pkg/wasm
wasm-bindgen --target web --out-dir pkg/wasm --out-name webslm target/wasm32-unknown-unknown/release/webslm.wasm
cp -r pkg-template/. pkg/
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
sed -i "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" pkg/package.json
echo "built pkg/ ($(du -h pkg/wasm/webslm_bg.wasm | cut -f1) of wasm)"
