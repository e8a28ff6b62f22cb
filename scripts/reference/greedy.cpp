// Greedy continuation with llama.cpp, as the fixtures' reference_greedy.json
// was made (llama-cpp-python: the prompt as one batch, then one token at a
// time, argmax with ties to the lowest id): `greedy MODEL N ID...` prints, for
// each of up to N steps, the chosen id then llama.cpp's top-3 as `id logit`
// pairs, one step a line; it stops after an end-of-generation token. Built by
// build.sh; long.py turns its output into reference_long.json.
#include "common.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL N ID...\n", argv[0]);
        return 2;
    }
    llama_model * model = load_model(argv[1]);
    if (!model) return 1;
    const int steps = atoi(argv[2]);
    std::vector<llama_token> ids;
    for (int i = 3; i < argc; i++) ids.push_back(atoi(argv[i]));

    // As llama_ref.py made the gemma fixtures: n_ctx = n_batch = n_ubatch =
    // 2048, 2 threads, no flash attention, full-size cache on windowed layers.
    auto cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 2048;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.swa_full = true;
    llama_context * ctx = llama_init_from_model(model, cp);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    if (!decode(ctx, ids, 0)) {
        fprintf(stderr, "decode failed\n");
        return 1;
    }
    int pos = ids.size();
    std::vector<int> order(n_vocab);
    for (int s = 0; s < steps; s++) {
        const float * lg = llama_get_logits_ith(ctx, -1);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                          [&](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); });
        printf("%d", order[0]);
        for (int i = 0; i < 3; i++) printf(" %d %.4f", order[i], lg[order[i]]);
        printf("\n");
        if (llama_vocab_is_eog(vocab, order[0]) || !decode(ctx, {order[0]}, pos++)) break;
    }
    return 0;
}
