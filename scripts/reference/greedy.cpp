// Greedy continuation with llama.cpp, as the fixtures' reference_greedy.json
// was made (llama-cpp-python: the prompt as one batch, then one token at a
// time, argmax with ties to the lowest id): `greedy MODEL N ID...` prints, for
// each of up to N steps, the chosen id then llama.cpp's top-3 as `id logit`
// pairs, one step a line; it stops after an end-of-generation token. Built by
// build.sh; long.py turns its output into reference_long.json.
#include "llama.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

static bool decode(llama_context * ctx, const std::vector<llama_token> & ids, int pos) {
    llama_batch batch = llama_batch_init(ids.size(), 0, 1);
    for (size_t i = 0; i < ids.size(); i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = pos + i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = i + 1 == ids.size();
    }
    batch.n_tokens = ids.size();
    bool ok = llama_decode(ctx, batch) == 0;
    llama_batch_free(batch);
    return ok;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL N ID...\n", argv[0]);
        return 2;
    }
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
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
