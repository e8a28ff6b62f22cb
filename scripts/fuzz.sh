#!/usr/bin/env bash
# The fuzzers (fuzz/, cargo fuzz on libFuzzer; nightly Rust, as the machine's
# rustup has it, else the stable compiler told to allow nightly flags).
#
#   scripts/fuzz.sh short          each target for a fixed number of runs from a
#                                  fixed seed (what scripts/test.sh runs: about a
#                                  minute in all, the same inputs every time)
#   scripts/fuzz.sh long [RUNS]    each target until RUNS executions (10 million
#                                  by default), one job a core, crashes kept in
#                                  fuzz/artifacts/ (hours: by hand)
#   scripts/fuzz.sh TARGET [ARGS]  one target, with libFuzzer's ARGS
#
# Limits (the issue's): no input past 1 s (-timeout; see time_limit), no allocation past
# 256 MiB (-malloc_limit_mb), no more than 2 GiB resident (-rss_limit_mb:
# ASan's shadow memory and the corpus count there). Seeds come from
# examples/fuzz_seeds.rs and the hostile files of tests/gguf_hostile.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TARGETS=(gguf_header gguf_stream tokenizer_metadata tokenize chat_template tool_calls js_options)
LIMITS=(-malloc_limit_mb=256 -rss_limit_mb=2048)
# 1 s an input, but for chat_template: its instrumented build runs minijinja
# some 120 times slower than a release build (an endless loop, stopped by the
# 2 million instruction limit, takes 61 ms natively and 7.5 s here).
time_limit() { if [ "$1" = chat_template ]; then echo -timeout=10; else echo -timeout=1; fi; }
# js_options keeps its model in a static for the whole run; minijinja packs
# its values (repr(packed)), so LeakSanitizer cannot see the pointers the
# model's template holds and calls them leaked at exit.
asan() { if [ "$1" = js_options ]; then echo detect_leaks=0; else echo detect_leaks=1; fi; }

if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2

# The crate's own dependency versions (fuzz/ resolves only what it adds).
cp Cargo.lock fuzz/Cargo.lock
(cd fuzz && cargo "${toolchain[@]}" fuzz build -O)
bin=fuzz/target/x86_64-unknown-linux-gnu/release

# The seeds come from the crate's native build: with WEBSLM_FEATURES's
# features (scripts/test.sh's), that build is the one already made.
features=()
if [ -n "${WEBSLM_FEATURES:-}" ]; then features=(--features "$WEBSLM_FEATURES"); fi
seeds() {
  rm -rf fuzz/corpus
  cargo run --quiet --release "${features[@]}" --example fuzz_seeds -- fuzz/corpus
  WEBSLM_FUZZ_SEEDS=fuzz/corpus cargo test --quiet --release "${features[@]}" --test gguf_hostile >/dev/null
}

mode=${1:-short}
case "$mode" in
  short)
    seeds
    # A fixed seed and number of runs (each target's about 5 s here): the
    # same inputs on every machine.
    declare -A RUNS=([gguf_header]=30000 [gguf_stream]=15000 [tokenizer_metadata]=1200 [tokenize]=8000
      [chat_template]=3000 [tool_calls]=60000 [js_options]=4000)
    for t in "${TARGETS[@]}"; do
      log=$(mktemp)
      mkdir -p "fuzz/artifacts/$t"
      status=0
      ASAN_OPTIONS=$(asan "$t") "$bin/$t" "${LIMITS[@]}" "$(time_limit "$t")" -seed=1 -runs="${RUNS[$t]}" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
      echo "== fuzz $t: $(grep -E '^stat::number_of_executed_units' "$log" | grep -oE '[0-9]+$') runs, peak RSS $(grep -E '^stat::peak_rss_mb' "$log" | grep -oE '[0-9]+$') MiB"
      if [ "$status" -ne 0 ]; then
        tail -60 "$log"
        echo "fuzz $t failed: its input is in fuzz/artifacts/$t/ (scripts/fuzz.sh $t FILE runs it again)"
        exit "$status"
      fi
      rm -f "$log"
    done
    ;;
  long)
    runs=${2:-10000000}
    [ -d fuzz/corpus ] || seeds
    for t in "${TARGETS[@]}"; do
      echo "== fuzz $t: $runs runs"
      mkdir -p "fuzz/artifacts/$t"
      ASAN_OPTIONS=$(asan "$t") "$bin/$t" "${LIMITS[@]}" "$(time_limit "$t")" -runs="$runs" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" 2>&1 | tail -40
    done
    ;;
  *)
    [ -d fuzz/corpus ] || seeds
    t=$mode
    shift
    mkdir -p "fuzz/artifacts/$t"
    ASAN_OPTIONS=$(asan "$t") exec "$bin/$t" "${LIMITS[@]}" "$(time_limit "$t")" -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" "$@"
    ;;
esac
