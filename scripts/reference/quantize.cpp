// Quantizes a GGUF with llama.cpp's own quantizer (llama_model_quantize, as
// llama-quantize does): `quantize IN OUT FTYPE [pure]`, FTYPE the number of
// a llama_ftype (1 F16, 2 Q4_0, 3 Q4_1, 7 Q8_0, 8 Q5_0, 9 Q5_1, 15 Q4_K_M,
// 18 Q6_K). `pure` puts every 2-D tensor in FTYPE's type (no mixes, no
// Q6_K output), as the tiny architecture models are made; without it the
// file gets llama.cpp's usual mix. Requantizing a quantized file is allowed.
// Built by build.sh.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s IN OUT FTYPE [pure]\n", argv[0]);
        return 2;
    }
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto params = llama_model_quantize_default_params();
    params.nthread = 2;
    params.ftype = (llama_ftype) atoi(argv[3]);
    params.allow_requantize = true;
    params.pure = argc > 4 && strcmp(argv[4], "pure") == 0;
    if (llama_model_quantize(argv[1], argv[2], &params) != 0) {
        fprintf(stderr, "quantizing %s failed\n", argv[1]);
        return 1;
    }
    return 0;
}
