// Q8_0 as the GPU keeps it: per 32 weights, one word holding the f16 scale
// in its low half, then the 32 signed bytes in eight words.
const BLOCK_WORDS: u32 = 9u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    let d = unpack2x16float(w[base]).x;
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        // Each byte to the top of an i32, then back down with its sign.
        let q = bitcast<i32>(w[base + 1u + i]);
        out[i] = vec4<f32>(vec4<i32>(q << 24u, q << 16u, q << 8u, q) >> vec4<u32>(24u)) * d;
    }
    return out;
}
