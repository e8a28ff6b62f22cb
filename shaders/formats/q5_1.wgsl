// Q5_1 as the GPU keeps it (as in the file, 24 bytes): per 32 weights, one
// word holding the f16 scale and minimum, one word of fifth bits (bit j for
// weight j), then 16 bytes of low nibbles in four words (byte j: weight j
// low, j + 16 high).
const BLOCK_WORDS: u32 = 6u;

fn dequant(base: u32) -> array<vec4<f32>, 8> {
    let dm = unpack2x16float(w[base]);
    let qh = w[base + 1u];
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 4u; i++) {
        let q = w[base + 2u + i];
        out[i] = vec4<f32>(nibbles(q, 0u) | high_bits(qh, 4u * i)) * dm.x + dm.y;
        out[i + 4u] = vec4<f32>(nibbles(q, 4u) | high_bits(qh, 16u + 4u * i)) * dm.x + dm.y;
    }
    return out;
}

// Bits `first`..`first + 3` of `qh`, each moved to bit 4 of its lane.
fn high_bits(qh: u32, first: u32) -> vec4<u32> {
    return ((vec4<u32>(qh) >> (vec4<u32>(0u, 1u, 2u, 3u) + first)) & vec4<u32>(1u)) << vec4<u32>(4u);
}

// The nibbles at bit `at` of each byte of `q`.
fn nibbles(q: u32, at: u32) -> vec4<u32> {
    return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + at)) & vec4<u32>(0xfu);
}
