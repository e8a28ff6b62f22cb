// Q4_0 as the GPU keeps it: per 32 weights, one word holding the f16 scale
// in its low half, then 16 bytes of codes in four words; byte j holds
// weight j in its low nibble and weight j + 16 in its high one, each
// offset by 8.
const BLOCK_WORDS: u32 = 5u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    let d = unpack2x16float(w[base]).x;
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 4u; i++) {
        let q = w[base + 1u + i];
        out[i] = (vec4<f32>(nibbles(q, 0u)) - 8.0) * d;
        out[i + 4u] = (vec4<f32>(nibbles(q, 4u)) - 8.0) * d;
    }
    return out;
}

// The nibbles at bit `at` of each byte of `q`.
fn nibbles(q: u32, at: u32) -> vec4<u32> {
    return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + at)) & vec4<u32>(0xfu);
}
