// F16 as the GPU keeps it (as in the file): 32 weights in 16 words, two
// halves a word, the first in the low half.
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
    let lo = base + 2u * i;
    let hi = lo + 8u;
    return Quads(
        vec4<f32>(unpack2x16float(w[lo]), unpack2x16float(w[lo + 1u])),
        vec4<f32>(unpack2x16float(w[hi]), unpack2x16float(w[hi + 1u])),
    );
}
