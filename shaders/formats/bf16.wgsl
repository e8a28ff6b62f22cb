// BF16 as the GPU keeps it (as in the file): 32 weights in 16 words, two a
// word, the first in the low half; a bf16 is the high half of an f32.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 16u;

fn row_words(k: u32) -> u32 {
    return k / 32u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b * BLOCK_WORDS;
    return Quads(four(base + 2u * i), four(base + 8u + 2u * i));
}

fn four(at: u32) -> vec4<f32> {
    let a = w[at];
    let b = w[at + 1u];
    return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
}
