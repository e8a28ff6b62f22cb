//! wasm SIMD128 versions of the attention loops of `kernels`: the f16 cache
//! is widened eight values at a time, products are summed in eight f32
//! lanes and `exp` is a polynomial over four lanes, so results differ from
//! `kernels` by float rounding only (the widening itself is exact for every
//! non-NaN f16).

use core::arch::wasm32::*;
use half::f16;

/// Eight f16 values at `at` (a multiple of 8 below `x.len()`), widened to two
/// `f32x4`. Normal and subnormal values are exact through a multiply by
/// 2^112 of the f16 bits shifted into f32 position; infinities and NaNs keep
/// an all-ones exponent.
#[inline(always)]
fn widen8(x: &[f16], at: usize) -> (v128, v128) {
    assert!(at + 8 <= x.len());
    // SAFETY: the eight values at `at` lie inside `x` (checked above).
    let h = unsafe { v128_load(x.as_ptr().add(at) as *const v128) };
    let convert = |h: v128| {
        let em = v128_and(h, u32x4_splat(0x7fff));
        let shifted = i32x4_shl(em, 13);
        let finite = f32x4_mul(shifted, f32x4_splat(f32::from_bits(0x7780_0000))); // 2^112
        let special = v128_or(shifted, u32x4_splat(0x7f80_0000));
        let bits = v128_bitselect(special, finite, i32x4_gt(em, i32x4_splat(0x7bff)));
        v128_or(bits, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
    };
    (convert(u32x4_extend_low_u16x8(h)), convert(u32x4_extend_high_u16x8(h)))
}

#[inline(always)]
fn load4(x: &[f32], at: usize) -> v128 {
    assert!(at + 4 <= x.len());
    // SAFETY: the four values at `at` lie inside `x` (checked above).
    unsafe { v128_load(x.as_ptr().add(at) as *const v128) }
}

#[inline(always)]
fn store4(x: &mut [f32], at: usize, v: v128) {
    assert!(at + 4 <= x.len());
    // SAFETY: the four values at `at` lie inside `x` (checked above).
    unsafe { v128_store(x.as_mut_ptr().add(at) as *mut v128, v) }
}

fn sum4(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
}

/// `out = x` in f32.
pub fn widen_f16(x: &[f16], out: &mut [f32]) {
    let n = x.len().min(out.len());
    let mut i = 0;
    while i + 8 <= n {
        let (lo, hi) = widen8(x, i);
        store4(out, i, lo);
        store4(out, i + 4, hi);
        i += 8;
    }
    for j in i..n {
        out[j] = x[j].to_f32();
    }
}

/// `acc + x · y` in each lane: with relaxed SIMD one fused multiply-add
/// where the machine has one (on x64 with FMA3, as in Chromium and Node),
/// else a multiply then an add, as the scalar twins compute. Either way the
/// same on every call on one machine, so attention's sums that must agree
/// (a prompt's scores and one token's) still agree bit for bit.
#[inline(always)]
fn madd(x: v128, y: v128, acc: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(x, y, acc);
    #[cfg(not(target_feature = "relaxed-simd"))]
    return f32x4_add(acc, f32x4_mul(x, y));
}

/// Scores of one query against keys stored transposed, summed as the
/// scalar twin sums them (bit for bit without relaxed SIMD): four keys a
/// vector, eight vectors at a time while 32 keys remain, so that eight
/// independent sums hide the adds' latency; the last keys in a vector of
/// their own, so that every key's sum is the same sequence of [`madd`]s.
pub fn dot_keys(q: &[f32], kt: &[f32], stride: usize, scale: f32, out: &mut [f32]) {
    let keys = out.len();
    assert!(q.is_empty() || (q.len() - 1) * stride + keys <= kt.len());
    let mut j = 0;
    while j + 32 <= keys {
        dot_key_vectors::<8>(q, kt, stride, scale, j, out);
        j += 32;
    }
    while j + 4 <= keys {
        dot_key_vectors::<1>(q, kt, stride, scale, j, out);
        j += 4;
    }
    if j < keys {
        let mut acc = f32x4_splat(0.0);
        for (d, &x) in q.iter().enumerate() {
            let k = &kt[d * stride + j..][..keys - j];
            let at = |l: usize| k.get(l).copied().unwrap_or(0.0);
            acc = madd(f32x4_splat(x), f32x4(at(0), at(1), at(2), at(3)), acc);
        }
        let mut last = [0f32; 4];
        store4(&mut last, 0, f32x4_mul(acc, f32x4_splat(scale)));
        out[j..].copy_from_slice(&last[..keys - j]);
    }
}

/// [`dot_keys`] for keys `j..j + 4 * V`.
#[inline(always)]
fn dot_key_vectors<const V: usize>(q: &[f32], kt: &[f32], stride: usize, scale: f32, j: usize, out: &mut [f32]) {
    let mut acc = [f32x4_splat(0.0); V];
    for (d, &x) in q.iter().enumerate() {
        let (x, keys) = (f32x4_splat(x), &kt[d * stride + j..][..4 * V]);
        for (v, acc) in acc.iter_mut().enumerate() {
            *acc = madd(x, load4(keys, 4 * v), *acc);
        }
    }
    for (v, acc) in acc.into_iter().enumerate() {
        store4(out, j + 4 * v, f32x4_mul(acc, f32x4_splat(scale)));
    }
}

/// Rows of `n` values transposed for [`dot_keys`], as the scalar twin does,
/// four rows by four values a step.
pub fn transpose(rows: &[f32], n: usize, dst: &mut [f32], stride: usize) {
    let count = rows.len() / n;
    assert!(n == 0 || (n - 1) * stride + count <= dst.len());
    let (mut j, whole) = (0, n / 4 * 4);
    while j + 4 <= count {
        for d in (0..whole).step_by(4) {
            let [r0, r1, r2, r3] = core::array::from_fn(|r| load4(rows, (j + r) * n + d));
            let (lo01, lo23) = (i32x4_shuffle::<0, 4, 1, 5>(r0, r1), i32x4_shuffle::<0, 4, 1, 5>(r2, r3));
            let (hi01, hi23) = (i32x4_shuffle::<2, 6, 3, 7>(r0, r1), i32x4_shuffle::<2, 6, 3, 7>(r2, r3));
            store4(dst, d * stride + j, i64x2_shuffle::<0, 2>(lo01, lo23));
            store4(dst, (d + 1) * stride + j, i64x2_shuffle::<1, 3>(lo01, lo23));
            store4(dst, (d + 2) * stride + j, i64x2_shuffle::<0, 2>(hi01, hi23));
            store4(dst, (d + 3) * stride + j, i64x2_shuffle::<1, 3>(hi01, hi23));
        }
        for r in j..j + 4 {
            for d in whole..n {
                dst[d * stride + r] = rows[r * n + d];
            }
        }
        j += 4;
    }
    for r in j..count {
        for d in 0..n {
            dst[d * stride + r] = rows[r * n + d];
        }
    }
}

/// `y += a * x`, in the same order as the scalar twin.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let s = f32x4_splat(a);
    let mut i = 0;
    while i + 4 <= n {
        store4(y, i, madd(s, load4(x, i), load4(y, i)));
        i += 4;
    }
    for j in i..n {
        y[j] += a * x[j];
    }
}

/// `out += p[j] * rows[j]` for each row `j` of `out.len()` values in turn,
/// as `axpy` row after row would add (multiplied, then added, rows in
/// order) but with 32 columns of `out` held in registers across the rows
/// instead of loaded and stored for every row.
pub fn weighted_sum(p: &[f32], rows: &[f32], out: &mut [f32]) {
    let n = out.len();
    let rows = &rows[..p.len() * n];
    let mut c = 0;
    while c + 32 <= n {
        let mut acc: [v128; 8] = core::array::from_fn(|i| load4(out, c + 4 * i));
        for (j, &a) in p.iter().enumerate() {
            let (s, row) = (f32x4_splat(a), &rows[j * n + c..][..32]);
            for (i, acc) in acc.iter_mut().enumerate() {
                *acc = madd(s, load4(row, 4 * i), *acc);
            }
        }
        for (i, acc) in acc.into_iter().enumerate() {
            store4(out, c + 4 * i, acc);
        }
        c += 32;
    }
    while c + 4 <= n {
        let mut acc = load4(out, c);
        for (j, &a) in p.iter().enumerate() {
            acc = madd(f32x4_splat(a), load4(rows, j * n + c), acc);
        }
        store4(out, c, acc);
        c += 4;
    }
    for c in c..n {
        for (j, &a) in p.iter().enumerate() {
            out[c] += a * rows[j * n + c];
        }
    }
}

/// `x` rounded to f16 precision in place, as `f16::from_f32(x).to_f32()`
/// rounds it (to nearest, ties to even; past 65504 to infinity; NaN stays
/// NaN) but four lanes at a time instead of `half`'s scalar branches.
pub fn round_to_f16(x: &mut [f32]) {
    let n = x.len();
    let mut i = 0;
    while i + 4 <= n {
        store4(x, i, round_f16x4(load4(x, i)));
        i += 4;
    }
    for v in &mut x[i..] {
        *v = f32x4_extract_lane::<0>(round_f16x4(f32x4_splat(*v)));
    }
}

/// f16's normal values (2^-14 and up) by rounding the f32 bits at f16's
/// last mantissa bit, the carry running into the exponent; its subnormals
/// (multiples of 2^-24) by adding and subtracting 0.5, whose ulp is 2^-24.
#[inline(always)]
fn round_f16x4(v: v128) -> v128 {
    let abs = v128_and(v, u32x4_splat(0x7fff_ffff));
    let lsb = v128_and(u32x4_shr(abs, 13), u32x4_splat(1));
    let normal = v128_and(i32x4_add(abs, i32x4_add(lsb, u32x4_splat(0xfff))), u32x4_splat(!0x1fff));
    let normal = v128_bitselect(u32x4_splat(0x7f80_0000), normal, u32x4_ge(normal, u32x4_splat(0x4780_0000)));
    let subnormal = f32x4_sub(f32x4_add(abs, f32x4_splat(0.5)), f32x4_splat(0.5));
    let r = v128_bitselect(subnormal, normal, u32x4_lt(abs, u32x4_splat(0x3880_0000)));
    let r = v128_bitselect(abs, r, u32x4_gt(abs, u32x4_splat(0x7f80_0000)));
    v128_or(r, v128_xor(v, abs))
}

/// `e^x` in four lanes: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two
/// parts so that r is exact), e^r by a degree-7 polynomial (Taylor's: its
/// truncation error is below 2^-27 on that interval), times 2^n built in
/// the exponent bits. Inputs are clamped to [-87, 88], where 2^n is a
/// normal float: below, the result is e^-87 ≈ 1.6e-38 instead of 0 or a
/// subnormal.
#[inline(always)]
fn exp4(x: v128) -> v128 {
    let x = f32x4_max(f32x4_min(x, f32x4_splat(88.0)), f32x4_splat(-87.0));
    let n = f32x4_nearest(f32x4_mul(x, f32x4_splat(std::f32::consts::LOG2_E)));
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693_359_4)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(-2.121_944_4e-4)));
    let mut p = f32x4_splat(1.0 / 5040.0);
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let two_n = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(p, two_n)
}

/// In-place softmax: the maximum is exact, `exp` within its budget, the sum
/// in four lanes, and each value divided by it as in the scalar twin.
pub fn softmax(x: &mut [f32]) {
    let n = x.len();
    let mut m = f32x4_splat(f32::NEG_INFINITY);
    let mut i = 0;
    while i + 4 <= n {
        m = f32x4_max(m, load4(x, i));
        i += 4;
    }
    let mut max = f32x4_extract_lane::<0>(m)
        .max(f32x4_extract_lane::<1>(m))
        .max(f32x4_extract_lane::<2>(m))
        .max(f32x4_extract_lane::<3>(m));
    for &v in &x[i..] {
        max = max.max(v);
    }
    let (vmax, mut acc) = (f32x4_splat(max), f32x4_splat(0.0));
    let mut i = 0;
    while i + 4 <= n {
        let e = exp4(f32x4_sub(load4(x, i), vmax));
        store4(x, i, e);
        acc = f32x4_add(acc, e);
        i += 4;
    }
    let mut sum = sum4(acc);
    for v in &mut x[i..] {
        *v = f32x4_extract_lane::<0>(exp4(f32x4_splat(*v - max)));
        sum += *v;
    }
    let s = f32x4_splat(sum);
    let mut i = 0;
    while i + 4 <= n {
        store4(x, i, f32x4_div(load4(x, i), s));
        i += 4;
    }
    for v in &mut x[i..] {
        *v /= sum;
    }
}

/// `out = silu(gate) * up`, with `exp4`: x / (1 + e^-x) divides as the
/// scalar twin does, so only the exp's error separates them.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let n = gate.len().min(up.len()).min(out.len());
    let one = f32x4_splat(1.0);
    let mut i = 0;
    while i + 4 <= n {
        let g = load4(gate, i);
        let silu = f32x4_div(g, f32x4_add(one, exp4(f32x4_neg(g))));
        store4(out, i, f32x4_mul(silu, load4(up, i)));
        i += 4;
    }
    for j in i..n {
        out[j] = gate[j] / (1.0 + exp(-gate[j])) * up[j];
    }
}

/// For the kernel tests: `exp4` on one value.
#[doc(hidden)]
pub fn exp(x: f32) -> f32 {
    f32x4_extract_lane::<0>(exp4(f32x4_splat(x)))
}
