// Prints llama.cpp's logits for a token sequence run as one batch, the way
// webslm's teacher-forced tests run it: `logits MODEL OUT.bin ID...` writes
// n_tokens x n_vocab little-endian f32 to OUT.bin. Built by build.sh against
// the llama.cpp that llama-cpp-python vendors. LOGITS_BATCH=n feeds the
// tokens n at a time instead, LOGITS_THREADS=n sets the threads (2): for
// llama.cpp's own spread on a file.
#include "common.h"
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL OUT.bin ID...\n", argv[0]);
        return 2;
    }
    llama_model * model = load_model(argv[1]);
    if (!model) return 1;
    std::vector<llama_token> ids;
    for (int i = 3; i < argc; i++) ids.push_back(atoi(argv[i]));

    // As the fixtures were made: n_batch 512, 2 threads, no flash attention.
    auto cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = cp.n_ubatch = 512;
    const char * threads = getenv("LOGITS_THREADS");
    cp.n_threads = cp.n_threads_batch = threads ? atoi(threads) : 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);

    const char * step_env = getenv("LOGITS_BATCH");
    const size_t step = step_env ? atoi(step_env) : ids.size();
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE * out = fopen(argv[2], "wb");
    for (size_t first = 0; first < ids.size(); first += step) {
        const size_t n = std::min(step, ids.size() - first);
        llama_batch batch = llama_batch_init(n, 0, 1);
        for (size_t i = 0; i < n; i++) {
            batch.token[i] = ids[first + i];
            batch.pos[i] = first + i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = n;
        if (llama_decode(ctx, batch)) {
            fprintf(stderr, "decode failed\n");
            return 1;
        }
        for (size_t i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), n_vocab, out);
        llama_batch_free(batch);
    }
    fclose(out);
    return 0;
}
