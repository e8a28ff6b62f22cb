#!/usr/bin/env bash
# Builds `logits`, `greedy`, `quantize`, `tokenize`, `layers` and `speed` (see the .cpp files) against llama-cpp-python 0.3.36's vendored
# llama.cpp, the version that made tests/fixtures. Takes about 15 minutes on 2
# cores. Output: scripts/reference/build/{logits,greedy,quantize,tokenize}.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p build && cd build
if [ ! -d llama_cpp_python-0.3.36 ]; then
  # Only this package as source: `--no-binary :all:` would build its build
  # tools (cmake itself) from source too.
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d .
  tar xzf llama_cpp_python-0.3.36.tar.gz
fi
src=llama_cpp_python-0.3.36/vendor/llama.cpp
if ! command -v cmake >/dev/null; then
  [ -x tools/bin/cmake ] || { python3 -m venv tools && tools/bin/pip install --quiet cmake; }
  export PATH="$PWD/tools/bin:$PATH"
fi
# AVX2 kernels, as the x86 machines the fixtures and peers were measured on run them.
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_OPENMP=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF >/dev/null
cmake --build "$src/build" --target llama -j 2 >/dev/null
for tool in logits greedy quantize tokenize layers speed; do
  g++ -O2 -std=c++17 ../$tool.cpp -I"$src/include" -I"$src/ggml/include" -o $tool \
    "$src/build/src/libllama.a" "$src/build/ggml/src/libggml.a" "$src/build/ggml/src/libggml-cpu.a" \
    "$src/build/ggml/src/libggml-base.a" -lpthread
done
echo "built $(pwd)/logits, greedy, quantize, tokenize, layers and speed"
