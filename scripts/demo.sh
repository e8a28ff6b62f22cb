#!/usr/bin/env bash
# Sets everything up (toolchain pieces, npm tools, the default model), builds
# the npm package and serves the demo chat page on 127.0.0.1 with the
# cross-origin-isolation headers. Open the printed URL; Ctrl+C stops it.
#   bash scripts/demo.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
port=8080
if [ "${1:-}" = "--port" ]; then port=$2; fi
echo
echo "  webslm demo: http://127.0.0.1:$port/www/"
echo
exec node scripts/serve.mjs --port "$port"
