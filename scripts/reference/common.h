// What the reference tools share: loading a model quietly, and running a
// batch of tokens whose last one's logits are wanted.
#pragma once
#include "llama.h"
#include <cstdio>
#include <vector>

// The model at `path` with llama.cpp's logging off; null (after saying so) if it cannot be loaded.
static llama_model * load_model(const char * path) {
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(path, llama_model_default_params());
    if (!model) fprintf(stderr, "cannot load %s\n", path);
    return model;
}

// Runs `ids` at positions pos.., asking for the last token's logits.
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
