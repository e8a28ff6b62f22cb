// Native llama.cpp's speed on a file, as llama-bench measures it: a prompt of
// P tokens as one batch (n_batch 512), then G tokens one at a time, on T
// threads, best of R runs after a warm-up run. `speed MODEL T P G [R]` prints
// one JSON line: prefill and decode tokens per second. The token ids are
// arbitrary (speed does not depend on them). Built by build.sh; beside
// webslm's `npm run bench` figures on the same file and machine.
#include "common.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char ** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL THREADS PROMPT_TOKENS GEN_TOKENS [RUNS]\n", argv[0]);
        return 2;
    }
    llama_model * model = load_model(argv[1]);
    if (!model) return 1;
    const int threads = atoi(argv[2]), n_prompt = atoi(argv[3]), n_gen = atoi(argv[4]);
    const int runs = argc > 5 ? atoi(argv[5]) : 3;
    auto cp = llama_context_default_params();
    cp.n_ctx = n_prompt + n_gen + 16;
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<llama_token> prompt(n_prompt);
    for (int i = 0; i < n_prompt; i++) prompt[i] = (100 + 7 * i) % n_vocab;

    double best_prefill = 0, best_decode = 0;
    for (int run = 0; run <= runs; run++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t0 = now();
        for (int i = 0; i < n_prompt; i += 512) {
            std::vector<llama_token> part(prompt.begin() + i, prompt.begin() + std::min(n_prompt, i + 512));
            if (!decode(ctx, part, i)) return 1;
        }
        double t1 = now();
        for (int i = 0; i < n_gen; i++) {
            if (!decode(ctx, {(llama_token) ((200 + 13 * i) % n_vocab)}, n_prompt + i)) return 1;
        }
        double t2 = now();
        if (run == 0) continue;  // the warm-up
        best_prefill = std::max(best_prefill, n_prompt / (t1 - t0));
        best_decode = std::max(best_decode, n_gen / (t2 - t1));
    }
    printf("{\"threads\": %d, \"prompt\": %d, \"gen\": %d, \"prefill\": %.2f, \"decode\": %.2f}\n", threads, n_prompt,
           n_gen, best_prefill, best_decode);
    return 0;
}
