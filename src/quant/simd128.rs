//! WebAssembly SIMD128 kernels: the hot-path functions of `scalar` (the same
//! names and signatures), chosen by `cfg` for wasm32 builds with `+simd128`.
//!
//! Integer sums are exact, as in `scalar` (the bounds that keep every `i16`
//! lane from overflowing are stated where they are used), and each block's
//! sum meets its scales in the same float operations as in `scalar`, so
//! every result is bit-exact.
//!
//! The file-layout kernels unpack weight codes into `i8x16` registers and
//! multiply them with the activations by widening `i16x8` multiplies. The
//! packed kernels (four interleaved rows, `quant::packed`) dot four
//! activations broadcast to every lane with four elements of each row, so
//! each row sums in its own lane: without relaxed SIMD through `i16` codes
//! and `i32x4_dot_i16x8`; with it through the relaxed dot products, summed
//! in `i32` or `i16` lanes, whichever this machine runs faster.
//!
//! With `+relaxed-simd` the dot products of unsigned weight codes (below 128)
//! use `i32x4_relaxed_dot_i8x16_i7x16_add` (or its `i16x8` form), whose
//! result is deterministic when its second operand lies in [0, 127]: signed
//! formats are dotted unsigned and corrected by the activations' block sums,
//! which keeps the sums exact.

use core::arch::wasm32::*;

use super::scalar::{
    blocks, blocks_mut, f32_at, scales_mins_k4, Q4_0_BYTES, Q4_1_BYTES, Q4_K_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q5_K_BYTES,
    Q6_K_BYTES, Q8_0_BYTES, Q8_1_BYTES, Q8_K_BYTES, QK, QK_K,
};
pub use super::scalar::{vec_dot_bf16, vec_dot_bf16_4x, vec_dot_f16, vec_dot_f16_4x, vec_dot_f32, vec_dot_f32_4x};

// ---------------------------------------------------------------- helpers

/// Every f16 widened to f32, as ggml keeps it on targets without a hardware
/// conversion: one load instead of a dozen integer operations, which cost
/// more than the 32-element integer dot product a scale multiplies. Built at
/// compile time (by `scalar::f16_to_f32`'s formula), so no thread ever waits
/// for it to be initialised.
static F16_TO_F32: [f32; 1 << 16] = {
    let mut t = [0f32; 1 << 16];
    let mut h = 0;
    while h < t.len() {
        let em = (h & 0x7fff) as u32;
        let bits = if em < 0x0400 {
            (em as f32 * (1.0 / 16_777_216.0)).to_bits()
        } else if em < 0x7c00 {
            (em << 13) + ((127 - 15) << 23)
        } else {
            (em << 13) | 0x7f80_0000 | ((em > 0x7c00) as u32) << 22
        };
        t[h] = f32::from_bits(bits | ((h as u32 & 0x8000) << 16));
        h += 1;
    }
    t
};

/// The table's entry for `h` (for the tests).
pub fn f16_table(h: u16) -> f32 {
    F16_TO_F32[h as usize]
}

#[inline(always)]
fn f16_at<const M: usize>(b: &[u8; M], at: usize) -> f32 {
    F16_TO_F32[u16::from_le_bytes([b[at], b[at + 1]]) as usize]
}

/// The 16 bytes of a fixed-size block at `at`.
#[inline(always)]
fn load<const N: usize>(b: &[u8; N], at: usize) -> v128 {
    // `at` is a constant at every call site, so this check folds away.
    assert!(at + 16 <= N);
    // SAFETY: the 16 bytes at `at` lie inside `b` (checked above), and
    // `v128_load` accepts any alignment.
    unsafe { v128_load(b.as_ptr().add(at) as *const v128) }
}

/// Four f32 from 16 bytes of a slice at `at` (used for activation rows).
#[inline(always)]
fn load_f32x4(x: &[f32], at: usize) -> v128 {
    assert!(at + 4 <= x.len());
    // SAFETY: the four floats at `at` lie inside `x` (checked above).
    unsafe { v128_load(x.as_ptr().add(at) as *const v128) }
}

#[inline(always)]
fn hsum_i32(v: v128) -> i32 {
    let v = i32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let v = i32x4_add(v, i32x4_shuffle::<1, 0, 3, 2>(v, v));
    i32x4_extract_lane::<0>(v)
}

#[inline(always)]
fn hmax_f32(v: v128) -> f32 {
    let v = f32x4_pmax(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let v = f32x4_pmax(v, i32x4_shuffle::<1, 0, 3, 2>(v, v));
    f32x4_extract_lane::<0>(v)
}

/// Σ w·a over 32 elements (in four i32 lanes) for weight codes with
/// |w| ≤ 63: four products of at most 63·128 share an i16 lane
/// (4·63·128 = 32256 < 2^15) before widening.
#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn dot32_narrow(w0: v128, w1: v128, a0: v128, a1: v128) -> v128 {
    let p0 = i16x8_add(i16x8_extmul_low_i8x16(w0, a0), i16x8_extmul_high_i8x16(w0, a0));
    let p1 = i16x8_add(i16x8_extmul_low_i8x16(w1, a1), i16x8_extmul_high_i8x16(w1, a1));
    i32x4_extadd_pairwise_i16x8(i16x8_add(p0, p1))
}

/// Σ w·a over 16 elements for |w| ≤ 63 (two products an i16 lane).
#[inline(always)]
fn dot16_narrow(w: v128, a: v128) -> v128 {
    i32x4_extadd_pairwise_i16x8(i16x8_add(i16x8_extmul_low_i8x16(w, a), i16x8_extmul_high_i8x16(w, a)))
}

/// Σ w·a over 16 elements for any i8 values: each product (|p| ≤ 2^14)
/// is widened to i32 before it is added to another.
#[inline(always)]
fn dot16_wide(w: v128, a: v128) -> v128 {
    i32x4_add(
        i32x4_extadd_pairwise_i16x8(i16x8_extmul_low_i8x16(w, a)),
        i32x4_extadd_pairwise_i16x8(i16x8_extmul_high_i8x16(w, a)),
    )
}

/// Σ u·a over 32 elements for unsigned codes `u` in [0, 127] (as the
/// relaxed dot product needs) or, without relaxed SIMD, in [0, 63].
#[inline(always)]
fn dot32_unsigned(u0: v128, u1: v128, a0: v128, a1: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        // The first operand is the signed one; the codes are the i7 operand.
        i32x4_relaxed_dot_i8x16_i7x16_add(a1, u1, i32x4_relaxed_dot_i8x16_i7x16_add(a0, u0, i32x4_splat(0)))
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        dot32_narrow(u0, u1, a0, a1)
    }
}

/// The low and high nibbles of 16 bytes: elements 0..16 and 16..32 of a
/// Q4_0/Q4_1 block, as unsigned codes 0..16.
#[inline(always)]
fn nibbles(qs: v128) -> (v128, v128) {
    // A 16-bit shift and a mask: x86 has no byte shift, which V8 emulates.
    let low = u8x16_splat(0x0f);
    (v128_and(qs, low), v128_and(u16x8_shr(qs, 4), low))
}

/// Bits `s..s + 2` of each byte of `qh` at bits 4 and 5 (the high bits of
/// 6-bit codes), by a 16-bit shift whose spill between bytes the mask drops.
#[inline(always)]
fn bits_to_4_5(qh: v128, s: u32) -> v128 {
    let shifted = if s <= 4 { i16x8_shl(qh, 4 - s) } else { u16x8_shr(qh, s - 4) };
    v128_and(shifted, u8x16_splat(0x30))
}

/// Bit `j` of the little-endian u32 `qh` as 16 in byte `j` of the two
/// halves (elements 0..16, 16..32): the fifth bit of Q5_0/Q5_1 codes.
#[inline(always)]
fn q5_high_bits(qh: u32) -> (v128, v128) {
    let bytes = u32x4_splat(qh);
    let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let spread = |lo: u8, hi: u8| {
        let b = i8x16_swizzle(bytes, u8x16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi));
        v128_and(u8x16_ne(v128_and(b, bit), u8x16_splat(0)), u8x16_splat(16))
    };
    (spread(0, 1), spread(2, 3))
}

#[inline(always)]
fn u32_at<const M: usize>(b: &[u8; M], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Σ a over a Q8_0/Q8_1 block's quants at `at` (for the offset corrections).
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn act_sum32<const M: usize>(ab: &[u8; M], at: usize) -> v128 {
    let s = i16x8_add(i16x8_extadd_pairwise_i8x16(load(ab, at)), i16x8_extadd_pairwise_i8x16(load(ab, at + 16)));
    i32x4_extadd_pairwise_i16x8(s)
}

// ------------------------------------------------ activation quantization

/// One block of 32 as `scalar::quantize_block_q8`: d = amax/127 and
/// q = round-half-even(x·127/amax), written to `qs`; returns d and Σq.
/// `f32x4_pmax` skips NaN as `f32::max` does, and the saturating
/// conversion maps NaN to 0 as `as i8` does, so the bytes are identical.
#[inline(always)]
fn quantize_block_q8(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    debug_assert!(x.len() == QK && qs.len() == QK);
    let v: [v128; 8] = core::array::from_fn(|k| load_f32x4(x, 4 * k));
    let amax = hmax_f32(v.iter().fold(f32x4_splat(0.0), |m, &x| f32x4_pmax(m, f32x4_abs(x))));
    let id = f32x4_splat(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q: [v128; 8] = v.map(|x| i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(x, id))));
    let lo = i8x16_narrow_i16x8(i16x8_narrow_i32x4(q[0], q[1]), i16x8_narrow_i32x4(q[2], q[3]));
    let hi = i8x16_narrow_i16x8(i16x8_narrow_i32x4(q[4], q[5]), i16x8_narrow_i32x4(q[6], q[7]));
    let out: &mut [u8; QK] = qs.try_into().unwrap();
    // SAFETY: `out` is 32 bytes long.
    unsafe {
        v128_store(out.as_mut_ptr() as *mut v128, lo);
        v128_store(out.as_mut_ptr().add(16) as *mut v128, hi);
    }
    let sum = i16x8_add(i16x8_extadd_pairwise_i8x16(lo), i16x8_extadd_pairwise_i8x16(hi));
    (amax / 127.0, hsum_i32(i32x4_extadd_pairwise_i16x8(sum)))
}

pub fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q8_0_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q8_0_BYTES>(dst)) {
        let (d, _) = quantize_block_q8(x, &mut y[2..]);
        y[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
    }
}

pub fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q8_1_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q8_1_BYTES>(dst)) {
        let (d, sum) = quantize_block_q8(x, &mut y[4..]);
        y[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
        y[2..4].copy_from_slice(&half::f16::from_f32(sum as f32 * d).to_le_bytes());
    }
}

/// Q8_K as `scalar::quantize_row_q8_k`, with ggml's `nearest_int` computed
/// lane-wise by the same 1.5·2^23 trick, so the bytes are identical.
pub fn quantize_row_q8_k(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK_K == 0 && dst.len() == src.len() / QK_K * Q8_K_BYTES);
    for (x, y) in src.chunks_exact(QK_K).zip(blocks_mut::<Q8_K_BYTES>(dst)) {
        let mut m = f32x4_splat(0.0);
        for k in 0..QK_K / 4 {
            m = f32x4_pmax(m, f32x4_abs(load_f32x4(x, 4 * k)));
        }
        let amax = hmax_f32(m);
        // `scalar` keeps the first element of largest magnitude, with its sign.
        let Some(&max) = x.iter().find(|v| v.abs() == amax).filter(|_| amax != 0.0) else {
            y.fill(0);
            continue;
        };
        let iscale = -127.0 / max;
        let (s, magic) = (f32x4_splat(iscale), f32x4_splat(12_582_912.0));
        let (mant, half) = (i32x4_splat(0x007f_ffff), i32x4_splat(0x0040_0000));
        for g in 0..QK_K / 16 {
            let q: [v128; 4] = core::array::from_fn(|k| {
                let v = f32x4_add(f32x4_mul(s, load_f32x4(x, 16 * g + 4 * k)), magic);
                let r = i32x4_sub(v128_and(v, mant), half);
                i32x4_min(i32x4_max(r, i32x4_splat(-128)), i32x4_splat(127))
            });
            let b = i8x16_narrow_i16x8(i16x8_narrow_i32x4(q[0], q[1]), i16x8_narrow_i32x4(q[2], q[3]));
            // SAFETY: bytes 4 + 16g .. 20 + 16g lie inside the 292-byte block.
            unsafe { v128_store(y.as_mut_ptr().add(4 + 16 * g) as *mut v128, b) };
            let sum = hsum_i32(i32x4_extadd_pairwise_i16x8(i16x8_extadd_pairwise_i8x16(b))) as i16;
            y[260 + 2 * g..262 + 2 * g].copy_from_slice(&sum.to_le_bytes());
        }
        y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

// ------------------------------------------------------------ dot products
//
// The 32-element formats are described by two functions: the block's codes
// as two `i8x16` (elements 0..16 and 16..32) and their exact integer dot
// product with an activation block, as four i32 lanes. `row` reduces each
// block to one integer and scales it exactly as `scalar` does; `tile` does
// the same for four weight rows at once (so an activation block is loaded
// once for four rows, and scales and sums take one `f32x4` for all four)
// against up to four activation rows (so a weight block is unpacked once for
// four tokens). Both are bit-exact with `scalar`.

#[inline(always)]
fn row<const W: usize, const A: usize, const MIN: bool>(
    n: usize,
    w: &[u8],
    act: &[u8],
    codes: impl Fn(&[u8; W]) -> (v128, v128),
    isum: impl Fn((v128, v128), &[u8; A]) -> v128,
) -> f32 {
    let mut sum = 0f32;
    for (wb, ab) in blocks::<W>(w).zip(blocks::<A>(act)).take(n / QK) {
        let t = (f16_at(wb, 0) * f16_at(ab, 0)) * hsum_i32(isum(codes(wb), ab)) as f32;
        sum += if MIN { t + f16_at(wb, 2) * f16_at(ab, 2) } else { t };
    }
    sum
}

/// The four lane sums of each of `v[0..4]`, as one vector.
#[inline(always)]
fn reduce4(v: [v128; 4]) -> v128 {
    let s01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[0], v[1]), i32x4_shuffle::<2, 6, 3, 7>(v[0], v[1]));
    let s23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[2], v[3]), i32x4_shuffle::<2, 6, 3, 7>(v[2], v[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
}

/// Four weight rows against `T` activation rows: `[t]` holds the four rows'
/// dot products with activation row `t`.
#[inline(always)]
fn tile<const W: usize, const A: usize, const MIN: bool, const T: usize>(
    n: usize,
    w: [&[u8]; 4],
    acts: [&[u8]; T],
    codes: impl Fn(&[u8; W]) -> (v128, v128),
    isum: impl Fn((v128, v128), &[u8; A]) -> v128,
) -> [[f32; 4]; T] {
    let mut acc = [f32x4_splat(0.0); T];
    for i in 0..n / QK {
        // Written out rather than through `array::from_fn`, whose closures
        // V8 would otherwise call once per block.
        let block = |k: usize| -> &[u8; W] { w[k][W * i..W * i + W].try_into().unwrap() };
        let wb = [block(0), block(1), block(2), block(3)];
        let c = [codes(wb[0]), codes(wb[1]), codes(wb[2]), codes(wb[3])];
        let d = f32x4(f16_at(wb[0], 0), f16_at(wb[1], 0), f16_at(wb[2], 0), f16_at(wb[3], 0));
        let m = if MIN { f32x4(f16_at(wb[0], 2), f16_at(wb[1], 2), f16_at(wb[2], 2), f16_at(wb[3], 2)) } else { d };
        for (acc, a) in acc.iter_mut().zip(&acts) {
            let ab: &[u8; A] = a[A * i..A * i + A].try_into().unwrap();
            let s = f32x4_convert_i32x4(reduce4([isum(c[0], ab), isum(c[1], ab), isum(c[2], ab), isum(c[3], ab)]));
            let t = f32x4_mul(f32x4_mul(d, f32x4_splat(f16_at(ab, 0))), s);
            *acc = f32x4_add(*acc, if MIN { f32x4_add(t, f32x4_mul(m, f32x4_splat(f16_at(ab, 2)))) } else { t });
        }
    }
    acc.map(|v| {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    })
}

#[inline(always)]
fn codes_q4_0(wb: &[u8; Q4_0_BYTES]) -> (v128, v128) {
    nibbles(load(wb, 2))
}

/// Q4_0 codes are 0..16 standing for -8..8.
#[inline(always)]
fn isum_q4_0(codes: (v128, v128), ab: &[u8; Q8_0_BYTES]) -> v128 {
    isum_offset::<3>(codes, ab)
}

#[inline(always)]
fn codes_q4_1(wb: &[u8; Q4_1_BYTES]) -> (v128, v128) {
    nibbles(load(wb, 4))
}

#[inline(always)]
fn isum_q4_1((lo, hi): (v128, v128), ab: &[u8; Q8_1_BYTES]) -> v128 {
    dot32_unsigned(lo, hi, load(ab, 4), load(ab, 20))
}

/// Unsigned codes stored with an offset of 2^K (Q4_0: 8, Q5_0: 16) against a
/// Q8_0 block: dotted unsigned minus 2^K·Σa with relaxed SIMD, shifted into
/// [-2^K, 2^K) otherwise (so |w| ≤ 16 keeps `dot32_narrow` in range).
#[inline(always)]
fn isum_offset<const K: u32>((u0, u1): (v128, v128), ab: &[u8; Q8_0_BYTES]) -> v128 {
    let (a0, a1) = (load(ab, 2), load(ab, 18));
    #[cfg(target_feature = "relaxed-simd")]
    return i32x4_sub(dot32_unsigned(u0, u1, a0, a1), i32x4_shl(act_sum32(ab, 2), K));
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        let off = i8x16_splat(1 << K);
        return dot32_narrow(i8x16_sub(u0, off), i8x16_sub(u1, off), a0, a1);
    }
}

/// The 5-bit codes of a Q5_0/Q5_1 block whose `qh` starts at `qh` and
/// nibbles at `qh + 4`.
#[inline(always)]
fn codes_q5<const W: usize>(wb: &[u8; W], qh: usize) -> (v128, v128) {
    let (lo, hi) = nibbles(load(wb, qh + 4));
    let (b0, b1) = q5_high_bits(u32_at(wb, qh));
    (v128_or(lo, b0), v128_or(hi, b1))
}

#[inline(always)]
fn codes_q5_0(wb: &[u8; Q5_0_BYTES]) -> (v128, v128) {
    codes_q5(wb, 2)
}

/// Q5_0 codes are 0..32 standing for -16..16.
#[inline(always)]
fn isum_q5_0(codes: (v128, v128), ab: &[u8; Q8_0_BYTES]) -> v128 {
    isum_offset::<4>(codes, ab)
}

#[inline(always)]
fn codes_q5_1(wb: &[u8; Q5_1_BYTES]) -> (v128, v128) {
    codes_q5(wb, 4)
}

#[inline(always)]
fn isum_q5_1((u0, u1): (v128, v128), ab: &[u8; Q8_1_BYTES]) -> v128 {
    dot32_unsigned(u0, u1, load(ab, 4), load(ab, 20))
}

#[inline(always)]
fn codes_q8_0(wb: &[u8; Q8_0_BYTES]) -> (v128, v128) {
    (load(wb, 2), load(wb, 18))
}

#[inline(always)]
fn isum_q8_0((w0, w1): (v128, v128), ab: &[u8; Q8_0_BYTES]) -> v128 {
    i32x4_add(dot16_wide(w0, load(ab, 2)), dot16_wide(w1, load(ab, 18)))
}

/// Evaluates `body` with `a`, the first `T = acts.len()` (1..=4) activation
/// rows as an array, then `sink` with its result `r`: on the stack, as this
/// runs for every tile (a heap result cost a lock per tile with threads).
macro_rules! by_tokens {
    ($acts:expr, |$a:ident: $t:ident| $body:expr, |$r:ident| $sink:expr) => {
        match $acts.len() {
            1 => {
                const $t: usize = 1;
                let $a: [&[u8]; 1] = [$acts[0]];
                let $r = $body;
                $sink
            }
            2 => {
                const $t: usize = 2;
                let $a: [&[u8]; 2] = [$acts[0], $acts[1]];
                let $r = $body;
                $sink
            }
            3 => {
                const $t: usize = 3;
                let $a: [&[u8]; 3] = [$acts[0], $acts[1], $acts[2]];
                let $r = $body;
                $sink
            }
            _ => {
                const $t: usize = 4;
                let $a: [&[u8]; 4] = [$acts[0], $acts[1], $acts[2], $acts[3]];
                let $r = $body;
                $sink
            }
        }
    };
}

macro_rules! block32_kernels {
    ($($one:ident, $tile:ident => $w:ident, $a:ident, $min:literal, $codes:ident, $isum:ident;)*) => {$(
        pub fn $one(n: usize, w: &[u8], act: &[u8]) -> f32 {
            row::<$w, $a, $min>(n, w, act, $codes, $isum)
        }

        pub fn $tile(n: usize, w: [&[u8]; 4], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            debug_assert!((1..=4).contains(&acts.len()));
            by_tokens!(acts, |a: T| tile::<$w, $a, $min, T>(n, w, a, $codes, $isum), |r| out[..T].copy_from_slice(&r));
        }
    )*};
}

block32_kernels! {
    vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_4x => Q4_0_BYTES, Q8_0_BYTES, false, codes_q4_0, isum_q4_0;
    vec_dot_q4_1_q8_1, vec_dot_q4_1_q8_1_4x => Q4_1_BYTES, Q8_1_BYTES, true, codes_q4_1, isum_q4_1;
    vec_dot_q5_0_q8_0, vec_dot_q5_0_q8_0_4x => Q5_0_BYTES, Q8_0_BYTES, false, codes_q5_0, isum_q5_0;
    vec_dot_q5_1_q8_1, vec_dot_q5_1_q8_1_4x => Q5_1_BYTES, Q8_1_BYTES, true, codes_q5_1, isum_q5_1;
    vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_4x => Q8_0_BYTES, Q8_0_BYTES, false, codes_q8_0, isum_q8_0;
}

/// Block `i` of each activation row.
#[inline(always)]
fn act_blocks<'a, const N: usize, const R: usize>(acts: &[&'a [u8]; R], i: usize) -> [&'a [u8; N]; R] {
    core::array::from_fn(|r| acts[r][N * i..N * i + N].try_into().unwrap())
}

/// Σ_j m_j·(bsum_2j + bsum_2j+1): the Q4_K/Q5_K min term of one super-block.
#[inline(always)]
fn k4_min_sum(m: &[u8; 8], ab: &[u8; Q8_K_BYTES]) -> i32 {
    (0..8)
        .map(|j| {
            let s = |k: usize| i16::from_le_bytes([ab[260 + 2 * k], ab[261 + 2 * k]]) as i32;
            m[j] as i32 * (s(2 * j) + s(2 * j + 1))
        })
        .sum()
}

/// The Q4_K/Q5_K super-block product shared by both: `codes[c]` holds chunk
/// `c`'s 64 codes as (first 16, next 16) of its low-scale half, then of its
/// high-scale half; `wb` gives d and dmin at bytes 0 and 2 and the packed
/// scales and mins at 4..16.
#[inline(always)]
fn k4_rows<const W: usize, const R: usize>(
    n: usize,
    w: &[u8],
    acts: [&[u8]; R],
    codes: impl Fn(&[u8; W]) -> [(v128, v128, v128, v128); 4],
) -> [f32; R] {
    let mut sum = [0f32; R];
    let mut sum_mins = [0f32; R];
    for (i, wb) in blocks::<W>(w).take(n / QK_K).enumerate() {
        let (sc, m) = scales_mins_k4(wb[4..16].try_into().unwrap());
        let codes = codes(wb);
        for (r, ab) in act_blocks::<Q8_K_BYTES, R>(&acts, i).into_iter().enumerate() {
            let mut isum = i32x4_splat(0);
            for (c, &(lo0, lo1, hi0, hi1)) in codes.iter().enumerate() {
                let at = 4 + 64 * c;
                let lo = dot32_unsigned(lo0, lo1, load(ab, at), load(ab, at + 16));
                let hi = dot32_unsigned(hi0, hi1, load(ab, at + 32), load(ab, at + 48));
                isum = i32x4_add(isum, i32x4_mul(lo, i32x4_splat(sc[2 * c] as i32)));
                isum = i32x4_add(isum, i32x4_mul(hi, i32x4_splat(sc[2 * c + 1] as i32)));
            }
            let da = f32_at(ab, 0);
            sum[r] += (f16_at(wb, 0) * da) * hsum_i32(isum) as f32;
            sum_mins[r] += (f16_at(wb, 2) * da) * k4_min_sum(&m, ab) as f32;
        }
    }
    core::array::from_fn(|r| sum[r] - sum_mins[r])
}

#[inline(always)]
fn q4_k_rows<const R: usize>(n: usize, w: &[u8], acts: [&[u8]; R]) -> [f32; R] {
    k4_rows::<Q4_K_BYTES, R>(n, w, acts, |wb| {
        core::array::from_fn(|c| {
            let (lo0, hi0) = nibbles(load(wb, 16 + 32 * c));
            let (lo1, hi1) = nibbles(load(wb, 32 + 32 * c));
            (lo0, lo1, hi0, hi1)
        })
    })
}

/// Q4_K's codes plus a fifth bit: chunk `c` takes bits 2c and 2c + 1 of `qh`.
#[inline(always)]
fn q5_k_rows<const R: usize>(n: usize, w: &[u8], acts: [&[u8]; R]) -> [f32; R] {
    k4_rows::<Q5_K_BYTES, R>(n, w, acts, |wb| {
        let (h0, h1) = (load(wb, 16), load(wb, 32));
        let fifth = |h: v128, bit: u32| i8x16_shl(v128_and(u8x16_shr(h, bit), u8x16_splat(1)), 4);
        core::array::from_fn(|c| {
            let (lo0, hi0) = nibbles(load(wb, 48 + 32 * c));
            let (lo1, hi1) = nibbles(load(wb, 64 + 32 * c));
            let (b, b1) = (2 * c as u32, 2 * c as u32 + 1);
            (
                v128_or(lo0, fifth(h0, b)),
                v128_or(lo1, fifth(h1, b)),
                v128_or(hi0, fifth(h0, b1)),
                v128_or(hi1, fifth(h1, b1)),
            )
        })
    })
}

#[inline(always)]
fn q6_k_rows<const R: usize>(n: usize, w: &[u8], acts: [&[u8]; R]) -> [f32; R] {
    let mut sum = [0f32; R];
    let (low, three, off) = (u8x16_splat(0x0f), u8x16_splat(3), i8x16_splat(32));
    for (i, wb) in blocks::<Q6_K_BYTES>(w).take(n / QK_K).enumerate() {
        // Sixteen runs of 16 codes minus 32 (in [-32, 31]), in element order:
        // half h, run g of 32, first or second 16 (see `scalar::unpack_q6_half`).
        let mut q = [i8x16_splat(0); 16];
        for h in 0..2 {
            for k in 0..2 {
                let (l0, l1) = (load(wb, 64 * h + 16 * k), load(wb, 64 * h + 32 + 16 * k));
                let qh = load(wb, 128 + 32 * h + 16 * k);
                let hb = |s: u32| i8x16_shl(v128_and(u8x16_shr(qh, s), three), 4);
                q[8 * h + k] = i8x16_sub(v128_or(v128_and(l0, low), hb(0)), off);
                q[8 * h + 2 + k] = i8x16_sub(v128_or(v128_and(l1, low), hb(2)), off);
                q[8 * h + 4 + k] = i8x16_sub(v128_or(u8x16_shr(l0, 4), hb(4)), off);
                q[8 * h + 6 + k] = i8x16_sub(v128_or(u8x16_shr(l1, 4), hb(6)), off);
            }
        }
        let sc: &[u8; 16] = wb[192..208].try_into().unwrap();
        for (r, ab) in act_blocks::<Q8_K_BYTES, R>(&acts, i).into_iter().enumerate() {
            let mut isum = i32x4_splat(0);
            for (j, &qj) in q.iter().enumerate() {
                let p = dot16_narrow(qj, load(ab, 4 + 16 * j));
                isum = i32x4_add(isum, i32x4_mul(p, i32x4_splat(sc[j] as i8 as i32)));
            }
            sum[r] += (f16_at(wb, 208) * f32_at(ab, 0)) * hsum_i32(isum) as f32;
        }
    }
    sum
}

// The K-quants reduce a whole super-block to one integer already, so their
// kernels share the weight unpacking across tokens only.
macro_rules! k_kernels {
    ($($one:ident, $tile:ident => $rows:ident;)*) => {$(
        pub fn $one(n: usize, w: &[u8], act: &[u8]) -> f32 {
            $rows::<1>(n, w, [act])[0]
        }

        pub fn $tile(n: usize, w: [&[u8]; 4], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            debug_assert!((1..=4).contains(&acts.len()));
            for (k, wk) in w.into_iter().enumerate() {
                by_tokens!(acts, |a: T| $rows::<T>(n, wk, a), |r| for (o, v) in out.iter_mut().zip(r) {
                    o[k] = v;
                });
            }
        }
    )*};
}

k_kernels! {
    vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_4x => q4_k_rows;
    vec_dot_q5_k_q8_k, vec_dot_q5_k_q8_k_4x => q5_k_rows;
    vec_dot_q6_k_q8_k, vec_dot_q6_k_q8_k_4x => q6_k_rows;
}

// ---------------------------------------------------------- packed kernels
//
// Four interleaved rows (`quant::packed`): a 16-byte vector of codes holds
// four consecutive elements of each row, and four activations loaded into
// every lane meet all four rows at once, each row summing in its own lane.

/// The four bytes at `at`, in every 32-bit lane.
#[inline(always)]
fn splat4<const M: usize>(b: &[u8; M], at: usize) -> v128 {
    assert!(at + 4 <= M);
    // SAFETY: the 4 bytes at `at` lie inside `b` (checked above).
    unsafe { v128_load32_splat(b.as_ptr().add(at) as *const u32) }
}

/// A unit of four rows' codes in [0, 127] (bytes `4r..4r + 4`: four
/// elements of row `r`) as [`Lanes::add`] takes it: the 16 bytes with
/// relaxed SIMD; without, widened to u16, rows 0 and 1 then rows 2 and 3.
#[cfg(target_feature = "relaxed-simd")]
type Unit = v128;
#[cfg(not(target_feature = "relaxed-simd"))]
type Unit = [v128; 2];

#[inline(always)]
fn unit(codes: v128) -> Unit {
    #[cfg(target_feature = "relaxed-simd")]
    return codes;
    #[cfg(not(target_feature = "relaxed-simd"))]
    return [u16x8_extend_low_u8x16(codes), u16x8_extend_high_u8x16(codes)];
}

/// [`nibbles`] as two units: without relaxed SIMD the bytes widen first and
/// split in u16 lanes (a shift needs no mask there), seven instructions on
/// x64 instead of nine.
#[inline(always)]
fn unit_nibbles(qs: v128) -> (Unit, Unit) {
    #[cfg(target_feature = "relaxed-simd")]
    return nibbles(qs);
    #[cfg(not(target_feature = "relaxed-simd"))]
    let ([w0, w1], low) = (unit(qs), u16x8_splat(0x0f));
    #[cfg(not(target_feature = "relaxed-simd"))]
    return ([v128_and(w0, low), v128_and(w1, low)], [u16x8_shr(w0, 4), u16x8_shr(w1, 4)]);
}

/// Integer sums of four rows, row `r` in lane `r`, from [`Unit`]s against
/// [`splat4`] activations: how a packed kernel sums its dot products.
///
/// `add::<C>` puts a unit's products in bucket `C` (0 or 1). A summation
/// that keeps narrow lanes (`Lanes16`) keeps the buckets apart until they
/// widen, so a kernel bounds what one lane holds by putting no more than its
/// bound's units into one bucket; the others ignore the bucket.
trait Acc: Copy {
    fn zero() -> Self;
    fn add<const C: usize>(self, codes: Unit, a: v128) -> Self;
    /// Two units, into buckets 0 and 1: with relaxed SIMD in two dependency
    /// chains, so that a sub-block's dot products do not wait on each other.
    fn add2(self, c0: Unit, a0: v128, c1: Unit, a1: v128) -> Self;
    /// The four rows' sums as i32.
    fn sum(self) -> v128;
    /// The sums times `scale` (row `r`'s in lane `r`, within i16).
    fn scaled(self, scale: v128) -> v128;
}

/// The i32 summation. With relaxed SIMD, `i32x4_relaxed_dot_i8x16_i7x16_add`:
/// one `vpdpbusd` where V8 has AVX-VNNI, about five instructions elsewhere.
/// Without, the activations widen to i16 too and meet the codes in
/// `i32x4_dot_i16x8`, one `pmaddwd` on x64 where each i8 extending multiply
/// takes three to five instructions: rows 0 and 1 sum in the first
/// accumulator and rows 2 and 3 in the second, two lanes a row.
#[derive(Clone, Copy)]
struct Lanes(v128, v128);

impl Acc for Lanes {
    #[inline(always)]
    fn zero() -> Lanes {
        Lanes(i32x4_splat(0), i32x4_splat(0))
    }

    #[inline(always)]
    fn add<const C: usize>(self, codes: Unit, a: v128) -> Lanes {
        #[cfg(target_feature = "relaxed-simd")]
        return Lanes(i32x4_relaxed_dot_i8x16_i7x16_add(a, codes, self.0), self.1);
        // a0..a3 twice: the activations of both rows in each half.
        #[cfg(not(target_feature = "relaxed-simd"))]
        let a = i16x8_extend_low_i8x16(a);
        #[cfg(not(target_feature = "relaxed-simd"))]
        return Lanes(i32x4_add(self.0, i32x4_dot_i16x8(codes[0], a)), i32x4_add(self.1, i32x4_dot_i16x8(codes[1], a)));
    }

    #[inline(always)]
    fn add2(self, c0: Unit, a0: v128, c1: Unit, a1: v128) -> Lanes {
        #[cfg(target_feature = "relaxed-simd")]
        return Lanes(
            i32x4_relaxed_dot_i8x16_i7x16_add(a0, c0, self.0),
            i32x4_relaxed_dot_i8x16_i7x16_add(a1, c1, self.1),
        );
        #[cfg(not(target_feature = "relaxed-simd"))]
        return self.add::<0>(c0, a0).add::<1>(c1, a1);
    }

    #[inline(always)]
    fn sum(self) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        return i32x4_add(self.0, self.1);
        #[cfg(not(target_feature = "relaxed-simd"))]
        return i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(self.0, self.1), i32x4_shuffle::<1, 3, 5, 7>(self.0, self.1));
    }

    #[inline(always)]
    fn scaled(self, scale: v128) -> v128 {
        i32x4_mul(self.sum(), scale)
    }
}

/// The i16 summation of the relaxed build: `i16x8_relaxed_dot_i8x16_i7x16`
/// (one `pmaddubsw` on every x64 CPU) summed in i16 lanes, row `r` in lanes
/// `2r` and `2r + 1`, widened once a sub-block by `i32x4_dot_i16x8` with
/// the scales. Where V8 lowers the i32 dot to five instructions this runs
/// 30–40% faster; where it has AVX-VNNI, sometimes slower
/// ([`summation`] times both).
///
/// A unit adds at most 2 · c · 128 to a lane for codes below `c`, so one
/// bucket holds 8 units of 4-bit codes (30720), 4 of 5-bit (31744) and 2 of
/// 6-bit (32256). `JOIN`: the kernel's bound holds for both buckets
/// together, which then widen as one.
#[cfg(target_feature = "relaxed-simd")]
#[derive(Clone, Copy)]
struct Lanes16<const JOIN: bool>(v128, v128);

#[cfg(target_feature = "relaxed-simd")]
impl<const JOIN: bool> Acc for Lanes16<JOIN> {
    #[inline(always)]
    fn zero() -> Self {
        Lanes16(i16x8_splat(0), i16x8_splat(0))
    }

    #[inline(always)]
    fn add<const C: usize>(self, codes: Unit, a: v128) -> Self {
        let p = i16x8_relaxed_dot_i8x16_i7x16(a, codes);
        if C == 0 {
            Lanes16(i16x8_add(self.0, p), self.1)
        } else {
            Lanes16(self.0, i16x8_add(self.1, p))
        }
    }

    #[inline(always)]
    fn add2(self, c0: Unit, a0: v128, c1: Unit, a1: v128) -> Self {
        self.add::<0>(c0, a0).add::<1>(c1, a1)
    }

    #[inline(always)]
    fn sum(self) -> v128 {
        if JOIN {
            i32x4_extadd_pairwise_i16x8(i16x8_add(self.0, self.1))
        } else {
            i32x4_add(i32x4_extadd_pairwise_i16x8(self.0), i32x4_extadd_pairwise_i16x8(self.1))
        }
    }

    #[inline(always)]
    fn scaled(self, scale: v128) -> v128 {
        // Row r's scale in i16 lanes 2r and 2r + 1 (|sum · scale| < 2^23).
        let s = i16x8_shuffle::<0, 0, 2, 2, 4, 4, 6, 6>(scale, scale);
        if JOIN {
            i32x4_dot_i16x8(i16x8_add(self.0, self.1), s)
        } else {
            i32x4_add(i32x4_dot_i16x8(self.0, s), i32x4_dot_i16x8(self.1, s))
        }
    }
}

/// The f16 at `at`, `at + 2`, `at + 4`, `at + 6`: a field of the four rows.
#[inline(always)]
fn f16x4_at<const M: usize>(b: &[u8; M], at: usize) -> v128 {
    f32x4(f16_at(b, at), f16_at(b, at + 2), f16_at(b, at + 4), f16_at(b, at + 6))
}

/// Packed block `i` of `group` (`N` bytes: four rows' blocks).
#[inline(always)]
fn packed_block<const N: usize>(group: &[u8], i: usize) -> &[u8; N] {
    group[N * i..N * i + N].try_into().unwrap()
}

const Q4_0_X4: usize = 4 * Q4_0_BYTES;
const Q5_0_X4: usize = 4 * Q5_0_BYTES;
const Q4_K_X4: usize = 4 * Q4_K_BYTES;
const Q6_K_X4: usize = 4 * Q6_K_BYTES;

/// The four rows' 4-bit codes of a packed Q4_0/Q5_0 block whose nibbles
/// start at `at`, split by `split`: `[u]` holds elements `4u..4u + 4` of row
/// `r` in bytes `4r..4r + 4` (units 0..4 the low nibbles, 4..8 the high ones).
#[inline(always)]
fn nibble_units<const W: usize, U: Copy>(wb: &[u8; W], at: usize, split: impl Fn(v128) -> (U, U)) -> [U; 8] {
    let pairs: [(U, U); 4] = core::array::from_fn(|k| split(load(wb, at + 16 * k)));
    core::array::from_fn(|u| if u < 4 { pairs[u].0 } else { pairs[u - 4].1 })
}

#[inline(always)]
fn packed_codes_q4_0(wb: &[u8; Q4_0_X4]) -> [Unit; 8] {
    nibble_units(wb, 8, unit_nibbles)
}

/// Q5_0: the nibbles with each row's fifth bit of element `4u + e` (bit `u`
/// of byte `4r + e` of the vector at 8, as `quant::packed` transposes it)
/// as 16 in byte `4r + e` of unit `u`, by a 16-bit shift whose spill
/// between bytes the mask drops.
#[inline(always)]
fn packed_codes_q5_0(wb: &[u8; Q5_0_X4]) -> [Unit; 8] {
    let qh = load(wb, 8);
    let mut q = nibble_units(wb, 24, nibbles);
    for (u, q) in q.iter_mut().enumerate() {
        let u = u as u32;
        let at_4 = if u <= 4 { i16x8_shl(qh, 4 - u) } else { u16x8_shr(qh, u - 4) };
        *q = v128_or(*q, v128_and(at_4, u8x16_splat(16)));
    }
    q.map(unit)
}

/// `G` groups of packed Q4_0 (`K` = 3) or Q5_0 (`K` = 4) against `T`
/// activation rows that carry their blocks' sums (`packed::with_block_sums`):
/// `[g][t]` holds group `g`'s four products with activation `t`. Codes stand
/// for `code - 2^K`: they are dotted unsigned, less 2^K times the block's sum.
#[inline(always)]
fn packed_offset<L: Acc, const W: usize, const K: u32, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
    codes: impl Fn(&[u8; W]) -> [Unit; 8],
) -> [[v128; T]; G] {
    let mut acc = [[f32x4_splat(0.0); T]; G];
    for i in 0..n / QK {
        let abs: [&[u8; Q8_0_BYTES]; T] =
            core::array::from_fn(|t| acts[t][Q8_0_BYTES * i..Q8_0_BYTES * i + Q8_0_BYTES].try_into().unwrap());
        let offsets: [v128; T] = core::array::from_fn(|t| {
            let at = n / QK * Q8_0_BYTES + 4 * i;
            i32x4_splat(i32::from_le_bytes(acts[t][at..at + 4].try_into().unwrap()) << K)
        });
        let wbs: [&[u8; W]; G] = core::array::from_fn(|g| packed_block(groups[g], i));
        // Row r's product with token t, from the block's integer sums.
        let mut finish = |g: usize, t: usize, s: L| {
            let isum = i32x4_sub(s.sum(), offsets[t]);
            let p =
                f32x4_mul(f32x4_mul(f16x4_at(wbs[g], 0), f32x4_splat(f16_at(abs[t], 0))), f32x4_convert_i32x4(isum));
            acc[g][t] = f32x4_add(acc[g][t], p);
        };
        // Unit u's activations are the four at 2 + 4u (the high nibbles'
        // elements 16.. follow the low ones').
        if T == 1 {
            // Even units in bucket 0, odd ones in bucket 1.
            for (g, wb) in wbs.iter().enumerate() {
                let q = codes(wb);
                let mut s = L::zero();
                for u in (0..8).step_by(2) {
                    s = s.add2(q[u], splat4(abs[0], 2 + 4 * u), q[u + 1], splat4(abs[0], 6 + 4 * u));
                }
                finish(g, 0, s);
            }
        } else {
            // Each activation broadcast serves every group. Q4_0's eight
            // units fit one bucket; Q5_0's odd units go in bucket 1.
            let q: [[Unit; 8]; G] = wbs.map(&codes);
            let mut s = [[L::zero(); T]; G];
            for u in 0..8 {
                for t in 0..T {
                    let a = splat4(abs[t], 2 + 4 * u);
                    for g in 0..G {
                        s[g][t] = if K == 3 || u % 2 == 0 {
                            s[g][t].add::<0>(q[g][u], a)
                        } else {
                            s[g][t].add::<1>(q[g][u], a)
                        };
                    }
                }
            }
            for (g, s) in s.iter().enumerate() {
                for (t, &s) in s.iter().enumerate() {
                    finish(g, t, s);
                }
            }
        }
    }
    acc
}

#[inline(always)]
fn packed_q4_0<L: Acc, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
) -> [[v128; T]; G] {
    packed_offset::<L, Q4_0_X4, 3, G, T>(n, groups, acts, packed_codes_q4_0)
}

#[inline(always)]
fn packed_q5_0<L: Acc, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
) -> [[v128; T]; G] {
    packed_offset::<L, Q5_0_X4, 4, G, T>(n, groups, acts, packed_codes_q5_0)
}

/// Four rows' fields `j` (byte `4j + r` of `a` for j in 0..4, of `b` for j
/// in 4..8) as each row's eight bytes in a row: rows 0 and 1 in the first
/// vector, rows 2 and 3 in the second.
#[inline(always)]
fn by_rows(a: v128, b: v128) -> (v128, v128) {
    // Bytes 4j + r to 4r + j, then the two halves' rows side by side.
    let transpose = |v: v128| i8x16_swizzle(v, u8x16(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    let (a, b) = (transpose(a), transpose(b));
    (
        i8x16_shuffle::<0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23>(a, b),
        i8x16_shuffle::<8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31>(a, b),
    )
}

/// The four rows' Q4_K scales and mins (as `quant::packed` encodes them):
/// scales `[j]` sub-block `j`'s, row `r` in lane `r`; mins `[r]` row `r`'s
/// eight as i16, for `i32x4_dot_i16x8` with the activations' pair sums.
#[inline(always)]
fn k4_scales(wb: &[u8; Q4_K_X4]) -> ([v128; 8], [v128; 4]) {
    let (n0, n1, h) = (load(wb, 16), load(wb, 32), load(wb, 48));
    let ((s0, s1), (m0, m1)) = (nibbles(n0), nibbles(n1));
    // Bytes 4j + r: scales (or mins) j of rows r, for j in 0..4 and 4..8.
    let s = [v128_or(s0, bits_to_4_5(h, 0)), v128_or(s1, bits_to_4_5(h, 2))];
    let m = [v128_or(m0, bits_to_4_5(h, 4)), v128_or(m1, bits_to_4_5(h, 6))];
    // Byte 4j + r to lane r, zero-extended (swizzle gives 0 for 0x80).
    let lanes = |v: v128, j: u8| {
        let z = 0x80;
        i8x16_swizzle(v, u8x16(4 * j, z, z, z, 4 * j + 1, z, z, z, 4 * j + 2, z, z, z, 4 * j + 3, z, z, z))
    };
    let scales = core::array::from_fn(|j| lanes(s[j / 4], (j % 4) as u8));
    let (rows01, rows23) = by_rows(m[0], m[1]);
    let mins = [
        u16x8_extend_low_u8x16(rows01),
        u16x8_extend_high_u8x16(rows01),
        u16x8_extend_low_u8x16(rows23),
        u16x8_extend_high_u8x16(rows23),
    ];
    (scales, mins)
}

/// A Q8_K block's 16-element sums added in pairs, one per 32-element
/// sub-block, as i16 (|·| ≤ 2 · 16 · 128): what the Q4_K mins multiply.
#[inline(always)]
fn k4_pair_sums(ab: &[u8; Q8_K_BYTES]) -> v128 {
    let (b0, b1) = (load(ab, 260), load(ab, 276));
    i16x8_add(i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(b0, b1), i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(b0, b1))
}

/// The min term of four packed Q4_K rows ([`k4_scales`]' mins) against
/// [`k4_pair_sums`]: row r's Σ_j min_j · pair_j in lane r
/// (|min · pair| ≤ 63 · 4096: no overflow).
#[inline(always)]
fn k4_min_sums(mins: &[v128; 4], pairs: v128) -> v128 {
    reduce4(mins.map(|m| i32x4_dot_i16x8(m, pairs)))
}

/// `G` groups against `T` activation rows: `[g][t]` holds group `g`'s four
/// products with activation `t`.
///
/// Q4_K: the eight 32-element sub-blocks' sums (codes in [0, 16)) times the
/// rows' 6-bit scales, and the mins against the activations' 16-element
/// sums, as `scalar` combines them.
#[inline(always)]
fn packed_q4_k<L: Acc, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
) -> [[v128; T]; G] {
    #[cfg(target_feature = "relaxed-simd")]
    if T > 1 {
        return packed_q4_k_shared::<L, G, T>(n, groups, acts);
    }
    let mut acc = [[f32x4_splat(0.0); T]; G];
    let mut acc_min = [[f32x4_splat(0.0); T]; G];
    for i in 0..n / QK_K {
        for (g, group) in groups.iter().enumerate() {
            let wb = packed_block::<Q4_K_X4>(group, i);
            let (d, dmin) = (f16x4_at(wb, 0), f16x4_at(wb, 8));
            let (sc, mn) = k4_scales(wb);
            let abs: [&[u8; Q8_K_BYTES]; T] =
                core::array::from_fn(|t| acts[t][Q8_K_BYTES * i..Q8_K_BYTES * i + Q8_K_BYTES].try_into().unwrap());
            let mut isums = [i32x4_splat(0); T];
            for c in 0..4 {
                // Chunk c: sub-block 2c's codes in the low nibbles, 2c + 1's
                // in the high ones, unpacked as they are used (without
                // relaxed SIMD, 64 widened units would not stay in registers).
                let pairs: [(Unit, Unit); 8] = core::array::from_fn(|u| unit_nibbles(load(wb, 64 + 128 * c + 16 * u)));
                for j in [2 * c, 2 * c + 1] {
                    let q = |u: usize| if j % 2 == 0 { pairs[u].0 } else { pairs[u].1 };
                    let mut s = [L::zero(); T];
                    if T == 1 {
                        for u in (0..8).step_by(2) {
                            let at = 4 + 32 * j + 4 * u;
                            s[0] = s[0].add2(q(u), splat4(abs[0], at), q(u + 1), splat4(abs[0], at + 4));
                        }
                    } else {
                        for u in 0..8 {
                            for t in 0..T {
                                s[t] = s[t].add::<0>(q(u), splat4(abs[t], 4 + 32 * j + 4 * u));
                            }
                        }
                    }
                    for t in 0..T {
                        isums[t] = i32x4_add(isums[t], s[t].scaled(sc[j]));
                    }
                }
            }
            for (t, (&ab, isum)) in abs.iter().zip(isums).enumerate() {
                let msum = k4_min_sums(&mn, k4_pair_sums(ab));
                let da = f32x4_splat(f32_at(ab, 0));
                acc[g][t] = f32x4_add(acc[g][t], f32x4_mul(f32x4_mul(d, da), f32x4_convert_i32x4(isum)));
                acc_min[g][t] = f32x4_add(acc_min[g][t], f32x4_mul(f32x4_mul(dmin, da), f32x4_convert_i32x4(msum)));
            }
        }
    }
    core::array::from_fn(|g| core::array::from_fn(|t| f32x4_sub(acc[g][t], acc_min[g][t])))
}

/// [`packed_q4_k`] for several tokens in the relaxed build, where each
/// activation broadcast serves every group. Not in the SIMD128 build: there
/// its mere presence beside the one-token code slowed that code by a third
/// in V8 (measured in Node 20), and two groups' sums would not stay in
/// registers anyway.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn packed_q4_k_shared<L: Acc, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
) -> [[v128; T]; G] {
    let mut acc = [[f32x4_splat(0.0); T]; G];
    let mut acc_min = [[f32x4_splat(0.0); T]; G];
    for i in 0..n / QK_K {
        let wbs: [&[u8; Q4_K_X4]; G] = core::array::from_fn(|g| packed_block(groups[g], i));
        let abs: [&[u8; Q8_K_BYTES]; T] =
            core::array::from_fn(|t| acts[t][Q8_K_BYTES * i..Q8_K_BYTES * i + Q8_K_BYTES].try_into().unwrap());
        let scales: [([v128; 8], [v128; 4]); G] = core::array::from_fn(|g| k4_scales(wbs[g]));
        let mut isums = [[i32x4_splat(0); T]; G];
        // A unit's codes are unpacked as they are used (sub-block j's
        // nibbles, the low ones for even j), for all the groups.
        for j in 0..8 {
            let mut s = [[L::zero(); T]; G];
            for u in 0..8 {
                let q: [Unit; G] = core::array::from_fn(|g| {
                    let (lo, hi) = unit_nibbles(load(wbs[g], 64 + 128 * (j / 2) + 16 * u));
                    if j % 2 == 0 {
                        lo
                    } else {
                        hi
                    }
                });
                for t in 0..T {
                    let a = splat4(abs[t], 4 + 32 * j + 4 * u);
                    for g in 0..G {
                        s[g][t] = s[g][t].add::<0>(q[g], a);
                    }
                }
            }
            for g in 0..G {
                for t in 0..T {
                    isums[g][t] = i32x4_add(isums[g][t], s[g][t].scaled(scales[g].0[j]));
                }
            }
        }
        for (t, &ab) in abs.iter().enumerate() {
            let pairs = k4_pair_sums(ab);
            let da = f32x4_splat(f32_at(ab, 0));
            for (g, wb) in wbs.iter().enumerate() {
                let (d, dmin) = (f16x4_at(wb, 0), f16x4_at(wb, 8));
                let msum = k4_min_sums(&scales[g].1, pairs);
                acc[g][t] = f32x4_add(acc[g][t], f32x4_mul(f32x4_mul(d, da), f32x4_convert_i32x4(isums[g][t])));
                acc_min[g][t] = f32x4_add(acc_min[g][t], f32x4_mul(f32x4_mul(dmin, da), f32x4_convert_i32x4(msum)));
            }
        }
    }
    core::array::from_fn(|g| core::array::from_fn(|t| f32x4_sub(acc[g][t], acc_min[g][t])))
}

/// Q6_K: sixteen 16-element sub-blocks of unsigned 6-bit codes times the
/// rows' signed scales, less 32 times Σ_j scale_j · (the activations' sum
/// over sub-block j), as `scalar` combines them (exact integers, so in any
/// order).
#[inline(always)]
fn packed_q6_k<L: Acc, const G: usize, const T: usize>(
    n: usize,
    groups: [&[u8]; G],
    acts: [&[u8]; T],
) -> [[v128; T]; G] {
    let mut acc = [[f32x4_splat(0.0); T]; G];
    for i in 0..n / QK_K {
        let abs: [&[u8; Q8_K_BYTES]; T] =
            core::array::from_fn(|t| acts[t][Q8_K_BYTES * i..Q8_K_BYTES * i + Q8_K_BYTES].try_into().unwrap());
        for (g, group) in groups.iter().enumerate() {
            let wb = packed_block::<Q6_K_X4>(group, i);
            let d = f16x4_at(wb, 0);
            // Scale j of row r is byte 8 + 4j + r: `sc[j]` row r's in lane r,
            // and `by_row[r]` row r's sixteen as i16 (scales 0..8, 8..16).
            let v: [v128; 4] = core::array::from_fn(|k| load(wb, 8 + 16 * k));
            let sc: [v128; 16] = core::array::from_fn(|j| {
                let h = if j % 4 < 2 { i16x8_extend_low_i8x16(v[j / 4]) } else { i16x8_extend_high_i8x16(v[j / 4]) };
                if j % 2 == 0 {
                    i32x4_extend_low_i16x8(h)
                } else {
                    i32x4_extend_high_i16x8(h)
                }
            });
            let ((a01, a23), (b01, b23)) = (by_rows(v[0], v[1]), by_rows(v[2], v[3]));
            let by_row = [
                (i16x8_extend_low_i8x16(a01), i16x8_extend_low_i8x16(b01)),
                (i16x8_extend_high_i8x16(a01), i16x8_extend_high_i8x16(b01)),
                (i16x8_extend_low_i8x16(a23), i16x8_extend_low_i8x16(b23)),
                (i16x8_extend_high_i8x16(a23), i16x8_extend_high_i8x16(b23)),
            ];
            // 32 · Σ_j scale_j · bsum_j, row r in lane r (|scale · bsum| ≤ 128 · 2032).
            let offset = |ab: &[u8; Q8_K_BYTES]| {
                let (b0, b1) = (load(ab, 260), load(ab, 276));
                let sums = by_row.map(|(s0, s1)| i32x4_add(i32x4_dot_i16x8(s0, b0), i32x4_dot_i16x8(s1, b1)));
                i32x4_shl(reduce4(sums), 5)
            };
            // The codes of one load of each source: half h = j / 8 takes ql's
            // units 16h + u (A) and 16h + 8 + u (B) and qh's 8h + u; kind
            // (j % 8) / 2 picks the nibble, the source and the two bits of qh
            // as `scalar::unpack_q6_half`, giving unit v = u % 4 of sub-block
            // j = 8h + 2·kind + u / 4 (elements 16j + 4v..).
            let codes = |h: usize, u: usize| -> [v128; 4] {
                let a = load(wb, 72 + 16 * (16 * h + u));
                let b = load(wb, 72 + 16 * (16 * h + 8 + u));
                let qh = load(wb, 584 + 16 * (8 * h + u));
                let ((a_lo, a_hi), (b_lo, b_hi)) = (nibbles(a), nibbles(b));
                [
                    v128_or(a_lo, bits_to_4_5(qh, 0)),
                    v128_or(b_lo, bits_to_4_5(qh, 2)),
                    v128_or(a_hi, bits_to_4_5(qh, 4)),
                    v128_or(b_hi, bits_to_4_5(qh, 6)),
                ]
            };
            let mut isums = [i32x4_splat(0); T];
            if T == 1 && cfg!(target_feature = "relaxed-simd") {
                // One token: the codes are dotted as they are unpacked, the
                // four sub-blocks one load of each source holds in four chains
                // (without relaxed SIMD this ran 22% slower, measured when
                // that build still summed in i16 lanes; not re-measured).
                for h in 0..2 {
                    for w in 0..2 {
                        // Units 0 and 2 in bucket 0, 1 and 3 in bucket 1.
                        let mut s = [L::zero(); 4];
                        for v in 0..4 {
                            for (kind, code) in codes(h, 4 * w + v).into_iter().enumerate() {
                                let a = splat4(abs[0], 4 + 16 * (8 * h + 2 * kind + w) + 4 * v);
                                s[kind] = if v % 2 == 0 {
                                    s[kind].add::<0>(unit(code), a)
                                } else {
                                    s[kind].add::<1>(unit(code), a)
                                };
                            }
                        }
                        for (kind, s) in s.into_iter().enumerate() {
                            isums[0] = i32x4_add(isums[0], s.scaled(sc[8 * h + 2 * kind + w]));
                        }
                    }
                }
            } else {
                // Unpacked once for the tokens: unit v of sub-block j in q[4j + v].
                let mut q = [i8x16_splat(0); 64];
                for h in 0..2 {
                    for u in 0..8 {
                        for (kind, code) in codes(h, u).into_iter().enumerate() {
                            q[4 * (8 * h + 2 * kind + u / 4) + u % 4] = code;
                        }
                    }
                }
                for j in 0..16 {
                    // Widened as they are used: 64 widened units would not
                    // stay in registers.
                    let q: [Unit; 4] = core::array::from_fn(|v| unit(q[4 * j + v]));
                    // Units 0 and 2 in bucket 0, 1 and 3 in bucket 1.
                    let mut s = [L::zero(); T];
                    if T == 1 {
                        let at = 4 + 16 * j;
                        s[0] = s[0].add2(q[0], splat4(abs[0], at), q[1], splat4(abs[0], at + 4));
                        s[0] = s[0].add2(q[2], splat4(abs[0], at + 8), q[3], splat4(abs[0], at + 12));
                    } else {
                        for v in (0..4).step_by(2) {
                            for t in 0..T {
                                let at = 4 + 16 * j + 4 * v;
                                s[t] =
                                    s[t].add::<0>(q[v], splat4(abs[t], at)).add::<1>(q[v + 1], splat4(abs[t], at + 4));
                            }
                        }
                    }
                    for t in 0..T {
                        isums[t] = i32x4_add(isums[t], s[t].scaled(sc[j]));
                    }
                }
            }
            for t in 0..T {
                let isum = i32x4_sub(isums[t], offset(abs[t]));
                let p = f32x4_mul(f32x4_mul(d, f32x4_splat(f32_at(abs[t], 0))), f32x4_convert_i32x4(isum));
                acc[g][t] = f32x4_add(acc[g][t], p);
            }
        }
    }
    acc
}

/// One packed kernel with summation `$l` for one or two groups and one to
/// four activation rows, or four groups and one, written to `out` as
/// `scalar`'s.
macro_rules! packed_run {
    ($kernel:ident::<$l:ty>($n:expr, $groups:expr, $acts:expr, $out:expr)) => {{
        let (n, groups, acts, out): (usize, &[&[u8]], &[&[u8]], &mut [[f32; 4]]) = ($n, $groups, $acts, $out);
        let lanes = |v: v128| {
            [
                f32x4_extract_lane::<0>(v),
                f32x4_extract_lane::<1>(v),
                f32x4_extract_lane::<2>(v),
                f32x4_extract_lane::<3>(v),
            ]
        };
        if groups.len() == 4 {
            let r = $kernel::<$l, 4, 1>(n, [groups[0], groups[1], groups[2], groups[3]], [acts[0]]);
            for (o, v) in out.iter_mut().zip(r) {
                *o = lanes(v[0]);
            }
        } else if groups.len() == 2 {
            by_tokens!(acts, |a: T| $kernel::<$l, 2, T>(n, [groups[0], groups[1]], a), |r| for (o, &v) in
                out.iter_mut().zip(r.iter().flatten())
            {
                *o = lanes(v);
            });
        } else {
            by_tokens!(
                acts,
                |a: T| $kernel::<$l, 1, T>(n, [groups[0]], a),
                |r| for (o, &v) in out.iter_mut().zip(&r[0]) {
                    *o = lanes(v);
                }
            );
        }
    }};
}

/// The packed kernels' entry points, with `scalar`'s signatures. In the
/// relaxed build each runs the summation that [`summation`] found faster on
/// this machine for its kernel and shape; `<name>_summed` runs the one given
/// (every summation gives the same bits). `$join`: `Lanes16`'s bound holds
/// for a whole block's (or sub-block's) units in one lane.
macro_rules! packed_kernels {
    ($($name:ident, $summed:ident => $kernel:ident, $join:literal, $slot:literal;)*) => {$(
        pub fn $name(n: usize, groups: &[&[u8]], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            #[cfg(target_feature = "relaxed-simd")]
            {
                let shape = (groups.len(), acts.len());
                let faster = summation(2 * $slot + (shape.1 == 1) as usize, |s| {
                    let z: &[u8] = &ZEROS;
                    $summed(s, CALIBRATION_N, &[z; 4][..shape.0], &[z; 4][..shape.1], &mut [[0.0; 4]; 4]);
                });
                $summed(faster, n, groups, acts, out)
            }
            #[cfg(not(target_feature = "relaxed-simd"))]
            packed_run!($kernel::<Lanes>(n, groups, acts, out))
        }

        #[cfg(target_feature = "relaxed-simd")]
        pub fn $summed(summation: Summation, n: usize, groups: &[&[u8]], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            match summation {
                // Two groups gain nothing from sharing broadcasts here.
                Summation::I32 if groups.len() == 2 => {
                    let (first, second) = out.split_at_mut(acts.len());
                    packed_run!($kernel::<Lanes>(n, &groups[..1], acts, first));
                    packed_run!($kernel::<Lanes>(n, &groups[1..], acts, second));
                }
                Summation::I32 => packed_run!($kernel::<Lanes>(n, groups, acts, out)),
                Summation::I16 => packed_run!($kernel::<Lanes16<$join>>(n, groups, acts, out)),
            }
        }
    )*};
}

packed_kernels! {
    packed_q4_0_q8_0, packed_q4_0_q8_0_summed => packed_q4_0, true, 0;
    packed_q5_0_q8_0, packed_q5_0_q8_0_summed => packed_q5_0, false, 1;
    packed_q4_k_q8_k, packed_q4_k_q8_k_summed => packed_q4_k, true, 2;
    packed_q6_k_q8_k, packed_q6_k_q8_k_summed => packed_q6_k, false, 3;
}

/// How the relaxed build's packed kernels sum their dot products: [`Lanes`]
/// (i32) or `Lanes16` (i16). Which is faster depends on the CPU under V8,
/// not on anything wasm can query, so it is timed.
#[cfg(target_feature = "relaxed-simd")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summation {
    I32,
    I16,
}

/// The elements a calibration product takes: four Q4_K/Q6_K blocks, 32 Q4_0.
#[cfg(target_feature = "relaxed-simd")]
const CALIBRATION_N: usize = 1024;

/// Weights and activations of the calibration products (zeros: integer
/// instructions take the same time on any values, and zero floats keep
/// subnormals out). Every packed format's group and activation row of
/// [`CALIBRATION_N`] elements fits.
#[cfg(target_feature = "relaxed-simd")]
static ZEROS: [u8; 4 * Q6_K_X4 * CALIBRATION_N / QK_K] = [0; 4 * Q6_K_X4 * CALIBRATION_N / QK_K];

/// A summation forced for every kernel ([`set_summation`]): 0 for none,
/// else 1 + the [`Summation`].
#[cfg(target_feature = "relaxed-simd")]
static FORCED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// What a thread knows of a kernel's faster summation.
#[cfg(target_feature = "relaxed-simd")]
#[derive(Clone, Copy)]
enum Choice {
    Untimed,
    /// Timed at first use, with this many calls since: V8 first runs a
    /// function as baseline (Liftoff) code and swaps in optimised code when
    /// a background compile finishes, and baseline code favours the i32
    /// summation, so the first timing may have measured the wrong code.
    Provisional(Summation, u32),
    Settled(Summation),
}

/// Calls after which a provisional choice is timed again: about 0.4 s of
/// the kernel's own work, by when V8 has long since optimised it.
#[cfg(target_feature = "relaxed-simd")]
const RETIME_AFTER: u32 = 1 << 18;

#[cfg(target_feature = "relaxed-simd")]
std::thread_local! {
    /// The choice for each kernel (`2 · slot`: several tokens, `+ 1`: one),
    /// a thread's own: each Worker runs its own instance of the code.
    static CHOICES: [core::cell::Cell<Choice>; 8] = const { [const { core::cell::Cell::new(Choice::Untimed) }; 8] };
}

/// Runs every packed kernel with `summation` from now on, or, with `None`,
/// with the one timed faster, timed again on this thread (for probes that
/// compare them).
#[cfg(target_feature = "relaxed-simd")]
pub fn set_summation(summation: Option<Summation>) {
    FORCED.store(summation.map_or(0, |s| 1 + s as u8), core::sync::atomic::Ordering::Relaxed);
    CHOICES.with(|c| c.iter().for_each(|c| c.set(Choice::Untimed)));
}

/// The faster summation for `slot` on this thread. `run` is a product of
/// [`ZEROS`] in the caller's shape, timed 2048 times each way, three times
/// over alternately, the fastest of each kept: about 10 ms, at first use
/// and again after [`RETIME_AFTER`] calls.
#[cfg(target_feature = "relaxed-simd")]
fn summation(slot: usize, run: impl Fn(Summation)) -> Summation {
    match FORCED.load(core::sync::atomic::Ordering::Relaxed) {
        1 => return Summation::I32,
        2 => return Summation::I16,
        _ => {}
    }
    let faster = || {
        let time = |s: Summation| {
            let start = web_time::Instant::now();
            for _ in 0..2048 {
                run(s);
            }
            start.elapsed()
        };
        let (mut i32_best, mut i16_best) = (web_time::Duration::MAX, web_time::Duration::MAX);
        for _ in 0..3 {
            i32_best = i32_best.min(time(Summation::I32));
            i16_best = i16_best.min(time(Summation::I16));
        }
        if i16_best < i32_best {
            Summation::I16
        } else {
            Summation::I32
        }
    };
    CHOICES.with(|c| {
        let (choice, s) = match c[slot].get() {
            Choice::Settled(s) => return s,
            Choice::Provisional(s, calls) if calls < RETIME_AFTER => (Choice::Provisional(s, calls + 1), s),
            Choice::Provisional(..) => {
                let s = faster();
                (Choice::Settled(s), s)
            }
            Choice::Untimed => {
                let s = faster();
                (Choice::Provisional(s, 0), s)
            }
        };
        c[slot].set(choice);
        s
    })
}
