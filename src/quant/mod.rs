//! ggml's tensor element types and their block layouts.
//!
//! Weights stay in their quantized blocks; a matrix–vector product quantizes the
//! activations once (to Q8_0, Q8_1 or Q8_K, as llama.cpp does) and runs
//! integer dot products block by block. `scalar` holds the portable reference
//! kernels.

use core::ops::Range;

/// The element types a GGUF tensor may have, with ggml's numeric ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    Bf16,
    Tq1_0,
    Tq2_0,
    Mxfp4,
}

impl GgmlType {
    /// Maps ggml's numeric id; `None` for ids ggml never defined (or retired).
    pub fn from_id(id: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            16 => Iq2Xxs,
            17 => Iq2Xs,
            18 => Iq3Xxs,
            19 => Iq1S,
            20 => Iq4Nl,
            21 => Iq3S,
            22 => Iq2S,
            23 => Iq4Xs,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => Iq1M,
            30 => Bf16,
            34 => Tq1_0,
            35 => Tq2_0,
            39 => Mxfp4,
            _ => return None,
        })
    }

    /// ggml's name for the type, as users see it in model cards.
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            Iq2Xxs => "IQ2_XXS",
            Iq2Xs => "IQ2_XS",
            Iq3Xxs => "IQ3_XXS",
            Iq1S => "IQ1_S",
            Iq4Nl => "IQ4_NL",
            Iq3S => "IQ3_S",
            Iq2S => "IQ2_S",
            Iq4Xs => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            Iq1M => "IQ1_M",
            Bf16 => "BF16",
            Tq1_0 => "TQ1_0",
            Tq2_0 => "TQ2_0",
            Mxfp4 => "MXFP4",
        }
    }

    /// (elements per block, bytes per block), from ggml's type traits.
    pub fn block_layout(self) -> (usize, usize) {
        use GgmlType::*;
        match self {
            F32 | I32 => (1, 4),
            F16 | Bf16 | I16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 36),
            Q2K => (256, 84),
            Q3K => (256, 110),
            Q4K => (256, 144),
            Q5K => (256, 176),
            Q6K => (256, 210),
            Q8K => (256, 292),
            Iq2Xxs => (256, 66),
            Iq2Xs => (256, 74),
            Iq3Xxs => (256, 98),
            Iq1S => (256, 50),
            Iq4Nl => (32, 18),
            Iq3S => (256, 110),
            Iq2S => (256, 82),
            Iq4Xs => (256, 136),
            Iq1M => (256, 56),
            Tq1_0 => (256, 54),
            Tq2_0 => (256, 66),
            Mxfp4 => (32, 17),
        }
    }

    /// Bytes taken by `n` consecutive elements; `None` when `n` is not a whole
    /// number of blocks or the size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let (block, size) = self.block_layout();
        if n % block as u64 != 0 {
            return None;
        }
        (n / block as u64).checked_mul(size as u64)
    }

    /// Whether this crate can compute with weights of this type.
    pub fn is_supported(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | Bf16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K)
    }
}

pub mod packed;
/// The portable reference kernels; public so that the instruction-set
/// kernels can be checked against them (`tests/simd_kernels.rs`).
#[doc(hidden)]
pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[doc(hidden)]
pub mod simd128;
#[cfg(test)]
mod tests;

/// The hot-path kernels (dot products and activation quantizers): an
/// instruction-set file with the same function names takes this alias's
/// place under `cfg`; dequantization and the reference weight quantizers
/// always come from `scalar`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use scalar as kernels;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128 as kernels;

#[cold]
#[track_caller]
fn unsupported(op: &str, ty: GgmlType) -> ! {
    panic!("quant::{op}: type {} is not supported here", ty.name())
}

/// The activation format a weight type's dot product consumes: Q8_0 for the
/// symmetric 32-element block formats (Q4_0, Q5_0, Q8_0), Q8_1 (Q8_0 plus the
/// block's f16 `s = d·Σq`, for the min term) for Q4_1 and Q5_1, Q8_K for the
/// K-quants (Q4_K, Q5_K, Q6_K), F32 for F32/F16/BF16.
///
/// Panics for a type that is not [`GgmlType::is_supported`].
pub fn vec_dot_type(w: GgmlType) -> GgmlType {
    use GgmlType::*;
    match w {
        Q4_0 | Q5_0 | Q8_0 => Q8_0,
        Q4_1 | Q5_1 => Q8_1,
        Q4K | Q5K | Q6K => Q8K,
        F32 | F16 | Bf16 => F32,
        _ => unsupported("vec_dot_type", w),
    }
}

/// Quantize one row of f32 activations into `ty` (Q8_0, Q8_1, Q8_K, or F32 =
/// plain little-endian f32 bytes). `src.len()` is a multiple of the block
/// size; `dst.len() == ty.bytes_for(src.len())`.
///
/// Panics for any other `ty`.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(Some(dst.len() as u64), ty.bytes_for(src.len() as u64));
    match ty {
        GgmlType::Q8_0 => kernels::quantize_row_q8_0(src, dst),
        GgmlType::Q8_1 => kernels::quantize_row_q8_1(src, dst),
        GgmlType::Q8K => kernels::quantize_row_q8_k(src, dst),
        GgmlType::F32 => scalar::quantize_row_f32(src, dst),
        _ => unsupported("quantize_row", ty),
    }
}

/// Dequantize one row of `ty` (every supported type, plus the activation
/// formats Q8_1 and Q8_K) into f32;
/// `src.len() == ty.bytes_for(dst.len())`.
///
/// Panics for any other `ty`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    debug_assert_eq!(Some(src.len() as u64), ty.bytes_for(dst.len() as u64));
    use GgmlType::*;
    match ty {
        F32 => scalar::dequantize_row_f32(src, dst),
        F16 => scalar::dequantize_row_f16(src, dst),
        Bf16 => scalar::dequantize_row_bf16(src, dst),
        Q4_0 => scalar::dequantize_row_q4_0(src, dst),
        Q4_1 => scalar::dequantize_row_q4_1(src, dst),
        Q5_0 => scalar::dequantize_row_q5_0(src, dst),
        Q5_1 => scalar::dequantize_row_q5_1(src, dst),
        Q8_0 => scalar::dequantize_row_q8_0(src, dst),
        Q8_1 => scalar::dequantize_row_q8_1(src, dst),
        Q4K => scalar::dequantize_row_q4_k(src, dst),
        Q5K => scalar::dequantize_row_q5_k(src, dst),
        Q6K => scalar::dequantize_row_q6_k(src, dst),
        Q8K => scalar::dequantize_row_q8_k(src, dst),
        _ => unsupported("dequantize_row", ty),
    }
}

/// Dot product of an `n`-element weight row in `ty` with activations already
/// in `vec_dot_type(ty)`: `w.len() == ty.bytes_for(n)`,
/// `act.len() == vec_dot_type(ty).bytes_for(n)`.
///
/// Panics for a type that is not [`GgmlType::is_supported`].
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    use GgmlType::*;
    match ty {
        F32 => kernels::vec_dot_f32(n, w, act),
        F16 => kernels::vec_dot_f16(n, w, act),
        Bf16 => kernels::vec_dot_bf16(n, w, act),
        Q4_0 => kernels::vec_dot_q4_0_q8_0(n, w, act),
        Q4_1 => kernels::vec_dot_q4_1_q8_1(n, w, act),
        Q5_0 => kernels::vec_dot_q5_0_q8_0(n, w, act),
        Q5_1 => kernels::vec_dot_q5_1_q8_1(n, w, act),
        Q8_0 => kernels::vec_dot_q8_0_q8_0(n, w, act),
        Q4K => kernels::vec_dot_q4_k_q8_k(n, w, act),
        Q5K => kernels::vec_dot_q5_k_q8_k(n, w, act),
        Q6K => kernels::vec_dot_q6_k_q8_k(n, w, act),
        _ => unsupported("vec_dot", ty),
    }
}

/// [`vec_dot`] of four weight rows with one to four activation rows:
/// `out[t][k]` = `w[k]` · `acts[t]`. The SIMD kernels load each activation
/// block once for the four rows and unpack each weight block once for all
/// the activation rows.
///
/// Panics for a type that is not [`GgmlType::is_supported`].
pub fn vec_dot_4x(ty: GgmlType, n: usize, w: [&[u8]; 4], acts: &[&[u8]], out: &mut [[f32; 4]]) {
    assert!((1..=4).contains(&acts.len()) && out.len() >= acts.len());
    use GgmlType::*;
    match ty {
        F32 => kernels::vec_dot_f32_4x(n, w, acts, out),
        F16 => kernels::vec_dot_f16_4x(n, w, acts, out),
        Bf16 => kernels::vec_dot_bf16_4x(n, w, acts, out),
        Q4_0 => kernels::vec_dot_q4_0_q8_0_4x(n, w, acts, out),
        Q4_1 => kernels::vec_dot_q4_1_q8_1_4x(n, w, acts, out),
        Q5_0 => kernels::vec_dot_q5_0_q8_0_4x(n, w, acts, out),
        Q5_1 => kernels::vec_dot_q5_1_q8_1_4x(n, w, acts, out),
        Q8_0 => kernels::vec_dot_q8_0_q8_0_4x(n, w, acts, out),
        Q4K => kernels::vec_dot_q4_k_q8_k_4x(n, w, acts, out),
        Q5K => kernels::vec_dot_q5_k_q8_k_4x(n, w, acts, out),
        Q6K => kernels::vec_dot_q6_k_q8_k_4x(n, w, acts, out),
        _ => unsupported("vec_dot_4x", ty),
    }
}

/// Groups of four packed rows ([`packed`]) against activation rows:
/// `out[g * acts.len() + t][r]` = row `r` of `groups[g]` · `acts[t]`, for one
/// or two groups and one to four activation rows, or four groups and one.
///
/// Panics for a type that is not [`packed::is_packed`].
pub fn packed_dot(ty: GgmlType, n: usize, groups: &[&[u8]], acts: &[&[u8]], out: &mut [[f32; 4]]) {
    debug_assert!(matches!((groups.len(), acts.len()), (1 | 2, 1..=4) | (4, 1)));
    debug_assert!(out.len() >= groups.len() * acts.len());
    use GgmlType::*;
    match ty {
        Q4_0 => kernels::packed_q4_0_q8_0(n, groups, acts, out),
        Q5_0 => kernels::packed_q5_0_q8_0(n, groups, acts, out),
        Q4K => kernels::packed_q4_k_q8_k(n, groups, acts, out),
        Q6K => kernels::packed_q6_k_q8_k(n, groups, acts, out),
        _ => unsupported("packed_dot", ty),
    }
}

/// Tokens whose activations a packed matrix product keeps at hand while it
/// goes through every group of rows: 64 rows of Q8_K activations of
/// TinyLlama's feed-forward (5632 wide) are 410 KB, well inside a 2 MB L2,
/// and a group of four rows (at most 4 × 6 KB here) stays in L1 for all 64.
const TOKEN_BLOCK: usize = 64;

/// Groups of rows a packed kernel takes at once for a block of tokens: two of
/// Q4_K or Q4_0 with relaxed SIMD, whose i16 summation then loads each
/// activation broadcast once for both (Q4_K 17% faster in Node 22 and 4% in
/// Chromium on a Xeon with AVX-VNNI; Q4_0 21% and 11%); one elsewhere, where
/// two groups' sums would not stay in registers (Q5_0 and Q6_K spill).
fn groups_a_call(ty: GgmlType) -> usize {
    if matches!(ty, GgmlType::Q4K | GgmlType::Q4_0)
        && cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"))
    {
        2
    } else {
        1
    }
}

/// Bytes of an activation row of `n` elements as [`matmul`] takes it for
/// `ty`: a row of `vec_dot_type(ty)`, followed by its blocks' sums where
/// `ty`'s packed kernels take them ([`packed::takes_block_sums`]).
pub fn act_row_bytes(ty: GgmlType, n: usize) -> usize {
    packed::kernel_row_bytes(ty, vec_dot_type(ty).bytes_for(n as u64).expect("whole blocks") as usize)
}

/// `src` as [`matmul`] takes an activation row for `ty`
/// ([`act_row_bytes`]): quantized once for every group of rows and every
/// thread, the blocks' sums with it.
pub fn quantize_act_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    let a_row = vec_dot_type(ty).bytes_for(src.len() as u64).expect("whole blocks") as usize;
    let (row, sums) = dst.split_at_mut(a_row);
    quantize_row(vec_dot_type(ty), src, row);
    if packed::takes_block_sums(ty) {
        packed::block_sums(row, sums);
    }
}

/// Matrix product with quantized activations: `w` holds a whole matrix of
/// rows of `n` elements in `ty` ([`packed`] where that type is), `act` whole
/// activation rows as [`act_row_bytes`] lays them out
/// ([`quantize_act_row`]'s), and `out[t * stride + r - rows.start]`
/// receives weight row `r` · activation row `t`, for each `r` in `rows`.
///
/// Packed matrices go a group of four rows at a time, each group read once
/// for a block of tokens. One token (decode) takes four groups a quarter of
/// the range apart, as the file-layout product takes four rows: four distant
/// streams of memory instead of one. Decode reads every weight once from DRAM
/// and wasm has no prefetch instruction; in Chromium on a 2-core EPYC one
/// sequential stream read at 2.4 GB/s and four distant ones at 6.5 GB/s, and
/// the 49152-row output matrix's product ran 2.5× faster this way.
///
/// Panics for a type that is not [`GgmlType::is_supported`].
pub fn matmul(ty: GgmlType, n: usize, w: &[u8], rows: Range<usize>, act: &[u8], out: &mut [f32], stride: usize) {
    let w_row = ty.bytes_for(n as u64).expect("whole blocks") as usize;
    let k_row = act_row_bytes(ty, n);
    let tokens = act.len() / k_row;
    debug_assert!(w.len() % w_row == 0 && act.len() % k_row == 0 && rows.end * w_row <= w.len());
    assert!(tokens == 0 || out.len() >= (tokens - 1) * stride + rows.len());
    if !packed::is_packed(ty) {
        return matmul_rows(ty, n, &w[rows.start * w_row..rows.end * w_row], act, out, stride);
    }
    let packed_rows = w.len() / w_row / 4 * 4;
    let (g0, g1) = (rows.start / 4, rows.end.min(packed_rows).div_ceil(4));
    let group = |g: usize| &w[4 * g * w_row..][..4 * w_row];
    let mut tile = [[0f32; 4]; 8];
    if tokens == 1 {
        let quarter = g1.saturating_sub(g0) / 4;
        for q in g0..g0 + quarter {
            let four = [q, q + quarter, q + 2 * quarter, q + 3 * quarter];
            packed_dot(ty, n, &four.map(group), &[act], &mut tile);
            for (&g, &v) in four.iter().zip(&tile) {
                put(out, stride, &rows, g, 0, v);
            }
        }
        for g in g0 + 4 * quarter..g1 {
            packed_dot(ty, n, &[group(g)], &[act], &mut tile);
            put(out, stride, &rows, g, 0, tile[0]);
        }
    } else {
        for first in (0..tokens).step_by(TOKEN_BLOCK) {
            let block = &act[first * k_row..(first + TOKEN_BLOCK).min(tokens) * k_row];
            let mut g = g0;
            while g < g1 {
                let k = groups_a_call(ty).min(g1 - g);
                let groups = [group(g), group(g + k - 1)];
                for (c, four) in block.chunks(4 * k_row).enumerate() {
                    let acts = token_rows(four, k_row);
                    let acts = &acts[..four.len() / k_row];
                    packed_dot(ty, n, &groups[..k], acts, &mut tile);
                    for (i, &v) in tile[..k * acts.len()].iter().enumerate() {
                        put(out, stride, &rows, g + i / acts.len(), first + 4 * c + i % acts.len(), v);
                    }
                }
                g += k;
            }
        }
    }
    // The rows past the last whole group, in the file's layout.
    let tail = rows.start.max(packed_rows)..rows.end;
    if !tail.is_empty() {
        let at = tail.start - rows.start;
        matmul_rows(ty, n, &w[tail.start * w_row..tail.end * w_row], act, &mut out[at..], stride);
    }
}

/// Writes the products of group `g` with token `t` that [`matmul`] wants:
/// all four rows but at the ends of a range that does not start or end on
/// a group.
#[inline(always)]
fn put(out: &mut [f32], stride: usize, rows: &Range<usize>, g: usize, t: usize, v: [f32; 4]) {
    let row = &mut out[t * stride..];
    if 4 * g >= rows.start && 4 * g + 4 <= rows.end {
        row[4 * g - rows.start..][..4].copy_from_slice(&v);
        return;
    }
    for (r, x) in (4 * g..4 * g + 4).zip(v) {
        if rows.contains(&r) {
            row[r - rows.start] = x;
        }
    }
}

/// Up to four activation rows of `k_row` bytes from `four`, on the stack:
/// this runs on several threads at once, and the wasm allocator takes a lock.
fn token_rows(four: &[u8], k_row: usize) -> [&[u8]; 4] {
    let mut rows: [&[u8]; 4] = [&[]; 4];
    for (slot, a) in rows.iter_mut().zip(four.chunks_exact(k_row)) {
        *slot = a;
    }
    rows
}

/// [`matmul`] of rows in the file's layout (`w` holds exactly the rows
/// wanted), four rows a quarter of the matrix apart and four tokens at a
/// time through [`vec_dot_4x`]; `act` as [`matmul`] takes it, of which
/// the kernels read each row's `vec_dot_type(ty)` blocks.
fn matmul_rows(ty: GgmlType, n: usize, w: &[u8], act: &[u8], out: &mut [f32], stride: usize) {
    let w_row = ty.bytes_for(n as u64).expect("whole blocks") as usize;
    let a_row = vec_dot_type(ty).bytes_for(n as u64).expect("whole blocks") as usize;
    let k_row = act_row_bytes(ty, n);
    let rows = w.len() / w_row;
    let mut tile = [[0f32; 4]; 4];
    let quarter = rows / 4;
    for q in 0..quarter {
        let wq = core::array::from_fn(|k| &w[(q + k * quarter) * w_row..][..w_row]);
        for (c, four) in act.chunks(4 * k_row).enumerate() {
            let chunk = token_rows(four, k_row).map(|a| &a[..a.len().min(a_row)]);
            let chunk = &chunk[..four.len() / k_row];
            vec_dot_4x(ty, n, wq, chunk, &mut tile);
            for (t, v) in tile[..chunk.len()].iter().enumerate() {
                for (k, &x) in v.iter().enumerate() {
                    out[(4 * c + t) * stride + q + k * quarter] = x;
                }
            }
        }
    }
    for r in rows / 4 * 4..rows {
        for (t, a) in act.chunks_exact(k_row).enumerate() {
            out[t * stride + r] = vec_dot(ty, n, &w[r * w_row..][..w_row], &a[..a_row]);
        }
    }
}

/// Reference quantizer for weights of any supported type (for tests and
/// tiny generated models): ggml's `quantize_row_*_ref`, byte for byte, so the
/// files it writes match llama-quantize's without an importance matrix (the
/// K-quants included, with their scale searches).
///
/// Panics for a type that is not [`GgmlType::is_supported`].
pub fn quantize_row_ref(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(Some(dst.len() as u64), ty.bytes_for(src.len() as u64));
    use GgmlType::*;
    match ty {
        F32 => scalar::quantize_row_f32(src, dst),
        F16 => scalar::quantize_row_f16(src, dst),
        Bf16 => scalar::quantize_row_bf16(src, dst),
        Q4_0 => scalar::quantize_row_q4_0_ref(src, dst),
        Q4_1 => scalar::quantize_row_q4_1_ref(src, dst),
        Q5_0 => scalar::quantize_row_q5_0_ref(src, dst),
        Q5_1 => scalar::quantize_row_q5_1_ref(src, dst),
        Q8_0 => scalar::quantize_row_q8_0_ref(src, dst),
        Q4K => scalar::quantize_row_q4_k_ref(src, dst),
        Q5K => scalar::quantize_row_q5_k_ref(src, dst),
        Q6K => scalar::quantize_row_q6_k_ref(src, dst),
        _ => unsupported("quantize_row_ref", ty),
    }
}
