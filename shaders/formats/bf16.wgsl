// BF16 as the GPU keeps it (as in the file): 32 weights in 16 words, two a
// word, the first in the low half; a bf16 is the high half of an f32.
const BLOCK_WORDS: u32 = 16u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        let a = w[base + 2u * i];
        let b = w[base + 2u * i + 1u];
        out[i] = bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
    }
    return out;
}
