//! wasm SIMD128 versions of the attention inner loops of `kernels`: the f16
//! cache is widened four values at a time and summed in four f32 lanes, so
//! results differ from `kernels` by float rounding only (the conversion
//! itself is exact for every non-NaN f16).

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

pub fn dot_f32_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [f32x4_splat(0.0); 2];
    let mut i = 0;
    while i + 8 <= n {
        let (b0, b1) = widen8(b, i);
        acc[0] = f32x4_add(acc[0], f32x4_mul(load4(a, i), b0));
        acc[1] = f32x4_add(acc[1], f32x4_mul(load4(a, i + 4), b1));
        i += 8;
    }
    let v = f32x4_add(acc[0], acc[1]);
    let mut sum = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v)
        + f32x4_extract_lane::<3>(v);
    for j in i..n {
        sum += a[j] * b[j].to_f32();
    }
    sum
}

/// `y += a * x`.
pub fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let s = f32x4_splat(a);
    let mut i = 0;
    while i + 8 <= n {
        let (x0, x1) = widen8(x, i);
        let (y0, y1) = (load4(y, i), load4(y, i + 4));
        let (r0, r1) = (f32x4_add(y0, f32x4_mul(s, x0)), f32x4_add(y1, f32x4_mul(s, x1)));
        // SAFETY: `load4` checked that the eight values at `i` lie inside `y`.
        unsafe {
            v128_store(y.as_mut_ptr().add(i) as *mut v128, r0);
            v128_store(y.as_mut_ptr().add(i + 4) as *mut v128, r1);
        }
        i += 8;
    }
    for j in i..n {
        y[j] += a * x[j].to_f32();
    }
}
