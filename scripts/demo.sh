#!/usr/bin/env bash
# Sets everything up and chats with the default model (SmolLM2-135M-Instruct)
# through the native example. The browser demo page replaces this later.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
prompt=${1:-"Write a haiku about a browser tab that keeps a secret."}
cargo run --release --example generate -- \
  --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat "$prompt" --max-tokens 128
