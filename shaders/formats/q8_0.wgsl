// Q8_0 as the GPU keeps it: per 32 weights, one word holding the f16 scale
// in its low half, then the 32 signed bytes in eight words.
// `quads(base, i)`, i in 0..4: the block's values 4i..4i+3 (`.lo`) and
// 16+4i..16+4i+3 (`.hi`), dequantized. No arrays: a GPU emulated on the
// CPU (lavapipe, SwiftShader) keeps a shader's arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 9u;

fn quads(base: u32, i: u32) -> Quads {
    let d = unpack2x16float(w[base]).x;
    return Quads(bytes(w[base + 1u + i]) * d, bytes(w[base + 5u + i]) * d);
}

// The four signed bytes of a word: each to the top of an i32, then back
// down with its sign.
fn bytes(word: u32) -> vec4<f32> {
    let q = bitcast<i32>(word);
    return vec4<f32>(vec4<i32>(q << 24u, q << 16u, q << 8u, q) >> vec4<u32>(24u));
}
