// F32 as the GPU keeps it (as in the file): 32 weights in 32 words.
// `quads(base, i)`, i in 0..4: the block's values 4i..4i+3 (`.lo`) and
// 16+4i..16+4i+3 (`.hi`), dequantized. No arrays: a GPU emulated on the
// CPU (lavapipe, SwiftShader) keeps a shader's arrays in memory, lane by lane.
const BLOCK_WORDS: u32 = 32u;

fn quads(base: u32, i: u32) -> Quads {
    return Quads(four(base + 4u * i), four(base + 16u + 4u * i));
}

fn four(at: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w[at], w[at + 1u], w[at + 2u], w[at + 3u]));
}
