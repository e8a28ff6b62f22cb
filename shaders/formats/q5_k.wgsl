// Q5_K as the GPU keeps it (as in the file, 176 bytes): per 256 weights, a
// super-block of 44 words. Word 0 holds the f16 scale d (low half) and the
// f16 minimum scale dmin (high half); words 1..4 the twelve bytes of 6-bit
// scales and minimums of the eight 32-weight sub-blocks (as in Q4_K); words
// 4..12 the 32 bytes of fifth bits; words 12..44 the 128 bytes of low
// nibbles: sub-block j's weight l is the low (j even) or high (j odd)
// nibble of byte 32·(j/2) + l, plus bit j of fifth-bit byte l as 16.
// Weight = (d·scale)·q - dmin·min.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane; sub-block scales are picked with shifts
// and `select` instead of indexing.
const BLOCK_WORDS: u32 = 44u;

fn row_words(k: u32) -> u32 {
    return k / 256u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b / 8u * BLOCK_WORDS;
    let j = b % 8u;
    let dm = unpack2x16float(w[base]);
    let sm = vec2<f32>(scale_min(base, j));
    let d = dm.x * sm.x;
    let m = dm.y * sm.y;
    let q = base + 12u + j / 2u * 8u + i;
    let qh = base + 4u + i;
    let at = j % 2u * 4u;
    return Quads(
        vec4<f32>(nibbles(w[q], at) | fifth_bits(w[qh], j)) * d - m,
        vec4<f32>(nibbles(w[q + 4u], at) | fifth_bits(w[qh + 4u], j)) * d - m,
    );
}

// ggml's get_scale_min_k4: sub-block j's 6-bit scale (.x) and minimum (.y).
// Bytes 0..4 (scales) and 4..8 (minimums) hold sub-blocks 0..3's in their
// low six bits and the top two bits of sub-blocks 4..7's in their top two;
// bytes 8..12 hold the low four bits of sub-blocks 4..7's, the scale in the
// low nibble and the minimum in the high one.
fn scale_min(base: u32, j: u32) -> vec2<u32> {
    let s0 = w[base + 1u]; // bytes 0..4
    let s1 = w[base + 2u]; // bytes 4..8
    let s2 = w[base + 3u]; // bytes 8..12
    let at = j % 4u * 8u;
    let low = (vec2<u32>(s0, s1) >> vec2<u32>(at)) & vec2<u32>(63u);
    let top = ((vec2<u32>(s0, s1) >> vec2<u32>(at + 6u)) & vec2<u32>(3u)) << vec2<u32>(4u);
    let high = ((vec2<u32>(s2) >> vec2<u32>(at, at + 4u)) & vec2<u32>(0xfu)) | top;
    return select(high, low, j < 4u);
}

// The nibbles at bit `at` of each byte of `q`.
fn nibbles(q: u32, at: u32) -> vec4<u32> {
    return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + at)) & vec4<u32>(0xfu);
}

// Bit `j` of each byte of `qh`, moved to bit 4 of its lane.
fn fifth_bits(qh: u32, j: u32) -> vec4<u32> {
    return ((vec4<u32>(qh) >> (vec4<u32>(0u, 8u, 16u, 24u) + j)) & vec4<u32>(1u)) << vec4<u32>(4u);
}
