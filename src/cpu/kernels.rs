//! Portable float kernels of the CPU backend. `simd128.rs` provides the
//! attention loops (`widen_f16`, `dot_keys`, `transpose`, `axpy`,
//! `weighted_sum`, `softmax`, `round_to_f16`) and `silu_mul` for wasm SIMD builds.

use half::f16;
use std::sync::OnceLock;

/// The sum of squares is kept in f64, as ggml does: residual streams with
/// outliers in the hundreds lose digits in f32 that later layers amplify.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// LayerNorm times `w` plus `b`, as ggml's `ggml_norm`, `ggml_mul`,
/// `ggml_add`: the mean and variance of `x` in f64, as `rms_norm` keeps its sum.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f64;
    let mean = (x.iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
    let var = x.iter().map(|&v| ((v - mean) as f64).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var as f32 + eps).sqrt();
    for (((o, &v), &g), &c) in out.iter_mut().zip(x).zip(w).zip(b) {
        *o = (v - mean) * scale * g + c;
    }
}

/// Rotates one head by the angles of [`crate::model::Rope::angles`].
pub fn rope(head: &mut [f32], angles: &[(f32, f32)], neox: bool) {
    let half = angles.len();
    for (i, &(cos, sin)) in angles.iter().enumerate() {
        let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos - x1 * sin;
        head[b] = x0 * sin + x1 * cos;
    }
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `out = silu(gate) * up`, the gated feed-forward's activation.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((d, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *d = silu(g) * u;
    }
}

/// GELU, tanh approximation, in f32 as ggml's `ggml_gelu_f32`.
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// GELU as ggml's CPU computes it (`GGML_GELU_FP16`): a table of GELU
/// rounded to f16, looked up by `x` rounded to f16; `x` at or past ±10 is
/// taken as 0 or itself. The table ([`gelu_table`]) replaces a `tanh` an
/// element: 6% of Gemma 3's prompt time went to computing it.
pub fn gelu_f16_table(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        gelu_table()[f16::from_f32(x).to_bits() as usize]
    }
}

/// GELU rounded to f16 for each of the 65536 f16s, built on first call.
/// Call it before splitting work that reads it over threads: a `OnceLock`
/// that two threads first touch at once makes one of them wait, and a
/// page's main thread cannot wait (`Atomics.wait` traps there).
pub fn gelu_table() -> &'static [f32] {
    static TABLE: OnceLock<Box<[f32]>> = OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(|h| f16::from_f32(gelu(f16::from_bits(h).to_f32())).to_f32()).collect())
}

/// `out = gelu(x)` as ggml's `ggml_vec_gelu_f32` ([`gelu_f16_table`]).
pub fn gelu_row(x: &[f32], out: &mut [f32]) {
    for (d, &v) in out.iter_mut().zip(x) {
        *d = gelu_f16_table(v);
    }
}

/// `out = gelu(gate) * up` as ggml's `ggml_vec_geglu_f32` ([`gelu_f16_table`]).
pub fn gelu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((d, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *d = gelu_f16_table(g) * u;
    }
}

/// `out = x` in f32: an f16 cache row widened once for every query head
/// that reads it.
pub fn widen_f16(x: &[f16], out: &mut [f32]) {
    for (d, s) in out.iter_mut().zip(x) {
        *d = s.to_f32();
    }
}

/// `x` rounded to f16 precision in place: attention weights as they meet
/// the f16 cache.
pub fn round_to_f16(x: &mut [f32]) {
    for v in x {
        *v = f16::from_f32(*v).to_f32();
    }
}

/// Scores of one query against keys stored transposed (lanes are keys):
/// `out[j] = scale · Σ_d q[d] · kt[d * stride + j]`, each sum in order of
/// `d` from zero. A key's score is then the same bits wherever it lies in a
/// run and however long the run, so a prompt's scores equal one token's.
pub fn dot_keys(q: &[f32], kt: &[f32], stride: usize, scale: f32, out: &mut [f32]) {
    out.fill(0.0);
    for (d, &x) in q.iter().enumerate() {
        for (o, &k) in out.iter_mut().zip(&kt[d * stride..]) {
            *o += x * k;
        }
    }
    out.iter_mut().for_each(|o| *o *= scale);
}

/// `dst[d * stride + j] = rows[j * n + d]`: rows of `n` values transposed
/// for [`dot_keys`].
pub fn transpose(rows: &[f32], n: usize, dst: &mut [f32], stride: usize) {
    for (j, row) in rows.chunks_exact(n).enumerate() {
        for (d, &x) in row.iter().enumerate() {
            dst[d * stride + j] = x;
        }
    }
}

/// `y += a * x`.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (d, s) in y.iter_mut().zip(x) {
        *d += a * s;
    }
}

/// `out += p[j] * rows[j]` for each row `j` of `out.len()` values in turn:
/// one `axpy` a row, so the same sums in the same order.
pub fn weighted_sum(p: &[f32], rows: &[f32], out: &mut [f32]) {
    for (&a, row) in p.iter().zip(rows.chunks_exact(out.len())) {
        axpy(a, row, out);
    }
}
