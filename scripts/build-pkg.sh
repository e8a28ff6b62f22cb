#!/usr/bin/env bash
# Builds the npm package into pkg/: the wasm32 engine in its variants, each
# through wasm-bindgen (--target web, which browsers, Node and Deno all load),
# plus the JS glue, types and package.json from pkg-template/. index.js picks
# a variant at load time:
#
#   webslm-simd128               SIMD128: every browser, Node and Deno since 2021
#   webslm-relaxed-simd          + relaxed SIMD (Chrome 114+, Node 22+)
#   webslm-threads-simd128       + threads: Web Workers on shared memory, for
#                                  cross-origin-isolated pages (Safari, Firefox)
#   webslm-threads-relaxed-simd  threads and relaxed SIMD (Chrome)
#
# The single-threaded builds also carry the WebGPU backend (`gpu`), which
# runs the model on one thread anyway; the threaded builds are CPU only.
# The threaded builds need nightly (std rebuilt with atomics; setup.sh installs
# rust-src and the wasm32 target for it). Each variant has its own target
# directory, so that rebuilding one leaves the others' caches alone.
# `--only simd128` (or a comma-separated list) builds just those, for quick
# iteration; index.js then falls back to what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

only=all
if [ "${1:-}" = --only ]; then only=$2; fi
wanted() { [ "$only" = all ] || [[ ",$only," == *",$1,"* ]]; }

# Threads: a shared, imported memory (rustc stopped implying these linker
# flags from +atomics in 2025, rust-lang/rust#147225) with a declared maximum
# of 4 GiB, all that wasm32 addresses, and the TLS symbols that wasm-bindgen's
# thread support initialises each Worker with.
threads_flags="-C target-feature=+atomics,+bulk-memory,+mutable-globals"
for arg in --shared-memory --import-memory --max-memory=4294967296 \
  --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base; do
  threads_flags="-C link-arg=$arg $threads_flags"
done
# Size: one codegen unit optimised across crates (LTO), no debug info, the
# crates off the token path (chat templates, regexes, JSON, llguidance's
# grammars: 49 kB less there, its masks as fast) optimised for size, no name
# section (WEBSLM_PROFILE=1 keeps it, 0.5 MB, so that a profiler shows Rust
# names). The kernels keep opt-level 3. binaryen's
# wasm-opt -O3 would take 0.2 MB more off, and 4-5% off decode in Node.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_DEBUG=0
size_args=()
for crate in minijinja minijinja-contrib regex-automata regex-syntax fancy-regex aho-corasick serde_json \
  serde-wasm-bindgen unicode-normalization-alignments indexmap llguidance derivre toktrie referencing fluent-uri; do
  size_args+=(--config "profile.release.package.$crate.opt-level=\"s\"")
done
strip=(--remove-name-section --remove-producers-section)
if [ -n "${WEBSLM_PROFILE:-}" ]; then strip=(); fi

# name  toolchain  target-dir  rustflags  cargo-args
variants=(
  "simd128|stable|target|-C target-feature=+simd128|--features gpu"
  "relaxed-simd|stable|target/wasm-relaxed-simd|-C target-feature=+simd128,+relaxed-simd|--features gpu"
  "threads-simd128|nightly|target/wasm-threads-simd128|$threads_flags,+simd128|--features threads -Z build-std=panic_abort,std"
  "threads-relaxed-simd|nightly|target/wasm-threads-relaxed-simd|$threads_flags,+simd128,+relaxed-simd|--features threads -Z build-std=panic_abort,std"
)

rm -rf pkg
mkdir -p pkg/wasm
for v in "${variants[@]}"; do
  IFS='|' read -r name toolchain dir flags args <<<"$v"
  wanted "$name" || continue
  start=$SECONDS
  # shellcheck disable=SC2086 # the cargo arguments are words
  CARGO_TARGET_DIR=$dir RUSTFLAGS=$flags cargo "+$toolchain" build "${size_args[@]}" --quiet --release \
    --target wasm32-unknown-unknown --lib $args
  wasm-bindgen --target web "${strip[@]}" --out-dir pkg/wasm --out-name "webslm-$name" \
    "$dir/wasm32-unknown-unknown/release/webslm.wasm"
  echo "built webslm-$name ($(du -h "pkg/wasm/webslm-${name}_bg.wasm" | cut -f1)) in $((SECONDS - start)) s"
done
if [ -d pkg/wasm/snippets ]; then node scripts/patch-rayon-workers.mjs pkg/wasm/snippets; fi
cp -r pkg-template/. pkg/
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
sed -i "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" pkg/package.json
echo "built pkg/"
