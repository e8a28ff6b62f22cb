// F32 as the GPU keeps it (as in the file): 32 weights in 32 words.
const BLOCK_WORDS: u32 = 32u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        let at = base + 4u * i;
        out[i] = bitcast<vec4<f32>>(vec4<u32>(w[at], w[at + 1u], w[at + 2u], w[at + 3u]));
    }
    return out;
}
