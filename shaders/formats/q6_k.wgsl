// Q6_K as the GPU keeps it: per 256 weights, a super-block of 53 words, the
// file's 210 bytes and two zero bytes. Words 0..32 hold the 128 bytes of
// low nibbles, words 32..48 the 64 bytes of high bit pairs, words 48..52
// the sixteen signed 8-bit scales (one per 16 weights), word 52 the f16
// scale d in its low half. The super-block is two halves of 128 weights,
// each four runs of 32: 32-weight sub-block j is run g = j % 4 of half
// h = j / 4, and its weight l is q - 32, where q's low four bits are the
// low (g < 2) or high nibble of byte 64h + 32·(g % 2) + l and its top two
// bits are bits 2g and 2g + 1 of high-bit byte 32h + l. Weight =
// (d·scale)·(q - 32), with scale 8h + 2g for l < 16 and 8h + 2g + 1 after.
// `row_words(k)`: the words of a row of k weights. `quads(row_base, b, i)`,
// i in 0..4: values 4i..4i+3 (`.lo`) and 16+4i..16+4i+3 (`.hi`) of 32-weight
// block b of the row whose words start at `row_base`, dequantized. No
// arrays: a GPU emulated on the CPU (lavapipe, SwiftShader) keeps a shader's
// arrays in memory, lane by lane; sub-block scales are picked with shifts
// and `select` instead of indexing.
const BLOCK_WORDS: u32 = 53u;

fn row_words(k: u32) -> u32 {
    return k / 256u * BLOCK_WORDS;
}

fn quads(row_base: u32, b: u32, i: u32) -> Quads {
    let base = row_base + b / 8u * BLOCK_WORDS;
    let h = b % 8u / 4u;
    let g = b % 4u;
    let d = unpack2x16float(w[base + 52u]).x;
    // Scales 8h + 2g and 8h + 2g + 1: bytes 2·(g % 2) and one more of a word.
    let sc = bitcast<i32>(w[base + 48u + 2u * h + g / 2u]);
    let at = g % 2u * 16u;
    let s_lo = f32((sc << (24u - at)) >> 24u);
    let s_hi = f32((sc << (16u - at)) >> 24u);
    let ql = base + 16u * h + 8u * (g % 2u) + i;
    let qh = base + 32u + 8u * h + i;
    let nib = g / 2u * 4u;
    return Quads(
        vec4<f32>(codes(w[ql], nib, w[qh], 2u * g)) * (d * s_lo),
        vec4<f32>(codes(w[ql + 4u], nib, w[qh + 4u], 2u * g)) * (d * s_hi),
    );
}

// The four 6-bit codes of a word of low nibbles (at bit `nib` of each byte)
// and a word of high bit pairs (at bit `two`), minus 32.
fn codes(ql: u32, nib: u32, qh: u32, two: u32) -> vec4<i32> {
    let lanes = vec4<u32>(0u, 8u, 16u, 24u);
    let low = (vec4<u32>(ql) >> (lanes + nib)) & vec4<u32>(0xfu);
    let high = ((vec4<u32>(qh) >> (lanes + two)) & vec4<u32>(3u)) << vec4<u32>(4u);
    return vec4<i32>(low | high) - vec4<i32>(32);
}
