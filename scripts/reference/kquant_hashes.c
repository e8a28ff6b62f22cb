// The expected hashes of src/quant/tests.rs's k_quants_match_ggml_bytes: built
// against build.sh's libggml-base (gcc -O2 kquant_hashes.c -I<llama.cpp>/ggml/include
// <llama.cpp>/build/ggml/src/libggml-base.a -lm -lpthread), run on the test's inputs
// written as little-endian f32s.
// Reads little-endian f32s (a multiple of 256) from argv[1]; prints, per type
// (Q4_K, Q5_K, Q6_K), ggml_quantize_chunk's bytes hashed per 256-element block
// with FNV-1a 64, as llama-quantize calls it without an importance matrix.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "ggml.h"
static uint64_t fnv(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    static float x[1 << 20];
    size_t n = fread(x, 4, 1 << 20, f);
    enum ggml_type types[3] = {GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    static uint8_t q[1 << 22];
    for (int t = 0; t < 3; t++) {
        size_t bs = ggml_row_size(types[t], 256);
        ggml_quantize_chunk(types[t], x, q, 0, n / 256, 256, NULL);
        printf("%s:", ggml_type_name(types[t]));
        for (size_t b = 0; b < n / 256; b++) printf(" 0x%016llx,", (unsigned long long)fnv(q + b * bs, bs));
        printf("\n");
    }
    return 0;
}
