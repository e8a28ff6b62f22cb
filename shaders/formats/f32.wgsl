// F32 as the GPU keeps it (as in the file): 32 weights in 32 words.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 32u;

fn row_words(k: u32) -> u32 {
    return k / 32u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b * BLOCK_WORDS;
    return Quads(four(base + 4u * i), four(base + 16u + 4u * i));
}

fn four(at: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w[at], w[at + 1u], w[at + 2u], w[at + 3u]));
}
