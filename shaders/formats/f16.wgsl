// F16 as the GPU keeps it (as in the file): 32 weights in 16 words, two
// halves a word, the first in the low half.
// `quads(base, i)`, i in 0..4: the block's values 4i..4i+3 (`.lo`) and
// 16+4i..16+4i+3 (`.hi`), dequantized. No arrays: a GPU emulated on the
// CPU (lavapipe, SwiftShader) keeps a shader's arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 16u;

fn quads(base: u32, i: u32) -> Quads {
    let lo = base + 2u * i;
    let hi = lo + 8u;
    return Quads(
        vec4<f32>(unpack2x16float(w[lo]), unpack2x16float(w[lo + 1u])),
        vec4<f32>(unpack2x16float(w[hi]), unpack2x16float(w[hi + 1u])),
    );
}
