//! Portable kernels, one function per format, reading ggml's blocks straight
//! from byte slices (no alignment is assumed, so every field is decoded with
//! `from_le_bytes`).
//!
//! The functions `mod.rs` reaches through its `kernels` alias (`vec_dot_*` and
//! the activation quantizers `quantize_row_q8_0` / `quantize_row_q8_1` /
//! `quantize_row_q8_k`) are the
//! hot path: an instruction-set file such as `simd128.rs` provides the same
//! names with the same signatures. Everything else (dequantization and the
//! reference weight quantizers) only exists here.
//!
//! Inner loops unpack a block into a fixed-size `[i8; N]` and take a plain
//! zip-multiply-sum with the activations, a shape LLVM turns into widening
//! integer SIMD on its own. Integer sums inside a block are exact `i32`; the
//! float combination per block follows llama.cpp (`d_w * d_a * isum`, minus or
//! plus the min term), so results agree with it up to float rounding.

use half::{bf16, f16};

/// Elements per block of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.
pub(super) const QK: usize = 32;
/// Elements per K-quant super-block (Q4_K, Q5_K, Q6_K, Q8_K).
pub(super) const QK_K: usize = 256;

/// Block sizes in bytes (`GgmlType::block_layout().1`, checked in the tests).
pub(super) const Q4_0_BYTES: usize = 18; // d: f16, qs: [u8; 16]
pub(super) const Q4_1_BYTES: usize = 20; // d: f16, m: f16, qs: [u8; 16]
pub(super) const Q5_0_BYTES: usize = 22; // d: f16, qh: [u8; 4], qs: [u8; 16]
pub(super) const Q5_1_BYTES: usize = 24; // d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]
pub(super) const Q8_0_BYTES: usize = 34; // d: f16, qs: [i8; 32]
pub(super) const Q8_1_BYTES: usize = 36; // d: f16, s: f16 (d·Σqs), qs: [i8; 32]
pub(super) const Q4_K_BYTES: usize = 144; // d, dmin: f16, scales: [u8; 12], qs: [u8; 128]
pub(super) const Q5_K_BYTES: usize = 176; // d, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]
pub(super) const Q6_K_BYTES: usize = 210; // ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16
pub(super) const Q8_K_BYTES: usize = 292; // d: f32, qs: [i8; 256], bsums: [i16; 16]

// ---------------------------------------------------------------- helpers

/// The first `len` bytes (or all of them when shorter): keeps a mis-sized
/// slice from panicking in release builds; debug builds assert the sizes.
#[inline(always)]
fn prefix<T>(b: &[T], len: usize) -> &[T] {
    &b[..len.min(b.len())]
}

/// Splits a byte row into fixed-size blocks (bounds checks then vanish).
#[inline(always)]
pub(super) fn blocks<const N: usize>(b: &[u8]) -> impl Iterator<Item = &[u8; N]> {
    b.chunks_exact(N).map(|c| c.try_into().unwrap())
}

#[inline(always)]
pub(super) fn blocks_mut<const N: usize>(b: &mut [u8]) -> impl Iterator<Item = &mut [u8; N]> {
    b.chunks_exact_mut(N).map(|c| c.try_into().unwrap())
}

/// `N` bytes of a fixed-size block starting at `at` (a constant at every call site).
#[inline(always)]
pub(super) fn sub<const M: usize, const N: usize>(b: &[u8; M], at: usize) -> &[u8; N] {
    b[at..at + N].try_into().unwrap()
}

/// f16 bits to f32, exactly as `half::f16::to_f32` (the tests compare all
/// 65536 inputs) but branch-free and inlined: on x86 `half` calls an
/// out-of-line F16C routine after a run-time feature check, which costs more
/// than the 32-element dot product it scales, and a branchy conversion stops
/// LLVM from vectorizing that dot product. Subnormals are computed as
/// integer·2^-24, so no subnormal f32 arithmetic is involved.
#[inline(always)]
pub(super) fn f16_to_f32(h: u16) -> f32 {
    let em = (h & 0x7fff) as u32;
    // All three candidates are computed so that choosing one is a select.
    let normal = (em << 13) + ((127 - 15) << 23); // rebias the exponent
    let subnormal = (em as f32 * (1.0 / 16_777_216.0)).to_bits(); // or zero
    let inf_nan = (em << 13) | 0x7f80_0000 | ((em > 0x7c00) as u32) << 22; // NaN made quiet
    let bits = if em < 0x0400 {
        subnormal
    } else if em < 0x7c00 {
        normal
    } else {
        inf_nan
    };
    f32::from_bits(bits | ((h as u32 & 0x8000) << 16))
}

#[inline(always)]
pub(super) fn f16_at<const M: usize>(b: &[u8; M], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[inline(always)]
pub(super) fn f32_at<const M: usize>(b: &[u8; M], at: usize) -> f32 {
    f32::from_le_bytes(*sub(b, at))
}

/// Exact dot product of `N` small signed weights with `N` i8 activations
/// (given as their raw bytes).
#[inline(always)]
pub(super) fn dot<const N: usize>(w: &[i8; N], a: &[u8; N]) -> i32 {
    w.iter().zip(a).map(|(&x, &y)| x as i32 * (y as i8) as i32).sum()
}

/// ggml's `nearest_int`: round half to even through the 1.5·2^23 trick, exact
/// for |x| < 2^22 (callers stay far below) and branch-free.
#[inline(always)]
fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Bit `j % 8` of byte `j / 8`: tests element `j`'s fifth bit in Q5_0/Q5_1's
/// `qh` with a byte-wise AND and compare, which vectorizes (a per-element
/// variable shift does not on baseline x86).
const QH_BIT: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut j = 0;
    while j < 32 {
        t[j] = 1 << (j % 8);
        j += 1;
    }
    t
};

/// The 4-bit codes of a Q4_0/Q4_1 block in element order: low nibbles are
/// elements 0..16, high nibbles 16..32.
#[inline(always)]
fn unpack_nibbles(qs: &[u8; 16]) -> [i8; 32] {
    let mut q = [0i8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0f) as i8;
        q[j + 16] = (qs[j] >> 4) as i8;
    }
    q
}

/// The 5-bit codes (0..32) of a Q5_0/Q5_1 block: nibbles as in Q4, the fifth
/// bit of element `j` is bit `j` of the little-endian u32 `qh`.
#[inline(always)]
fn unpack_q5(qh: &[u8; 4], qs: &[u8; 16]) -> [i8; 32] {
    let mut q = unpack_nibbles(qs);
    for (j, v) in q.iter_mut().enumerate() {
        *v |= if qh[j / 8] & QH_BIT[j] != 0 { 16 } else { 0 };
    }
    q
}

/// ggml's `get_scale_min_k4` for all eight sub-blocks: 6-bit scales and mins
/// packed into 12 bytes (sub-blocks 4..8 keep their top two bits in the top
/// bits of bytes 0..8).
#[inline(always)]
pub(super) fn scales_mins_k4(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, m)
}

/// Inverse of [`scales_mins_k4`]; every value must be below 64.
fn pack_scales_mins_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
    }
    s
}

/// The sixteen i16 block sums of a Q8_K block.
#[inline(always)]
fn q8k_bsums(b: &[u8; Q8_K_BYTES]) -> [i32; 16] {
    let mut s = [0i32; 16];
    for (j, v) in s.iter_mut().enumerate() {
        *v = i16::from_le_bytes([b[260 + 2 * j], b[261 + 2 * j]]) as i32;
    }
    s
}

// ------------------------------------------------ activation quantization

/// One block of 8-bit activations as llama.cpp's x86 SIMD quantizer computes
/// it: d = amax/127, q = x·(127/amax) rounded half to even. The reference C
/// version differs in the last bit of the multiplier and in ties, and this
/// model family amplifies such flips: mirroring the SIMD path halves the
/// logits that stray more than 0.5 from llama.cpp's. Returns d (unrounded)
/// and the sum of the quants.
fn quantize_block_q8(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i8;
        sum += r as i32;
        *q = r as u8;
    }
    (amax / 127.0, sum)
}

/// Q8_0: d as f16, then the quants.
pub fn quantize_row_q8_0(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q8_0_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q8_0_BYTES>(dst)) {
        let (d, _) = quantize_block_q8(x, &mut y[2..]);
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    }
}

/// Q8_0 as ggml's `quantize_row_q8_0_ref` makes weights (llama.cpp's
/// quantizer): the quants are `x · (1/d)` rounded half away from zero,
/// where activations take `x · (127/amax)` rounded half to even.
pub fn quantize_row_q8_0_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q8_0_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q8_0_BYTES>(dst)) {
        let d = x.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        for (q, &v) in y[2..].iter_mut().zip(x) {
            *q = (v * id).round() as i8 as u8;
        }
    }
}

/// Q8_1: Q8_0's d and quants plus s = f16(d·Σq) computed with the unrounded d.
pub fn quantize_row_q8_1(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q8_1_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q8_1_BYTES>(dst)) {
        let (d, sum) = quantize_block_q8(x, &mut y[4..]);
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        y[2..4].copy_from_slice(&f16::from_f32(sum as f32 * d).to_le_bytes());
    }
}

/// Q8_K as ggml's `quantize_row_q8_K_ref`: scale by -127/max with `max` the
/// signed value of largest magnitude (so d = 1/iscale may be negative),
/// round half to even, and store the sums of each 16 quants.
pub fn quantize_row_q8_k(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK_K == 0 && dst.len() == src.len() / QK_K * Q8_K_BYTES);
    for (x, y) in src.chunks_exact(QK_K).zip(blocks_mut::<Q8_K_BYTES>(dst)) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        let mut q = [0i8; QK_K];
        for (q, &v) in q.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).clamp(-128, 127) as i8;
        }
        y[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for (b, &v) in y[4..260].iter_mut().zip(&q) {
            *b = v as u8;
        }
        for (j, group) in q.chunks_exact(16).enumerate() {
            let s: i16 = group.iter().map(|&v| v as i16).sum();
            y[260 + 2 * j..262 + 2 * j].copy_from_slice(&s.to_le_bytes());
        }
    }
}

/// F32 activations are their little-endian bytes.
pub fn quantize_row_f32(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 4);
    for (b, v) in dst.chunks_exact_mut(4).zip(src) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

// ------------------------------------------------------------ dot products

/// Float dot product for the float weight types, over 16 independent lanes
/// (the shape that vectorizes without reassociating a single running sum).
#[inline(always)]
fn vec_dot_float<const WB: usize>(
    n: usize,
    w: &[u8],
    act: &[u8],
    decode16: impl Fn(&[u8]) -> [f32; 16],
    decode1: impl Fn(&[u8]) -> f32,
) -> f32 {
    let (w, act) = (prefix(w, n * WB), prefix(act, n * 4));
    let (wc, ac) = (w.chunks_exact(16 * WB), act.chunks_exact(64));
    let (wr, ar) = (wc.remainder(), ac.remainder());
    let mut acc = [0f32; 16];
    for (wb, ab) in wc.zip(ac) {
        let wf = decode16(wb);
        for (k, (s, x)) in acc.iter_mut().zip(wf).enumerate() {
            *s += x * f32::from_le_bytes(ab[4 * k..4 * k + 4].try_into().unwrap());
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (wb, ab) in wr.chunks_exact(WB).zip(ar.chunks_exact(4)) {
        sum += decode1(wb) * f32::from_le_bytes(ab.try_into().unwrap());
    }
    sum
}

pub fn vec_dot_f32(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(w.len() == n * 4 && act.len() == n * 4);
    vec_dot_float::<4>(
        n,
        w,
        act,
        |b| core::array::from_fn(|k| f32::from_le_bytes(b[4 * k..4 * k + 4].try_into().unwrap())),
        |b| f32::from_le_bytes(b.try_into().unwrap()),
    )
}

pub fn vec_dot_f16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(w.len() == n * 2 && act.len() == n * 4);
    vec_dot_float::<2>(
        n,
        w,
        act,
        |b| core::array::from_fn(|k| f16_to_f32(u16::from_le_bytes([b[2 * k], b[2 * k + 1]]))),
        |b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
    )
}

pub fn vec_dot_bf16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(w.len() == n * 2 && act.len() == n * 4);
    vec_dot_float::<2>(
        n,
        w,
        act,
        |b| core::array::from_fn(|k| bf16::from_le_bytes([b[2 * k], b[2 * k + 1]]).to_f32()),
        |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
    )
}

pub fn vec_dot_q4_0_q8_0(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK == 0 && w.len() == n / QK * Q4_0_BYTES && act.len() == n / QK * Q8_0_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q4_0_BYTES>(w).zip(blocks::<Q8_0_BYTES>(act)).take(n / QK) {
        let q = unpack_nibbles(sub(wb, 2)).map(|v| v - 8);
        let isum = dot(&q, sub(ab, 2));
        sum += (f16_at(wb, 0) * f16_at(ab, 0)) * isum as f32;
    }
    sum
}

/// Q4_1 against Q8_1: the min term uses the activation block's `s = d·Σq`,
/// rounded to f16 from the unrounded d exactly as llama.cpp stores it. That
/// rounding moves SmolLM2's logits by tenths, so it is mirrored, not improved.
pub fn vec_dot_q4_1_q8_1(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK == 0 && w.len() == n / QK * Q4_1_BYTES && act.len() == n / QK * Q8_1_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q4_1_BYTES>(w).zip(blocks::<Q8_1_BYTES>(act)).take(n / QK) {
        let isum = dot(&unpack_nibbles(sub(wb, 4)), sub(ab, 4));
        sum += (f16_at(wb, 0) * f16_at(ab, 0)) * isum as f32 + f16_at(wb, 2) * f16_at(ab, 2);
    }
    sum
}

pub fn vec_dot_q5_0_q8_0(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK == 0 && w.len() == n / QK * Q5_0_BYTES && act.len() == n / QK * Q8_0_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q5_0_BYTES>(w).zip(blocks::<Q8_0_BYTES>(act)).take(n / QK) {
        let q = unpack_q5(sub(wb, 2), sub(wb, 6)).map(|v| v - 16);
        let isum = dot(&q, sub(ab, 2));
        sum += (f16_at(wb, 0) * f16_at(ab, 0)) * isum as f32;
    }
    sum
}

/// Q5_1 against Q8_1, with the min term as in [`vec_dot_q4_1_q8_1`].
pub fn vec_dot_q5_1_q8_1(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK == 0 && w.len() == n / QK * Q5_1_BYTES && act.len() == n / QK * Q8_1_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q5_1_BYTES>(w).zip(blocks::<Q8_1_BYTES>(act)).take(n / QK) {
        let isum = dot(&unpack_q5(sub(wb, 4), sub(wb, 8)), sub(ab, 4));
        sum += (f16_at(wb, 0) * f16_at(ab, 0)) * isum as f32 + f16_at(wb, 2) * f16_at(ab, 2);
    }
    sum
}

pub fn vec_dot_q8_0_q8_0(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK == 0 && w.len() == n / QK * Q8_0_BYTES && act.len() == n / QK * Q8_0_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q8_0_BYTES>(w).zip(blocks::<Q8_0_BYTES>(act)).take(n / QK) {
        let q = sub::<Q8_0_BYTES, 32>(wb, 2).map(|b| b as i8);
        let isum = dot(&q, sub(ab, 2));
        sum += (f16_at(wb, 0) * f16_at(ab, 0)) * isum as f32;
    }
    sum
}

/// Q4_K against Q8_K: eight sub-blocks of 32 with 6-bit scales and mins; the
/// mins meet the activations only through Q8_K's 16-element sums.
pub fn vec_dot_q4_k_q8_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK_K == 0 && w.len() == n / QK_K * Q4_K_BYTES && act.len() == n / QK_K * Q8_K_BYTES);
    let (mut sum, mut sum_mins) = (0f32, 0f32);
    for (wb, ab) in blocks::<Q4_K_BYTES>(w).zip(blocks::<Q8_K_BYTES>(act)).take(n / QK_K) {
        let (sc, m) = scales_mins_k4(sub(wb, 4));
        let qs: &[u8; 128] = sub(wb, 16);
        let aq: &[u8; QK_K] = sub(ab, 4);
        let mut isum = 0i32;
        for c in 0..4 {
            let q: &[u8; 32] = qs[32 * c..32 * c + 32].try_into().unwrap();
            let lo = q.map(|b| (b & 0x0f) as i8);
            let hi = q.map(|b| (b >> 4) as i8);
            isum += sc[2 * c] as i32 * dot(&lo, aq[64 * c..64 * c + 32].try_into().unwrap());
            isum += sc[2 * c + 1] as i32 * dot(&hi, aq[64 * c + 32..64 * c + 64].try_into().unwrap());
        }
        let bsums = q8k_bsums(ab);
        let msum: i32 = (0..8).map(|j| m[j] as i32 * (bsums[2 * j] + bsums[2 * j + 1])).sum();
        let da = f32_at(ab, 0);
        sum += (f16_at(wb, 0) * da) * isum as f32;
        sum_mins += (f16_at(wb, 2) * da) * msum as f32;
    }
    sum - sum_mins
}

/// Q5_K against Q8_K: Q4_K plus a fifth bit per element; 64-element chunk `c`
/// takes its fifth bits from bits 2c (first 32) and 2c+1 (next 32) of `qh`.
pub fn vec_dot_q5_k_q8_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK_K == 0 && w.len() == n / QK_K * Q5_K_BYTES && act.len() == n / QK_K * Q8_K_BYTES);
    let (mut sum, mut sum_mins) = (0f32, 0f32);
    for (wb, ab) in blocks::<Q5_K_BYTES>(w).zip(blocks::<Q8_K_BYTES>(act)).take(n / QK_K) {
        let (sc, m) = scales_mins_k4(sub(wb, 4));
        let qh: &[u8; 32] = sub(wb, 16);
        let qs: &[u8; 128] = sub(wb, 48);
        let aq: &[u8; QK_K] = sub(ab, 4);
        let mut isum = 0i32;
        for c in 0..4 {
            let q: &[u8; 32] = qs[32 * c..32 * c + 32].try_into().unwrap();
            let mut lo = [0i8; 32];
            let mut hi = [0i8; 32];
            for l in 0..32 {
                lo[l] = ((q[l] & 0x0f) | (((qh[l] >> (2 * c)) & 1) << 4)) as i8;
                hi[l] = ((q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) as i8;
            }
            isum += sc[2 * c] as i32 * dot(&lo, aq[64 * c..64 * c + 32].try_into().unwrap());
            isum += sc[2 * c + 1] as i32 * dot(&hi, aq[64 * c + 32..64 * c + 64].try_into().unwrap());
        }
        let bsums = q8k_bsums(ab);
        let msum: i32 = (0..8).map(|j| m[j] as i32 * (bsums[2 * j] + bsums[2 * j + 1])).sum();
        let da = f32_at(ab, 0);
        sum += (f16_at(wb, 0) * da) * isum as f32;
        sum_mins += (f16_at(wb, 2) * da) * msum as f32;
    }
    sum - sum_mins
}

/// The 6-bit codes (already minus 32) of one 128-element half of a Q6_K
/// block, as four runs of 32: run `g` takes the low (g < 2) or high nibble of
/// `ql[32·(g%2) + l]` and bits 2g..2g+2 of `qh[l]`.
#[inline(always)]
fn unpack_q6_half(ql: &[u8; 64], qh: &[u8; 32]) -> [[i8; 32]; 4] {
    let mut q = [[0i8; 32]; 4];
    for l in 0..32 {
        let h = qh[l];
        q[0][l] = ((ql[l] & 0x0f) | ((h & 3) << 4)) as i8 - 32;
        q[1][l] = ((ql[l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) as i8 - 32;
        q[2][l] = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32;
        q[3][l] = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32;
    }
    q
}

/// Q6_K against Q8_K: sixteen sub-blocks of 16 with signed 8-bit scales.
pub fn vec_dot_q6_k_q8_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    debug_assert!(n % QK_K == 0 && w.len() == n / QK_K * Q6_K_BYTES && act.len() == n / QK_K * Q8_K_BYTES);
    let mut sum = 0f32;
    for (wb, ab) in blocks::<Q6_K_BYTES>(w).zip(blocks::<Q8_K_BYTES>(act)).take(n / QK_K) {
        let sc: &[u8; 16] = sub(wb, 192);
        let aq: &[u8; QK_K] = sub(ab, 4);
        let mut isum = 0i32;
        for h in 0..2 {
            let q = unpack_q6_half(sub(wb, 64 * h), sub(wb, 128 + 32 * h));
            for (g, run) in q.iter().enumerate() {
                let at = 128 * h + 32 * g;
                let (s0, s1) = (sc[8 * h + 2 * g] as i8 as i32, sc[8 * h + 2 * g + 1] as i8 as i32);
                isum += s0 * dot::<16>(run[..16].try_into().unwrap(), aq[at..at + 16].try_into().unwrap());
                isum += s1 * dot::<16>(run[16..].try_into().unwrap(), aq[at + 16..at + 32].try_into().unwrap());
            }
        }
        sum += (f16_at(wb, 208) * f32_at(ab, 0)) * isum as f32;
    }
    sum
}

/// The tile variants `quant::vec_dot_4x` takes (four weight rows against
/// one to four activation rows, `out[t][k]` = row `k` · activation `t`):
/// here single-row products (instruction-set files share loads and unpacking).
macro_rules! tiles {
    ($($one:ident => $tile:ident,)*) => {$(
        pub fn $tile(n: usize, w: [&[u8]; 4], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            for (o, a) in out.iter_mut().zip(acts) {
                *o = w.map(|wk| $one(n, wk, a));
            }
        }
    )*};
}

tiles! {
    vec_dot_f32 => vec_dot_f32_4x,
    vec_dot_f16 => vec_dot_f16_4x,
    vec_dot_bf16 => vec_dot_bf16_4x,
    vec_dot_q4_0_q8_0 => vec_dot_q4_0_q8_0_4x,
    vec_dot_q4_1_q8_1 => vec_dot_q4_1_q8_1_4x,
    vec_dot_q5_0_q8_0 => vec_dot_q5_0_q8_0_4x,
    vec_dot_q5_1_q8_1 => vec_dot_q5_1_q8_1_4x,
    vec_dot_q8_0_q8_0 => vec_dot_q8_0_q8_0_4x,
    vec_dot_q4_k_q8_k => vec_dot_q4_k_q8_k_4x,
    vec_dot_q5_k_q8_k => vec_dot_q5_k_q8_k_4x,
    vec_dot_q6_k_q8_k => vec_dot_q6_k_q8_k_4x,
}

/// The packed kernels (`quant::packed`): groups of four interleaved rows
/// against activation rows, `out[g * acts.len() + t][r]` = row `r` of group
/// `g` · activation `t`, for one group and one to four activation rows or
/// four groups and one. Here each row is unpacked and dotted as the file
/// lays it out: the reference the instruction-set files must equal bit for bit.
macro_rules! packed {
    ($($one:ident => $packed:ident, $ty:ident;)*) => {$(
        pub fn $packed(n: usize, groups: &[&[u8]], acts: &[&[u8]], out: &mut [[f32; 4]]) {
            let ty = super::GgmlType::$ty;
            let mut rows = vec![0u8; groups[0].len()];
            // The rows of `takes_block_sums` types carry sums this leaves aside.
            let a_row = super::vec_dot_type(ty).bytes_for(n as u64).unwrap() as usize;
            for (g, group) in groups.iter().enumerate() {
                super::packed::unpack_group(ty, group, &mut rows);
                for (r, row) in rows.chunks_exact(rows.len() / 4).enumerate() {
                    for (t, a) in acts.iter().enumerate() {
                        out[g * acts.len() + t][r] = $one(n, row, &a[..a_row]);
                    }
                }
            }
        }
    )*};
}

packed! {
    vec_dot_q4_0_q8_0 => packed_q4_0_q8_0, Q4_0;
    vec_dot_q5_0_q8_0 => packed_q5_0_q8_0, Q5_0;
    vec_dot_q4_k_q8_k => packed_q4_k_q8_k, Q4K;
    vec_dot_q6_k_q8_k => packed_q6_k_q8_k, Q6K;
}

// ---------------------------------------------------------- dequantization

pub fn dequantize_row_f32(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 4);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes(b.try_into().unwrap());
    }
}

pub fn dequantize_row_f16(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 2);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

pub fn dequantize_row_bf16(src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len() * 2);
    for (y, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *y = bf16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

pub fn dequantize_row_q4_0(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q4_0_BYTES);
    for (b, y) in blocks::<Q4_0_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, q) in y.iter_mut().zip(unpack_nibbles(sub(b, 2))) {
            *y = (q - 8) as f32 * d;
        }
    }
}

pub fn dequantize_row_q4_1(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q4_1_BYTES);
    for (b, y) in blocks::<Q4_1_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (y, q) in y.iter_mut().zip(unpack_nibbles(sub(b, 4))) {
            *y = q as f32 * d + m;
        }
    }
}

pub fn dequantize_row_q5_0(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q5_0_BYTES);
    for (b, y) in blocks::<Q5_0_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, q) in y.iter_mut().zip(unpack_q5(sub(b, 2), sub(b, 6))) {
            *y = (q - 16) as f32 * d;
        }
    }
}

pub fn dequantize_row_q5_1(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q5_1_BYTES);
    for (b, y) in blocks::<Q5_1_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (y, q) in y.iter_mut().zip(unpack_q5(sub(b, 4), sub(b, 8))) {
            *y = q as f32 * d + m;
        }
    }
}

pub fn dequantize_row_q8_0(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q8_0_BYTES);
    for (b, y) in blocks::<Q8_0_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, &q) in y.iter_mut().zip(&b[2..]) {
            *y = (q as i8) as f32 * d;
        }
    }
}

/// Q8_1 decodes as Q8_0 does, d·q; its `s` (d·Σq) only feeds the min terms
/// of the Q4_1/Q5_1 dot products.
pub fn dequantize_row_q8_1(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK == 0 && src.len() == dst.len() / QK * Q8_1_BYTES);
    for (b, y) in blocks::<Q8_1_BYTES>(src).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, &q) in y.iter_mut().zip(&b[4..]) {
            *y = (q as i8) as f32 * d;
        }
    }
}

pub fn dequantize_row_q4_k(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK_K == 0 && src.len() == dst.len() / QK_K * Q4_K_BYTES);
    for (b, y) in blocks::<Q4_K_BYTES>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (sc, m) = scales_mins_k4(sub(b, 4));
        for (c, (y, q)) in y.chunks_exact_mut(64).zip(b[16..].chunks_exact(32)).enumerate() {
            let (d1, m1) = (d * sc[2 * c] as f32, dmin * m[2 * c] as f32);
            let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * m[2 * c + 1] as f32);
            let (lo, hi) = y.split_at_mut(32);
            for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(q) {
                *lo = d1 * (q & 0x0f) as f32 - m1;
                *hi = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

pub fn dequantize_row_q5_k(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK_K == 0 && src.len() == dst.len() / QK_K * Q5_K_BYTES);
    for (b, y) in blocks::<Q5_K_BYTES>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (sc, m) = scales_mins_k4(sub(b, 4));
        let qh: &[u8; 32] = sub(b, 16);
        for (c, (y, q)) in y.chunks_exact_mut(64).zip(b[48..].chunks_exact(32)).enumerate() {
            let (d1, m1) = (d * sc[2 * c] as f32, dmin * m[2 * c] as f32);
            let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * m[2 * c + 1] as f32);
            let (lo, hi) = y.split_at_mut(32);
            for (l, (lo, hi)) in lo.iter_mut().zip(hi).enumerate() {
                let q_lo = (q[l] & 0x0f) | (((qh[l] >> (2 * c)) & 1) << 4);
                let q_hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
                *lo = d1 * q_lo as f32 - m1;
                *hi = d2 * q_hi as f32 - m2;
            }
        }
    }
}

pub fn dequantize_row_q6_k(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK_K == 0 && src.len() == dst.len() / QK_K * Q6_K_BYTES);
    for (b, y) in blocks::<Q6_K_BYTES>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, 208);
        for (h, y) in y.chunks_exact_mut(128).enumerate() {
            let q = unpack_q6_half(sub(b, 64 * h), sub(b, 128 + 32 * h));
            for (i, y) in y.iter_mut().enumerate() {
                let scale = b[192 + 8 * h + i / 16] as i8;
                *y = d * scale as f32 * q[i / 32][i % 32] as f32;
            }
        }
    }
}

pub fn dequantize_row_q8_k(src: &[u8], dst: &mut [f32]) {
    debug_assert!(dst.len() % QK_K == 0 && src.len() == dst.len() / QK_K * Q8_K_BYTES);
    for (b, y) in blocks::<Q8_K_BYTES>(src).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32_at(b, 0);
        for (y, &q) in y.iter_mut().zip(&b[4..260]) {
            *y = d * (q as i8) as f32;
        }
    }
}

// ------------------------------------------- reference weight quantization

/// The value of largest magnitude, with its sign (the first one on ties),
/// and that magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter().fold((f32::MAX, -f32::MAX), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

pub fn quantize_row_f16(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 2);
    for (b, &v) in dst.chunks_exact_mut(2).zip(src) {
        b.copy_from_slice(&f16::from_f32(v).to_le_bytes());
    }
}

pub fn quantize_row_bf16(src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(dst.len(), src.len() * 2);
    for (b, &v) in dst.chunks_exact_mut(2).zip(src) {
        b.copy_from_slice(&bf16::from_f32(v).to_le_bytes());
    }
}

/// As ggml's `quantize_row_q4_0_ref`: the signed extreme maps to -8.
pub fn quantize_row_q4_0_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q4_0_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q4_0_BYTES>(dst)) {
        let d = signed_absmax(x).0 / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            let lo = ((x[j] * id + 8.5) as i8).min(15) as u8;
            let hi = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
            y[2 + j] = lo | (hi << 4);
        }
    }
}

/// As ggml's `quantize_row_q4_1_ref`: d = (max - min)/15, m = min.
pub fn quantize_row_q4_1_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q4_1_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q4_1_BYTES>(dst)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        y[2..4].copy_from_slice(&f16::from_f32(min).to_le_bytes());
        for j in 0..16 {
            let lo = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
            let hi = (((x[j + 16] - min) * id + 0.5) as i8).min(15) as u8;
            y[4 + j] = lo | (hi << 4);
        }
    }
}

/// The nibbles and fifth bits of 32 five-bit codes, ggml's Q5 packing.
fn pack_q5(q: &[u8; 32]) -> ([u8; 4], [u8; 16]) {
    let mut qh = 0u32;
    let mut qs = [0u8; 16];
    for j in 0..16 {
        qs[j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
        qh |= ((q[j] as u32 >> 4) & 1) << j;
        qh |= ((q[j + 16] as u32 >> 4) & 1) << (j + 16);
    }
    (qh.to_le_bytes(), qs)
}

/// As ggml's `quantize_row_q5_0_ref`: the signed extreme maps to -16.
pub fn quantize_row_q5_0_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q5_0_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q5_0_BYTES>(dst)) {
        let d = signed_absmax(x).0 / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q: [u8; 32] = core::array::from_fn(|j| ((x[j] * id + 16.5) as i8).min(31) as u8);
        let (qh, qs) = pack_q5(&q);
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        y[2..6].copy_from_slice(&qh);
        y[6..].copy_from_slice(&qs);
    }
}

/// As ggml's `quantize_row_q5_1_ref`: d = (max - min)/31, m = min.
pub fn quantize_row_q5_1_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK == 0 && dst.len() == src.len() / QK * Q5_1_BYTES);
    for (x, y) in src.chunks_exact(QK).zip(blocks_mut::<Q5_1_BYTES>(dst)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q: [u8; 32] = core::array::from_fn(|j| (((x[j] - min) * id + 0.5) as u8).min(31));
        let (qh, qs) = pack_q5(&q);
        y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        y[2..4].copy_from_slice(&f16::from_f32(min).to_le_bytes());
        y[4..8].copy_from_slice(&qh);
        y[8..].copy_from_slice(&qs);
    }
}

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this
/// counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

// The K-quant reference quantizers below port ggml-quants.c (llama.cpp
// 0c1e570) line by line, float operations in ggml's order and association,
// so that f32 rounding, and with it every output byte, agrees with
// llama.cpp's quantizer without an importance matrix.

/// ggml's `make_qx_quants` with rmse_type 1 (weights x², no importance
/// matrix), as Q6_K uses it: the signed extreme maps to -nmax, then the 18
/// scales -(nmax ± 0.1·k)/max are tried and the one whose codes give the best
/// weighted least-squares fit kept. Writes codes 0..2·nmax to `l` and returns
/// the fitted scale (0 for an all-zero group, whose codes are all 0).
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let fit = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let q = code(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * q;
            suml2 += w * q * q;
        }
        (sumlx, suml2)
    };
    let mut iscale = -nmax as f32 / max;
    for (l, &v) in l.iter_mut().zip(x) {
        *l = (code(iscale, v) + nmax) as u8;
    }
    let (sumlx, suml2) = fit(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = fit(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (l, &v) in l.iter_mut().zip(x) {
                *l = (code(iscale, v) + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_qkx2_quants` with squared errors (use_mad false) on a
/// 32-element sub-block: x ≈ scale·l - the_min with codes 0..=nmax, starting
/// from the min/max fit, then for each of the nstep + 1 (nstep ≥ 1) scales
/// (rmin + rdelta·is + nmax)/(max - min) refitting scale and min by weighted
/// least squares and keeping the smallest weighted error. As in ggml, a better
/// fit's min replaces `min` for the later candidates. Writes the codes to `l`;
/// returns (scale, the_min), the_min ≥ 0.
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32; 32],
    weights: &[f32; 32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for ((l, &v), &w) in l.iter_mut().zip(x).zip(weights) {
        *l = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
        let diff = scale * *l as f32 + min - v;
        best_error += w * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        let iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((a, &v), &w) in aux.iter_mut().zip(x).zip(weights) {
            let q = nearest_int(iscale * (v - min)).clamp(0, nmax);
            *a = q as u8;
            let q = q as f32;
            sum_l += w * q;
            sum_l2 += w * q * q;
            sum_xl += w * q * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for ((&a, &v), &w) in aux.iter().zip(x).zip(weights) {
                let diff = this_scale * a as f32 + this_min - v;
                cur_error += w * (diff * diff);
            }
            if cur_error < best_error {
                l.copy_from_slice(&aux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The common part of ggml's `quantize_row_q4_K_ref` and
/// `quantize_row_q5_K_ref`: a [`make_qkx2_quants`] fit per 32-element
/// sub-block, weighted by rms(sub-block) + |x|; sub-block scales and mins
/// quantized to 6 bits against their maxima; then every element re-rounded
/// with the scale and min it will be decoded with (a sub-block whose scale
/// rounds to zero keeps its fit's codes, as in ggml).
/// Returns (d, dmin, packed scales, codes 0..=nmax).
fn quantize_k_asym(x: &[f32], nmax: i32, rmin: f32, nstep: i32) -> (f16, f16, [u8; 12], [u8; QK_K]) {
    let mut q = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for (j, (sub, q)) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)).enumerate() {
        let sub: &[f32; 32] = sub.try_into().unwrap();
        let mut sum_x2 = 0f32;
        for &v in sub {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights = sub.map(|v| av_x + v.abs());
        (scales[j], mins[j]) = make_qkx2_quants(nmax, sub, &weights, q, rmin, 0.1, nstep);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml stores nearest_int's result in a u8 before the min with 63.
    let ls = scales.map(|s| (nearest_int(inv_scale * s) as u8).min(63));
    let lm = mins.map(|m| (nearest_int(inv_min * m) as u8).min(63));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    for (j, (sub, q)) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)).enumerate() {
        let dq = d.to_f32() * ls[j] as f32;
        if dq == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * lm[j] as f32;
        for (q, &v) in q.iter_mut().zip(sub) {
            *q = nearest_int((v + dm) / dq).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, pack_scales_mins_k4(&ls, &lm), q)
}

/// As ggml's `quantize_row_q4_K_ref` (codes 0..=15, scale search from
/// 15 - 1 in 21 steps of 0.1).
pub fn quantize_row_q4_k_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK_K == 0 && dst.len() == src.len() / QK_K * Q4_K_BYTES);
    for (x, y) in src.chunks_exact(QK_K).zip(blocks_mut::<Q4_K_BYTES>(dst)) {
        let (d, dmin, scales, q) = quantize_k_asym(x, 15, -1.0, 20);
        y[..2].copy_from_slice(&d.to_le_bytes());
        y[2..4].copy_from_slice(&dmin.to_le_bytes());
        y[4..16].copy_from_slice(&scales);
        for (c, qs) in y[16..].chunks_exact_mut(32).enumerate() {
            for (l, b) in qs.iter_mut().enumerate() {
                *b = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
            }
        }
    }
}

/// As ggml's `quantize_row_q5_K_ref` (codes 0..=31, scale search from
/// 31 - 0.5 in 16 steps of 0.1).
pub fn quantize_row_q5_k_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK_K == 0 && dst.len() == src.len() / QK_K * Q5_K_BYTES);
    for (x, y) in src.chunks_exact(QK_K).zip(blocks_mut::<Q5_K_BYTES>(dst)) {
        let (d, dmin, scales, q) = quantize_k_asym(x, 31, -0.5, 15);
        y[..2].copy_from_slice(&d.to_le_bytes());
        y[2..4].copy_from_slice(&dmin.to_le_bytes());
        y[4..16].copy_from_slice(&scales);
        let mut qh = [0u8; 32];
        for (c, qs) in y[48..].chunks_exact_mut(32).enumerate() {
            for (l, b) in qs.iter_mut().enumerate() {
                let (lo, hi) = (q[64 * c + l], q[64 * c + 32 + l]);
                *b = (lo & 0x0f) | ((hi & 0x0f) << 4);
                qh[l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
            }
        }
        y[16..48].copy_from_slice(&qh);
    }
}

/// As ggml's `quantize_row_q6_K_ref`: a [`make_qx_quants`] fit per
/// 16-element sub-block; those scales quantized to i8 against the one of
/// largest magnitude (which maps to -128); then elements re-rounded with the
/// decoded scale (a sub-block whose scale rounds to zero keeps its fit's
/// codes). A block whose scales are all below `GROUP_MAX_EPS` is all zero.
pub fn quantize_row_q6_k_ref(src: &[f32], dst: &mut [u8]) {
    debug_assert!(src.len() % QK_K == 0 && dst.len() == src.len() / QK_K * Q6_K_BYTES);
    for (x, y) in src.chunks_exact(QK_K).zip(blocks_mut::<Q6_K_BYTES>(dst)) {
        let mut q = [0u8; QK_K];
        let mut scales = [0f32; 16];
        for (s, (sub, q)) in scales.iter_mut().zip(x.chunks_exact(16).zip(q.chunks_exact_mut(16))) {
            *s = make_qx_quants(32, sub, q);
        }
        let (max_scale, max_abs_scale) = signed_absmax(&scales);
        y.fill(0);
        if max_abs_scale < GROUP_MAX_EPS {
            continue;
        }
        let iscale = -128.0 / max_scale;
        let d = f16::from_f32(1.0 / iscale);
        // ggml stores min(127, nearest_int(..)) in an i8.
        let sc = scales.map(|s| nearest_int(iscale * s).min(127) as i8);
        for (j, (sub, q)) in x.chunks_exact(16).zip(q.chunks_exact_mut(16)).enumerate() {
            let dq = d.to_f32() * sc[j] as f32;
            if dq == 0.0 {
                continue;
            }
            for (q, &v) in q.iter_mut().zip(sub) {
                *q = (nearest_int(v / dq).clamp(-32, 31) + 32) as u8;
            }
        }
        for h in 0..2 {
            let q = &q[128 * h..128 * h + 128];
            for l in 0..32 {
                y[64 * h + l] = (q[l] & 0x0f) | ((q[l + 64] & 0x0f) << 4);
                y[64 * h + l + 32] = (q[l + 32] & 0x0f) | ((q[l + 96] & 0x0f) << 4);
                y[128 + 32 * h + l] =
                    (q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6);
            }
        }
        for (b, &s) in y[192..208].iter_mut().zip(&sc) {
            *b = s as u8;
        }
        y[208..].copy_from_slice(&d.to_le_bytes());
    }
}
