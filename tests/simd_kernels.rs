//! Every wasm SIMD kernel against its scalar twin (`quant::scalar`), on random
//! blocks and on extreme ones (codes at their limits, the largest and
//! subnormal f16 scales, ±127 activations), run by wasm-bindgen-test in Node
//! and, with `WASM_BINDGEN_USE_BROWSER=1`, in headless Chromium; the same
//! file is built once with `+simd128` and once with `+relaxed-simd`.
//!
//! Budgets: the activation quantizers and every dot product, single-row
//! and tiled (four weight rows against one to four activation rows), must be
//! bit-exact: integer block sums are exact and meet their scales in the same
//! float operations as in `scalar`. The attention loops' budgets are stated
//! at their test.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use half::f16;
use wasm_bindgen_test::wasm_bindgen_test;
use webslm::quant::{scalar, simd128, GgmlType};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Scales worth testing: ordinary, the largest f16, subnormal, zero, negative.
const SCALES: [f32; 7] = [0.013, 0.5, 65504.0, 5.96e-8, 6.1e-5, 0.0, -0.27];

fn scale(rng: &mut Rng) -> [u8; 2] {
    let s = if rng.below(3) == 0 { SCALES[rng.below(SCALES.len() as u64) as usize] } else { rng.f32() * 0.1 };
    f16::from_f32(s).to_le_bytes()
}

/// Byte offsets of each f16 scale field in a block of `ty`.
fn scale_fields(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q6K => &[208],
        _ => unreachable!(),
    }
}

/// Random blocks of `ty` with sane f16 scales; `fill` chooses the code bytes
/// (random, all zero bits or all one bits: the codes' limits).
fn weight_row(ty: GgmlType, n: usize, rng: &mut Rng, fill: u8) -> Vec<u8> {
    let (block, size) = ty.block_layout();
    let mut row = match fill {
        0 => rng.bytes(n / block * size),
        1 => vec![0u8; n / block * size],
        _ => vec![0xffu8; n / block * size],
    };
    for b in row.chunks_exact_mut(size) {
        for &at in scale_fields(ty) {
            b[at..at + 2].copy_from_slice(&scale(rng));
        }
        if ty == GgmlType::Q6K && fill == 0 {
            // Q6_K's sub-block scales are signed bytes: make some extreme.
            b[192] = 0x80;
            b[193] = 0x7f;
        }
    }
    row
}

/// Activations quantized by the scalar quantizer from random, ±max, one-hot
/// and constant rows (so every activation format is valid, with Σq
/// consistent; a constant row gives every product of a block one sign, the
/// largest sums a lane can hold).
fn act_row(act_ty: GgmlType, n: usize, rng: &mut Rng, kind: u64) -> Vec<u8> {
    let x: Vec<f32> = match kind {
        0 => (0..n).map(|_| rng.f32() * 3.0).collect(),
        1 => (0..n).map(|_| if rng.below(2) == 0 { 1e4 } else { -1e4 }).collect(),
        3 => vec![1e4; n],
        _ => (0..n).map(|i| if i % 37 == 0 { 1.0 } else { 1e-3 * rng.f32() }).collect(),
    };
    let mut q = vec![0u8; act_ty.bytes_for(n as u64).unwrap() as usize];
    match act_ty {
        GgmlType::Q8_0 => scalar::quantize_row_q8_0(&x, &mut q),
        GgmlType::Q8_1 => scalar::quantize_row_q8_1(&x, &mut q),
        _ => scalar::quantize_row_q8_k(&x, &mut q),
    }
    q
}

type Dot = fn(usize, &[u8], &[u8]) -> f32;
type Tile = fn(usize, [&[u8]; 4], &[&[u8]], &mut [[f32; 4]]);

struct Kernel {
    ty: GgmlType,
    act: GgmlType,
    scalar: Dot,
    simd: Dot,
    tile: Tile,
}

fn kernels() -> Vec<Kernel> {
    use GgmlType::*;
    vec![
        Kernel {
            ty: Q4_0,
            act: Q8_0,
            scalar: scalar::vec_dot_q4_0_q8_0,
            simd: simd128::vec_dot_q4_0_q8_0,
            tile: simd128::vec_dot_q4_0_q8_0_4x,
        },
        Kernel {
            ty: Q4_1,
            act: Q8_1,
            scalar: scalar::vec_dot_q4_1_q8_1,
            simd: simd128::vec_dot_q4_1_q8_1,
            tile: simd128::vec_dot_q4_1_q8_1_4x,
        },
        Kernel {
            ty: Q5_0,
            act: Q8_0,
            scalar: scalar::vec_dot_q5_0_q8_0,
            simd: simd128::vec_dot_q5_0_q8_0,
            tile: simd128::vec_dot_q5_0_q8_0_4x,
        },
        Kernel {
            ty: Q5_1,
            act: Q8_1,
            scalar: scalar::vec_dot_q5_1_q8_1,
            simd: simd128::vec_dot_q5_1_q8_1,
            tile: simd128::vec_dot_q5_1_q8_1_4x,
        },
        Kernel {
            ty: Q8_0,
            act: Q8_0,
            scalar: scalar::vec_dot_q8_0_q8_0,
            simd: simd128::vec_dot_q8_0_q8_0,
            tile: simd128::vec_dot_q8_0_q8_0_4x,
        },
        Kernel {
            ty: Q4K,
            act: Q8K,
            scalar: scalar::vec_dot_q4_k_q8_k,
            simd: simd128::vec_dot_q4_k_q8_k,
            tile: simd128::vec_dot_q4_k_q8_k_4x,
        },
        Kernel {
            ty: Q5K,
            act: Q8K,
            scalar: scalar::vec_dot_q5_k_q8_k,
            simd: simd128::vec_dot_q5_k_q8_k,
            tile: simd128::vec_dot_q5_k_q8_k_4x,
        },
        Kernel {
            ty: Q6K,
            act: Q8K,
            scalar: scalar::vec_dot_q6_k_q8_k,
            simd: simd128::vec_dot_q6_k_q8_k,
            tile: simd128::vec_dot_q6_k_q8_k_4x,
        },
    ]
}

fn check(k: &Kernel, n: usize, w: &[u8], a: &[u8], what: &str) {
    let (want, got) = ((k.scalar)(n, w, a), (k.simd)(n, w, a));
    // NaN payloads may differ: any NaN matches any NaN.
    assert!(
        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
        "{} {what}: simd {got} vs scalar {want}",
        k.ty.name()
    );
}

#[wasm_bindgen_test]
fn dot_products_match_scalar_on_random_and_extreme_blocks() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for k in kernels() {
        for n in [256, 512, 2048] {
            for fill in 0..3u8 {
                for kind in 0..3 {
                    let w = weight_row(k.ty, n, &mut rng, fill);
                    let a = act_row(k.act, n, &mut rng, kind);
                    check(&k, n, &w, &a, &format!("n={n} fill={fill} act={kind}"));
                }
            }
        }
    }
}

#[wasm_bindgen_test]
fn tiles_equal_single_row_products() {
    let mut rng = Rng(77);
    for k in kernels() {
        let n = 512;
        let w: Vec<Vec<u8>> = (0..4).map(|f| weight_row(k.ty, n, &mut rng, if f == 3 { 2 } else { 0 })).collect();
        let acts: Vec<Vec<u8>> = (0..4).map(|i| act_row(k.act, n, &mut rng, i % 3)).collect();
        let acts: Vec<&[u8]> = acts.iter().map(|a| &a[..]).collect();
        for tokens in 1..=4 {
            let mut out = [[f32::NAN; 4]; 4];
            (k.tile)(n, core::array::from_fn(|r| &w[r][..]), &acts[..tokens], &mut out);
            for (t, a) in acts[..tokens].iter().enumerate() {
                for r in 0..4 {
                    let want = (k.scalar)(n, &w[r], a);
                    let got = out[t][r];
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "{} {tokens} tokens, row {r} token {t}: {got} vs {want}",
                        k.ty.name()
                    );
                }
            }
        }
    }
}

type Packed = fn(usize, &[&[u8]], &[&[u8]], &mut [[f32; 4]]);
type PackedDyn<'a> = dyn Fn(usize, &[&[u8]], &[&[u8]], &mut [[f32; 4]]) + 'a;

/// The packed kernels (four interleaved rows, `quant::packed`) against the
/// file-layout product of each row: one or two groups with one to four
/// tokens, four groups with one, on random rows and rows of extreme codes. The relaxed
/// build's kernels are checked with each summation and as dispatched.
#[wasm_bindgen_test]
fn packed_kernels_equal_row_products() {
    use GgmlType::*;
    let kinds: [(GgmlType, GgmlType, Dot, Packed); 4] = [
        (Q4_0, Q8_0, scalar::vec_dot_q4_0_q8_0, simd128::packed_q4_0_q8_0),
        (Q5_0, Q8_0, scalar::vec_dot_q5_0_q8_0, simd128::packed_q5_0_q8_0),
        (Q4K, Q8K, scalar::vec_dot_q4_k_q8_k, simd128::packed_q4_k_q8_k),
        (Q6K, Q8K, scalar::vec_dot_q6_k_q8_k, simd128::packed_q6_k_q8_k),
    ];
    for (ty, act_ty, dot, kernel) in kinds {
        check_packed(ty, act_ty, dot, &kernel, "dispatched");
    }
    #[cfg(target_feature = "relaxed-simd")]
    {
        use simd128::Summation;
        type Summed = fn(Summation, usize, &[&[u8]], &[&[u8]], &mut [[f32; 4]]);
        let kinds: [(GgmlType, GgmlType, Dot, Summed); 4] = [
            (Q4_0, Q8_0, scalar::vec_dot_q4_0_q8_0, simd128::packed_q4_0_q8_0_summed),
            (Q5_0, Q8_0, scalar::vec_dot_q5_0_q8_0, simd128::packed_q5_0_q8_0_summed),
            (Q4K, Q8K, scalar::vec_dot_q4_k_q8_k, simd128::packed_q4_k_q8_k_summed),
            (Q6K, Q8K, scalar::vec_dot_q6_k_q8_k, simd128::packed_q6_k_q8_k_summed),
        ];
        for (ty, act_ty, dot, summed) in kinds {
            for s in [Summation::I32, Summation::I16] {
                check_packed(ty, act_ty, dot, &|n, g, a, o| summed(s, n, g, a, o), &format!("{s:?}"));
            }
        }
    }
}

/// `quant::matmul` of packed matrices (the groups it hands the kernels at
/// once, an odd number of groups, rows past the last group, token blocks)
/// against the file-layout product of each row.
#[wasm_bindgen_test]
fn packed_matmuls_equal_row_products() {
    use webslm::quant::{self, packed};
    use GgmlType::*;
    let mut rng = Rng(5);
    let (n, rows) = (512, 23);
    for (ty, act_ty, dot) in [
        (Q4_0, Q8_0, scalar::vec_dot_q4_0_q8_0 as Dot),
        (Q5_0, Q8_0, scalar::vec_dot_q5_0_q8_0),
        (Q4K, Q8K, scalar::vec_dot_q4_k_q8_k),
        (Q6K, Q8K, scalar::vec_dot_q6_k_q8_k),
    ] {
        let file: Vec<u8> = (0..rows).flat_map(|r| weight_row(ty, n, &mut rng, [0, 0, 1, 2][r % 4])).collect();
        let w_row = file.len() / rows;
        let mut data = file.clone();
        let mut scratch = Vec::new();
        for group in data.chunks_exact_mut(4 * w_row).take(rows / 4) {
            packed::pack_group(ty, group, &mut scratch);
        }
        let acts: Vec<Vec<u8>> = (0..70).map(|i| act_row(act_ty, n, &mut rng, i % 4)).collect();
        for tokens in [1, 6, 70] {
            // The rows as `quant::matmul` takes them, with their blocks' sums where the type needs them.
            let mut act = acts[..tokens].concat();
            if packed::takes_block_sums(ty) {
                packed::with_block_sums(&acts[..tokens].concat(), acts[0].len(), &mut act);
            }
            assert_eq!(act.len(), tokens * quant::act_row_bytes(ty, n));
            for range in [0..rows, 4..23, 1..13, 21..23] {
                let mut out = vec![f32::NAN; tokens * range.len()];
                quant::matmul(ty, n, &data, range.clone(), &act, &mut out, range.len());
                for (t, a) in acts[..tokens].iter().enumerate() {
                    for r in range.clone() {
                        let want = dot(n, &file[r * w_row..][..w_row], a);
                        let got = out[t * range.len() + r - range.start];
                        assert!(
                            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                            "{} rows {range:?}, token {t} of {tokens}, row {r}: {got} vs {want}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}

fn check_packed(ty: GgmlType, act_ty: GgmlType, dot: Dot, kernel: &PackedDyn, how: &str) {
    use webslm::quant::packed;
    let mut rng = Rng(91);
    let n = 512;
    let rows: Vec<Vec<u8>> = (0..16).map(|r| weight_row(ty, n, &mut rng, [0, 0, 1, 2][r % 4])).collect();
    let mut scratch = Vec::new();
    let groups: Vec<Vec<u8>> = rows
        .chunks(4)
        .map(|four| {
            let mut g = four.concat();
            packed::pack_group(ty, &mut g, &mut scratch);
            g
        })
        .collect();
    let acts: Vec<Vec<u8>> = (0..4).map(|i| act_row(act_ty, n, &mut rng, [0, 1, 2, 3][i])).collect();
    // The rows as the kernels take them, with their blocks' sums where the type needs them.
    let kernel_acts: Vec<Vec<u8>> = acts
        .iter()
        .map(|a| {
            let mut k = a.clone();
            if packed::takes_block_sums(ty) {
                packed::with_block_sums(a, a.len(), &mut k);
            }
            k
        })
        .collect();
    let same = |got: f32, want: f32| got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
    for (g, group) in groups.iter().enumerate() {
        for tokens in 1..=4 {
            let k: Vec<&[u8]> = kernel_acts[..tokens].iter().map(|a| &a[..]).collect();
            let mut out = [[f32::NAN; 4]; 4];
            kernel(n, &[group], &k, &mut out);
            for (t, a) in acts[..tokens].iter().enumerate() {
                for r in 0..4 {
                    let want = dot(n, &rows[4 * g + r], a);
                    assert!(
                        same(out[t][r], want),
                        "{} {how}: group {g}, {tokens} tokens, row {r} token {t}: {} vs {want}",
                        ty.name(),
                        out[t][r]
                    );
                }
            }
        }
    }
    for g in [0, 2] {
        for tokens in 1..=4 {
            let k: Vec<&[u8]> = kernel_acts[..tokens].iter().map(|a| &a[..]).collect();
            let mut out = [[f32::NAN; 4]; 8];
            kernel(n, &[&groups[g], &groups[g + 1]], &k, &mut out);
            for (i, o) in out[..2 * tokens].iter().enumerate() {
                let (g, t) = (g + i / tokens, i % tokens);
                for r in 0..4 {
                    let want = dot(n, &rows[4 * g + r], &acts[t]);
                    assert!(
                        same(o[r], want),
                        "{} {how}: two groups, group {g}, {tokens} tokens, row {r} token {t}: {} vs {want}",
                        ty.name(),
                        o[r]
                    );
                }
            }
        }
    }
    let all: Vec<&[u8]> = groups.iter().map(|g| &g[..]).collect();
    for (a, k) in acts.iter().zip(&kernel_acts) {
        let mut out = [[f32::NAN; 4]; 4];
        kernel(n, &all, &[k], &mut out);
        for (g, o) in out.iter().enumerate() {
            for r in 0..4 {
                let want = dot(n, &rows[4 * g + r], a);
                assert!(same(o[r], want), "{} {how}: four groups, group {g} row {r}: {} vs {want}", ty.name(), o[r]);
            }
        }
    }
}

fn rows_to_quantize(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    let mut rows = vec![
        (0..n).map(|_| rng.f32()).collect::<Vec<_>>(),
        (0..n).map(|_| rng.f32() * 1e30).collect(),
        (0..n).map(|_| rng.f32() * 1e-40).collect(),
        vec![0.0; n],
        (0..n).map(|i| if i % 2 == 0 { 127.0 } else { -127.0 }).collect(),
        (0..n).map(|i| (i % 255) as f32 - 127.0).collect(),
        (0..n).map(|i| (i as f32 - 0.5) / 2.0).collect(),
    ];
    let mut special: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
    special[3] = f32::NAN;
    special[40] = -0.0;
    rows.push(special);
    let mut ties: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
    ties[5] = -1.0;
    ties[300 % n] = 1.0;
    rows.push(ties);
    rows
}

#[wasm_bindgen_test]
fn activation_quantizers_are_bit_exact() {
    let mut rng = Rng(5);
    let n = 512;
    type Quantize = fn(&[f32], &mut [u8]);
    let pairs: [(GgmlType, Quantize, Quantize); 3] = [
        (GgmlType::Q8_0, scalar::quantize_row_q8_0, simd128::quantize_row_q8_0),
        (GgmlType::Q8_1, scalar::quantize_row_q8_1, simd128::quantize_row_q8_1),
        (GgmlType::Q8K, scalar::quantize_row_q8_k, simd128::quantize_row_q8_k),
    ];
    for (ty, reference, simd) in pairs {
        for (i, x) in rows_to_quantize(&mut rng, n).iter().enumerate() {
            let len = ty.bytes_for(n as u64).unwrap() as usize;
            let (mut want, mut got) = (vec![0u8; len], vec![0xaau8; len]);
            reference(x, &mut want);
            simd(x, &mut got);
            assert!(want == got, "{} row {i}: bytes differ", ty.name());
        }
    }
}

/// The attention loops: `widen_f16` is exact for every one of the 65536
/// f16 values (NaNs stay NaN); `axpy` adds in the same order as its twin, so
/// it is bit-exact.
#[wasm_bindgen_test]
fn attention_loops_match_scalar() {
    use webslm::cpu::{kernels, simd128 as cpu_simd};
    let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    let mut widened = vec![0f32; all.len()];
    cpu_simd::widen_f16(&all, &mut widened);
    for (h, w) in all.iter().zip(&widened) {
        let want = h.to_f32();
        assert!(
            w.to_bits() == want.to_bits() || (want.is_nan() && w.is_nan()),
            "f16 {:#06x}: {w} vs {want}",
            h.to_bits()
        );
    }

    let mut rng = Rng(11);
    for n in [64, 256, 60, 7] {
        let b: Vec<f32> = (0..n).map(|_| f16::from_f32(rng.f32() * 100.0).to_f32()).collect();
        let p = rng.f32();
        let (mut y0, mut y1): (Vec<f32>, Vec<f32>) = ((0..n).map(|_| rng.f32()).collect(), vec![]);
        y1.clone_from(&y0);
        let bounds: Vec<f64> = y0.iter().zip(&b).map(|(y, b)| fused_budget(*y as f64, p as f64 * *b as f64)).collect();
        kernels::axpy(p, &b, &mut y0);
        cpu_simd::axpy(p, &b, &mut y1);
        for ((x, y), bound) in y0.iter().zip(&y1).zip(bounds) {
            assert!(x.to_bits() == y.to_bits() || (*x as f64 - *y as f64).abs() <= bound, "axpy n={n}: {x} vs {y}");
        }
    }
}

/// How far `y + p` may lie from the scalar twin's when a fused multiply-add
/// computes it (the relaxed build, on a machine that fuses): the unfused
/// product's rounding and both sums' roundings, each at most 2^-24 of the
/// value rounded. Zero without relaxed SIMD: the twins are then bit-exact.
fn fused_budget(y: f64, p: f64) -> f64 {
    if cfg!(target_feature = "relaxed-simd") {
        f64::powi(2.0, -24) * (3.0 * p.abs() + 2.0 * y.abs())
    } else {
        0.0
    }
}

/// The attention kernels: `transpose` equals its scalar twin bit for bit;
/// `dot_keys` too without relaxed SIMD, and within its error bound of the
/// exact sum either way, for runs of keys of every length a chunk can leave
/// (whole vectors of eight and one, and a tail) and head sizes with and
/// without a tail of four; a key's score does not depend on the run it lies
/// in; `weighted_sum` adds as one `axpy` a row does, bit for bit, and so as
/// its scalar twin without relaxed SIMD.
#[wasm_bindgen_test]
fn tiled_attention_kernels_equal_the_row_loops() {
    use webslm::cpu::{kernels, simd128 as cpu_simd};
    let mut rng = Rng(13);
    for n in [64, 256, 60, 36, 7] {
        const STRIDE: usize = 40;
        for keys in [32, 37, 4, 3, 1] {
            let q: Vec<f32> = (0..n).map(|_| f16::from_f32(rng.f32() * 4.0).to_f32()).collect();
            let rows: Vec<f32> = (0..keys * n).map(|_| f16::from_f32(rng.f32() * 100.0).to_f32()).collect();
            let (mut kt, mut kt_scalar) = (vec![f32::NAN; n * STRIDE], vec![f32::NAN; n * STRIDE]);
            cpu_simd::transpose(&rows, n, &mut kt, STRIDE);
            kernels::transpose(&rows, n, &mut kt_scalar, STRIDE);
            for d in 0..n {
                for j in 0..keys {
                    let (got, want) = (kt[d * STRIDE + j], kt_scalar[d * STRIDE + j]);
                    assert!(got.to_bits() == want.to_bits() && want == rows[j * n + d], "transpose n={n} keys={keys}");
                }
            }
            let (mut got, mut want) = (vec![0f32; keys], vec![0f32; keys]);
            cpu_simd::dot_keys(&q, &kt, STRIDE, 0.125, &mut got);
            kernels::dot_keys(&q, &kt, STRIDE, 0.125, &mut want);
            for j in 0..keys {
                if cfg!(not(target_feature = "relaxed-simd")) {
                    assert_eq!(got[j].to_bits(), want[j].to_bits(), "dot_keys n={n} keys={keys} key {j}");
                }
                let mut alone = [0f32];
                cpu_simd::dot_keys(&q, &rows[j * n..][..n], 1, 0.125, &mut alone);
                assert_eq!(alone[0].to_bits(), got[j].to_bits(), "dot_keys n={n}: key {j} alone");
                let products = q.iter().zip(&rows[j * n..][..n]).map(|(x, y)| *x as f64 * *y as f64 / 8.0);
                let (exact, m) = products.fold((0.0, 0.0), |(s, m), p| (s + p, m + p.abs()));
                let budget = (n + 1) as f64 * f64::powi(2.0, -24) * m;
                assert!((got[j] as f64 - exact).abs() <= budget, "dot_keys n={n}: {} vs {exact}", got[j]);
                assert!((want[j] as f64 - exact).abs() <= budget, "scalar dot_keys n={n}: {} vs {exact}", want[j]);
            }
        }

        for rows in [1, 5, 32] {
            let p: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
            let v: Vec<f32> = (0..rows * n).map(|_| f16::from_f32(rng.f32() * 8.0).to_f32()).collect();
            let start: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            let (mut want, mut got, mut scalar) = (start.clone(), start.clone(), start);
            for (&a, row) in p.iter().zip(v.chunks_exact(n)) {
                cpu_simd::axpy(a, row, &mut want);
            }
            cpu_simd::weighted_sum(&p, &v, &mut got);
            kernels::weighted_sum(&p, &v, &mut scalar);
            assert!(want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()), "weighted_sum n={n} rows={rows}");
            if cfg!(not(target_feature = "relaxed-simd")) {
                assert!(want.iter().zip(&scalar).all(|(x, y)| x.to_bits() == y.to_bits()), "scalar n={n} rows={rows}");
            }
        }
    }
}

/// `round_to_f16` rounds as `half` does, bit for bit: at and around every
/// f16 value and every midpoint between neighbours (the ties and the values
/// one f32 ulp off them), of both signs, past the largest f16, through f32's
/// subnormals, and at random.
#[wasm_bindgen_test]
fn rounding_to_f16_matches_half() {
    use webslm::cpu::simd128 as cpu_simd;
    let mut x: Vec<f32> = vec![f32::INFINITY, f32::NAN, f32::MAX, 65520.0, 65519.996, 1e-45, 1e-40, 2.9802322e-8];
    for h in 0..0x7c00u16 {
        let (a, b) = (f16::from_bits(h).to_f32(), f16::from_bits(h + 1).to_f32());
        let mid = (a + b) / 2.0;
        for v in [a, mid] {
            x.extend([v, f32::from_bits(v.to_bits() + 1), f32::from_bits(v.to_bits().saturating_sub(1))]);
        }
    }
    let mut rng = Rng(3);
    x.extend((0..100_000).map(|_| f32::from_bits(rng.next() as u32)));
    x.extend(x.clone().iter().map(|v| -v));
    let mut got = x.clone();
    cpu_simd::round_to_f16(&mut got);
    for (v, g) in x.iter().zip(&got) {
        let want = f16::from_f32(*v).to_f32();
        assert!(g.to_bits() == want.to_bits() || (want.is_nan() && g.is_nan()), "{v:e}: {g:e} vs {want:e}");
    }
    // The tail of fewer than four values takes the same path.
    let mut tail = x[..7].to_vec();
    cpu_simd::round_to_f16(&mut tail);
    assert!(tail.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
}

/// `exp` within 2^-21 of e^x relative, over [-87, 88] (every 1/64 and at
/// random points); below -87 it returns e^-87 instead of a subnormal or 0.
/// `softmax` then differs from its twin by the exps' error, the two sums'
/// rounding (n·2^-24 each) and one division: within (2^-20 + (2n + 2)·2^-24)
/// of each value, relative, plus 2^-120 absolute for the clamped tails.
#[wasm_bindgen_test]
fn softmax_matches_scalar() {
    use webslm::cpu::{kernels, simd128 as cpu_simd};
    let mut rng = Rng(5);
    let points = (-87 * 64..=88 * 64).map(|i| i as f32 / 64.0).chain((0..10_000).map(|_| rng.f32() * 87.0));
    for x in points {
        let (want, got) = ((x as f64).exp(), cpu_simd::exp(x) as f64);
        assert!((got - want).abs() <= want * f64::powi(2.0, -21), "exp({x}): {got} vs {want}");
    }
    assert_eq!(cpu_simd::exp(-1000.0), cpu_simd::exp(-87.0));
    assert!(cpu_simd::exp(f32::NAN).is_nan());

    for (n, spread) in [(1, 1.0), (7, 3.0), (64, 10.0), (255, 30.0), (600, 200.0)] {
        let x: Vec<f32> = (0..n).map(|_| rng.f32() * spread).collect();
        let (mut want, mut got) = (x.clone(), x.clone());
        kernels::softmax(&mut want);
        cpu_simd::softmax(&mut got);
        let rel = f64::powi(2.0, -20) + (2 * n + 2) as f64 * f64::powi(2.0, -24);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            let budget = rel * *w as f64 + f64::powi(2.0, -120);
            assert!((*g as f64 - *w as f64).abs() <= budget, "n={n} [{i}]: {g} vs {w}");
        }
    }
}

/// `silu_mul` differs from its twin by the exp's 2^-21 (which 1 + e^-x only
/// shrinks), the scalar exp's own half ulp, and the division's and product's
/// roundings: within 2^-20 of each value, relative.
#[wasm_bindgen_test]
fn silu_mul_matches_scalar() {
    use webslm::cpu::{kernels, simd128 as cpu_simd};
    let mut rng = Rng(17);
    for n in [1, 7, 64, 1536] {
        let mut gate: Vec<f32> = (0..n).map(|_| rng.f32() * 30.0).collect();
        gate[0] = [87.0, -87.0, 0.0, 1e-30][n % 4];
        let up: Vec<f32> = (0..n).map(|_| rng.f32() * 8.0).collect();
        let (mut want, mut got) = (vec![0f32; n], vec![0f32; n]);
        kernels::silu_mul(&gate, &up, &mut want);
        cpu_simd::silu_mul(&gate, &up, &mut got);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            let budget = f64::powi(2.0, -20) * (*w as f64).abs();
            assert!((*g as f64 - *w as f64).abs() <= budget, "n={n} [{i}]: silu({}) * {}: {g} vs {w}", gate[i], up[i]);
        }
    }
}

#[wasm_bindgen_test]
fn f16_table_matches_the_conversion() {
    for h in 0..=u16::MAX {
        let want = f16::from_bits(h).to_f32();
        let got = simd128::f16_table(h);
        assert!(got.to_bits() == want.to_bits() || (want.is_nan() && got.is_nan()), "{h:#06x}: {got} vs {want}");
    }
}
