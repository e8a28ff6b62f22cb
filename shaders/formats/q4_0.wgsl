// Q4_0 as the GPU keeps it: per 32 weights, one word holding the f16 scale
// in its low half, then 16 bytes of codes in four words; byte j holds
// weight j in its low nibble and weight j + 16 in its high one, each
// offset by 8.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 5u;

fn row_words(k: u32) -> u32 {
    return k / 32u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b * BLOCK_WORDS;
    let d = unpack2x16float(w[base]).x;
    let q = w[base + 1u + i];
    return Quads((vec4<f32>(nibbles(q, 0u)) - 8.0) * d, (vec4<f32>(nibbles(q, 4u)) - 8.0) * d);
}

// The nibbles at bit `at` of each byte of `q`.
fn nibbles(q: u32, at: u32) -> vec4<u32> {
    return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + at)) & vec4<u32>(0xfu);
}
