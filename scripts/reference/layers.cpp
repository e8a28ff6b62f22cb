// Prints llama.cpp's residual stream after each layer (the graph's
// `l_out-<i>` tensors) for the last of a token sequence run as one batch:
// `layers MODEL OUT.bin ID...` writes n_layer x n_embd little-endian f32.
// For finding the layer where another engine's numbers part from
// llama.cpp's (scripts/reference/layers.py). Built by build.sh.
#include "common.h"
#include "ggml.h"
#include "ggml-backend.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

static std::map<int, std::vector<float>> rows;

static bool keep(struct ggml_tensor * t, bool ask, void *) {
    if (strncmp(t->name, "l_out-", 6) != 0) return ask ? false : true;
    if (ask) return true;
    const int64_t n_embd = t->ne[0], n_rows = t->ne[1];
    std::vector<float> all(n_embd * n_rows);
    ggml_backend_tensor_get(t, all.data(), 0, all.size() * sizeof(float));
    rows[atoi(t->name + 6)] = std::vector<float>(all.end() - n_embd, all.end());
    return true;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL OUT.bin ID...\n", argv[0]);
        return 2;
    }
    llama_model * model = load_model(argv[1]);
    if (!model) return 1;
    std::vector<llama_token> ids;
    for (int i = 3; i < argc; i++) ids.push_back(atoi(argv[i]));
    auto cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.cb_eval = keep;
    llama_context * ctx = llama_init_from_model(model, cp);
    llama_batch batch = llama_batch_init(ids.size(), 0, 1);
    for (size_t i = 0; i < ids.size(); i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = ids.size();
    if (llama_decode(ctx, batch)) return 1;
    FILE * out = fopen(argv[2], "wb");
    for (auto & [layer, row] : rows) fwrite(row.data(), sizeof(float), row.size(), out);
    fclose(out);
    return 0;
}
