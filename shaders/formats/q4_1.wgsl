// Q4_1 as the GPU keeps it (as in the file, 20 bytes): per 32 weights, one
// word holding the f16 scale and minimum, then 16 bytes of codes in four
// words; byte j holds weight j in its low nibble and weight j + 16 in its
// high one.
const BLOCK_WORDS: u32 = 5u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    let dm = unpack2x16float(w[base]);
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 4u; i++) {
        let q = w[base + 1u + i];
        out[i] = vec4<f32>(nibbles(q, 0u)) * dm.x + dm.y;
        out[i + 4u] = vec4<f32>(nibbles(q, 4u)) * dm.x + dm.y;
    }
    return out;
}

// The nibbles at bit `at` of each byte of `q`.
fn nibbles(q: u32, at: u32) -> vec4<u32> {
    return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + at)) & vec4<u32>(0xfu);
}
