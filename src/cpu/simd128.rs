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

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [f32x4_splat(0.0); 2];
    let mut i = 0;
    while i + 8 <= n {
        acc[0] = f32x4_add(acc[0], f32x4_mul(load4(a, i), load4(b, i)));
        acc[1] = f32x4_add(acc[1], f32x4_mul(load4(a, i + 4), load4(b, i + 4)));
        i += 8;
    }
    let mut sum = sum4(f32x4_add(acc[0], acc[1]));
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}

/// Four queries against one key, loaded once for the four: each result is
/// `dot(q[r], k)` bit for bit (the same two chains of four lanes, multiplied
/// then added, the same reduction and tail), so that a prompt's scores equal
/// one token's.
pub fn dot4(q: [&[f32]; 4], k: &[f32]) -> [f32; 4] {
    let n = q.iter().fold(k.len(), |n, q| n.min(q.len()));
    let (q, k) = (q.map(|q| &q[..n]), &k[..n]);
    let mut acc = [[f32x4_splat(0.0); 2]; 4];
    let mut i = 0;
    while i + 8 <= n {
        let (k0, k1) = (load4(k, i), load4(k, i + 4));
        for (acc, q) in acc.iter_mut().zip(q) {
            acc[0] = f32x4_add(acc[0], f32x4_mul(load4(q, i), k0));
            acc[1] = f32x4_add(acc[1], f32x4_mul(load4(q, i + 4), k1));
        }
        i += 8;
    }
    core::array::from_fn(|r| {
        let mut sum = sum4(f32x4_add(acc[r][0], acc[r][1]));
        for j in i..n {
            sum += q[r][j] * k[j];
        }
        sum
    })
}

/// `y += a * x`, in the same order as the scalar twin.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let s = f32x4_splat(a);
    let mut i = 0;
    while i + 4 <= n {
        store4(y, i, f32x4_add(load4(y, i), f32x4_mul(s, load4(x, i))));
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
                *acc = f32x4_add(*acc, f32x4_mul(s, load4(row, 4 * i)));
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
            acc = f32x4_add(acc, f32x4_mul(f32x4_splat(a), load4(rows, j * n + c)));
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
