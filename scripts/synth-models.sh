#!/usr/bin/env bash
# Writes models of real 1-3B shapes with random weights into models/synth/
# (git-ignored) as <shape>-<format>.gguf, for speed and memory measurements
# (examples/synth_model.rs); a file already there is left alone. Default:
# tinyllama-1.1b in Q4_0 and Q4_K_M.
#
#   scripts/synth-models.sh [SHAPE FORMAT]...   # e.g. llama-3.2-3b Q4_K_M
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $(($# % 2)) -ne 0 ]; then
  echo "usage: scripts/synth-models.sh [SHAPE FORMAT]..." >&2
  exit 2
fi
[ $# -gt 0 ] || set -- tinyllama-1.1b Q4_0 tinyllama-1.1b Q4_K_M

mkdir -p models/synth
built=
while [ $# -gt 0 ]; do
  out="models/synth/$1-$2.gguf"
  if [ ! -f "$out" ]; then
    if [ -z "$built" ]; then
      cargo build --quiet --release --example synth_model
      built=1
    fi
    target/release/examples/synth_model "$1" "$2" "$out"
  fi
  shift 2
done
