#!/usr/bin/env bash
# Sets everything up (toolchain pieces, npm tools, the models), builds the npm
# package and serves the demo chat page on 127.0.0.1 with the
# cross-origin-isolation headers. Open the printed URL; Ctrl+C stops it.
#   bash scripts/demo.sh [--port N] [--model smollm2|gemma3]
# --model picks the model the page loads first (SmolLM2 135M Instruct unless
# told; the page's Model menu switches between them).
set -euo pipefail
cd "$(dirname "$0")/.."
port=8080
model=smollm2
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "usage: bash scripts/demo.sh [--port N] [--model smollm2|gemma3]" >&2; exit 2 ;;
  esac
done
case "$model" in
  smollm2) query= ;;
  gemma3) query="?model=gemma3" ;;
  *) echo "--model takes smollm2 or gemma3, not $model" >&2; exit 2 ;;
esac
bash scripts/setup.sh
bash scripts/build-pkg.sh
echo
echo "  webslm demo: http://127.0.0.1:$port/www/$query"
echo
exec node scripts/serve.mjs --port "$port"
