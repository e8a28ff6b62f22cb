// F16 as the GPU keeps it (as in the file): 32 weights in 16 words, two
// halves a word, the first in the low half.
const BLOCK_WORDS: u32 = 16u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        out[i] = vec4<f32>(unpack2x16float(w[base + 2u * i]), unpack2x16float(w[base + 2u * i + 1u]));
    }
    return out;
}
