// Q8_0 as the GPU keeps it: per 32 weights, one word holding the f16 scale
// in its low half, then the 32 signed bytes in eight words.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 9u;

fn row_words(k: u32) -> u32 {
    return k / 32u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b * BLOCK_WORDS;
    let d = unpack2x16float(w[base]).x;
    return Quads(bytes(w[base + 1u + i]) * d, bytes(w[base + 5u + i]) * d);
}

// The four signed bytes of a word: each to the top of an i32, then back
// down with its sign.
fn bytes(word: u32) -> vec4<f32> {
    let q = bitcast<i32>(word);
    return vec4<f32>(vec4<i32>(q << 24u, q << 16u, q << 8u, q) >> vec4<u32>(24u));
}
