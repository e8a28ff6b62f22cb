//! Tests of the quantized formats: round trips, dot products against f64
//! references, hand-built blocks that pin ggml's bit layouts, and ggml's
//! activation quantization formulas. Every tolerance is stated next to the
//! check with the reasoning behind it.

use super::scalar::*;
use super::*;
use half::f16;
use GgmlType::*;

const WEIGHT_TYPES: [GgmlType; 11] = [F32, F16, Bf16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4K, Q5K, Q6K];

/// SplitMix64: a tiny deterministic generator, so failures reproduce exactly.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A row shaped like real weights/activations: each 32-element stretch
    /// has its own magnitude (0.01 to 10), a few entries are 4x outliers,
    /// and some stretches are one-signed (exercising the Q*_1/K-quant mins).
    fn row(&mut self, n: usize) -> Vec<f32> {
        let mut x = vec![0f32; n];
        for chunk in x.chunks_mut(32) {
            let scale = 10f32.powf(self.uniform() * 1.5 - 0.5);
            let offset = if self.below(4) == 0 { scale * self.uniform() } else { 0.0 };
            for v in chunk.iter_mut() {
                let outlier = if self.below(50) == 0 { 4.0 } else { 1.0 };
                *v = (self.uniform() * scale + offset) * outlier;
            }
        }
        x
    }
}

fn row_bytes(ty: GgmlType, n: usize) -> usize {
    ty.bytes_for(n as u64).unwrap() as usize
}

fn quantize_ref(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len())];
    quantize_row_ref(ty, x, &mut q);
    q
}

fn quantize_act(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len())];
    quantize_row(ty, x, &mut q);
    q
}

fn dequantize(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![f32::NAN; n];
    dequantize_row(ty, q, &mut y);
    y
}

/// The largest magnitude of each `block`-element run, repeated per element.
fn block_absmax(x: &[f32], block: usize) -> Vec<f32> {
    x.chunks(block)
        .flat_map(|c| {
            let a = c.iter().fold(0f32, |m, v| m.max(v.abs()));
            std::iter::repeat_n(a, c.len())
        })
        .collect()
}

fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

// ----------------------------------------------------------------- layouts

#[test]
fn block_sizes_match_ggml_layout() {
    for (ty, block, bytes) in [
        (Q4_0, QK, Q4_0_BYTES),
        (Q4_1, QK, Q4_1_BYTES),
        (Q5_0, QK, Q5_0_BYTES),
        (Q5_1, QK, Q5_1_BYTES),
        (Q8_0, QK, Q8_0_BYTES),
        (Q8_1, QK, Q8_1_BYTES),
        (Q4K, QK_K, Q4_K_BYTES),
        (Q5K, QK_K, Q5_K_BYTES),
        (Q6K, QK_K, Q6_K_BYTES),
        (Q8K, QK_K, Q8_K_BYTES),
    ] {
        assert_eq!(ty.block_layout(), (block, bytes), "{}", ty.name());
    }
}

#[test]
fn vec_dot_types() {
    for ty in [Q4_0, Q5_0, Q8_0] {
        assert_eq!(vec_dot_type(ty), Q8_0);
    }
    // The formats with a min need the activation sums: Q8_1, as llama.cpp.
    for ty in [Q4_1, Q5_1] {
        assert_eq!(vec_dot_type(ty), Q8_1);
    }
    for ty in [Q4K, Q5K, Q6K] {
        assert_eq!(vec_dot_type(ty), Q8K);
    }
    for ty in [F32, F16, Bf16] {
        assert_eq!(vec_dot_type(ty), F32);
    }
}

#[test]
#[should_panic(expected = "Q2_K is not supported")]
fn unsupported_type_panics() {
    vec_dot_type(Q2K);
}

#[test]
fn f16_conversion_matches_half_exactly() {
    for h in 0..=u16::MAX {
        let (ours, theirs) = (f16_to_f32(h), f16::from_bits(h).to_f32());
        assert_eq!(ours.to_bits(), theirs.to_bits(), "f16 bits {h:#06x}");
    }
}

// -------------------------------------------------------------- round trips

/// Largest |dequantize(quantize_ref(x)) - x| allowed for the elements of one
/// block (`x` = that block; per element for the float types), from the
/// format's step size `A/levels` (A = the block's largest magnitude):
fn roundtrip_budget(ty: GgmlType, x: &[f32]) -> f32 {
    let a = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (min, max) = x.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // f16 rounding of a stored scale moves a decoded value by at most
    // 2^-11 of its magnitude; A·2^-9 covers that for scale and min together.
    let f16_slack = a / 512.0;
    match ty {
        F32 => 0.0,
        F16 => a / 2048.0, // 11 significant bits
        Bf16 => a / 256.0, // 8 significant bits
        // Half a step of A/127, plus up to 127 steps' worth of f16 rounding of d.
        Q8_0 => 0.5 * a / 127.0 + f16_slack,
        // ggml maps the signed extreme to -8 (-16), so a value of the other
        // sign at the same magnitude clamps to +7 (+15): one full step.
        Q4_0 => a / 8.0 + f16_slack,
        Q5_0 => a / 16.0 + f16_slack,
        // Half of the step (max - min)/15 (31) between min and max.
        Q4_1 => 0.5 * (max - min) / 15.0 + f16_slack,
        Q5_1 => 0.5 * (max - min) / 31.0 + f16_slack,
        // A sub-block step is at most 2A/15 (2A/31); quantizing the scales and
        // mins to 6 bits against their maxima adds at most 1/126 of the largest
        // of each, which either widens the half step or, when it clamps the top
        // code, leaves 15 (31) scale errors plus one min error: under A/12
        // (A/24) with the f16 slack.
        Q4K => a / 12.0 + f16_slack,
        Q5K => a / 24.0 + f16_slack,
        // Each 16-element sub-block's signed extreme maps to -32, so the other
        // sign clamps at +31: one step of A/32. Quantizing the scale to i8
        // (where +128 clamps to 127, and rounding) shrinks it by up to 1.5/127,
        // which the 31 codes multiply: 31·(A/32)·1.5/127 < A/80.
        Q6K => a / 32.0 + a / 80.0 + f16_slack,
        _ => unreachable!(),
    }
}

fn check_roundtrip(ty: GgmlType, x: &[f32], what: &str) {
    let y = dequantize(ty, &quantize_ref(ty, x), x.len());
    let block = ty.block_layout().0;
    for (b, (xb, yb)) in x.chunks(block).zip(y.chunks(block)).enumerate() {
        for (i, (&xv, &yv)) in xb.iter().zip(yb).enumerate() {
            let budget = if block == 1 { roundtrip_budget(ty, &[xv]) } else { roundtrip_budget(ty, xb) };
            assert!(
                (xv - yv).abs() <= budget,
                "{} {what}: element {} is {yv}, expected {xv} ± {budget}",
                ty.name(),
                b * block + i
            );
        }
    }
}

#[test]
fn roundtrip_random_rows() {
    let mut rng = Rng(1);
    for ty in WEIGHT_TYPES {
        for n in [256, 512, 256, 512] {
            check_roundtrip(ty, &rng.row(n), "random row");
        }
    }
}

/// On smooth random data the error should be an ordinary rounding error, far
/// inside the worst-case budgets above: RMS below 0.35 of a step (uniform
/// rounding gives 1/sqrt(12) ≈ 0.29), with the step measured per block.
#[test]
fn roundtrip_rms_is_a_rounding_error() {
    let mut rng = Rng(2);
    for (ty, levels) in [(Q8_0, 254.0), (Q4_1, 15.0), (Q5_1, 31.0), (Q4K, 15.0), (Q5K, 31.0)] {
        let (mut err2, mut step2) = (0f64, 0f64);
        for _ in 0..8 {
            let x: Vec<f32> = (0..512).map(|_| rng.uniform()).collect();
            let y = dequantize(ty, &quantize_ref(ty, &x), x.len());
            let block = ty.block_layout().0;
            for (xb, yb) in x.chunks(block).zip(y.chunks(block)) {
                let (lo, hi) = xb.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let step = (hi - lo) as f64 / levels;
                for (&a, &b) in xb.iter().zip(yb) {
                    err2 += ((a - b) as f64).powi(2);
                    step2 += step * step;
                }
            }
        }
        let ratio = (err2 / step2).sqrt();
        assert!(ratio < 0.35, "{}: RMS error is {ratio} steps", ty.name());
    }
}

#[test]
fn roundtrip_extreme_blocks() {
    let mut rng = Rng(3);
    for ty in WEIGHT_TYPES {
        let zeros = vec![0f32; 512];
        let y = dequantize(ty, &quantize_ref(ty, &zeros), 512);
        assert!(y.iter().all(|&v| v == 0.0), "{}: zeros must stay exactly zero", ty.name());
        for m in [1.0f32, 1000.0] {
            let signs: Vec<f32> = (0..512).map(|_| if rng.below(2) == 0 { m } else { -m }).collect();
            check_roundtrip(ty, &signs, "±max row");
            check_roundtrip(ty, &vec![m; 512], "constant row");
            check_roundtrip(ty, &vec![-m; 512], "negative constant row");
        }
        // A single spike in a zero block.
        let mut spike = vec![0f32; 512];
        spike[37] = -3.0;
        spike[300] = 5.0;
        check_roundtrip(ty, &spike, "spikes");
    }
}

// ------------------------------------------------ ggml's K-quant reference bytes

/// Eight super-blocks for [`k_quants_match_ggml_bytes`], built from exact
/// operations only (no libm), each aimed at a branch of ggml's search:
/// plain data, small data with outliers, one-signed blocks (the min clamps
/// to 0 or is all of the range), sub-blocks 10⁴ apart (the smaller 6-bit and
/// i8 scales round to zero, keeping the fit's codes), zero sub-blocks, an
/// all-zero block and one below `GROUP_MAX_EPS`.
fn kquant_inputs() -> Vec<f32> {
    const SUB_SCALES: [f32; 8] = [1.0, 0.5, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0001];
    let mut rng = Rng(20);
    let mut x = Vec::with_capacity(8 * QK_K);
    for block in 0..8 {
        for i in 0..QK_K {
            let u = rng.uniform();
            x.push(match block {
                0 => u,
                1 => u * if i % 37 == 0 { 0.16 } else { 0.02 },
                2 => 1.0 + 0.5 * u,
                3 => u * SUB_SCALES[i / 32],
                4 => {
                    if i < 128 {
                        0.0
                    } else {
                        0.3 * u
                    }
                }
                5 => 0.0,
                6 => 1e-20 * u,
                _ => -1.0 + 0.25 * u,
            });
        }
    }
    x
}

/// FNV-1a 64 of one quantized block.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &v| (h ^ v as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The K-quant reference quantizers are byte-identical to ggml's
/// (`quantize_row_q{4,5,6}_K_ref`, what llama-quantize runs without an
/// importance matrix). The expected per-block hashes were made by writing
/// [`kquant_inputs`] to a file of little-endian f32s and feeding it, with a
/// scripts/reference/kquant_hashes.c, to `ggml_quantize_chunk(type, x, q, 0, 8, 256, NULL)` from
/// llama.cpp 0c1e570's libggml-base (built as scripts/reference/build.sh
/// does), hashing each block with [`fnv1a`].
#[test]
fn k_quants_match_ggml_bytes() {
    #[rustfmt::skip]
    let expected: [(GgmlType, [u64; 8]); 3] = [
        (Q4K, [0x4fd04ad5e1ec7058, 0xc88ce49c095a1f4d, 0x48cc82250ac3de51, 0x1747a434046b394e,
               0xe31193f5ebd8b2c8, 0xec32669a74fcae65, 0x24843428ec0c38f8, 0xd3ca8e75229aea7d]),
        (Q5K, [0x207364d9de5e9bdb, 0x4ac3673ef97a1d79, 0xa5814a8297aa76ec, 0xffcb4fe1a85dfa9b,
               0x01c4f0d86fc22f59, 0xad7f8afd9dfb20e5, 0xa81a5a821c7aa2ed, 0xee52b9c79c982af4]),
        (Q6K, [0x3171f377d45c3f32, 0x28a4b2ca821e5db1, 0x82cb829ee70ab008, 0x8abec077e5f7b33c,
               0x3dfd52566b01835f, 0x51d8f4040b006a2d, 0x51d8f4040b006a2d, 0x9619fb47fc9ed11b]),
    ];
    let x = kquant_inputs();
    for (ty, hashes) in expected {
        let q = quantize_ref(ty, &x);
        for (b, (block, want)) in q.chunks(row_bytes(ty, QK_K)).zip(hashes).enumerate() {
            assert_eq!(fnv1a(block), want, "{} block {b}", ty.name());
        }
    }
}

// ------------------------------------------------------------- dot products

/// Per 32-element block of a Q4_1/Q5_1 row `wq` against Q8_1 activations
/// `aq`: (the weight block's f16 min m, the activation block's f16 d, its
/// stored f16 s, Σq).
fn q8_1_min_terms(ty: GgmlType, wq: &[u8], aq: &[u8]) -> Vec<(f64, f64, f64, i32)> {
    assert!(matches!(ty, Q4_1 | Q5_1), "{} does not take Q8_1", ty.name());
    let wbytes = ty.block_layout().1;
    wq.chunks(wbytes)
        .zip(aq.chunks(Q8_1_BYTES))
        .map(|(w, a)| {
            let sum_q: i32 = a[4..].iter().map(|&v| v as i8 as i32).sum();
            (f16_of(w, 2) as f64, f16_of(a, 0) as f64, f16_of(a, 2) as f64, sum_q)
        })
        .collect()
}

/// What `vec_dot` adds to the dot of the dequantized rows: with Q8_1
/// activations the min term of each block is m·s with the stored f16 s,
/// where the dequantized rows give m·d·Σq (d the stored f16 d). Zero for
/// every other activation type.
fn q8_1_shift(ty: GgmlType, wq: &[u8], aq: &[u8]) -> f64 {
    if vec_dot_type(ty) != Q8_1 {
        return 0.0;
    }
    q8_1_min_terms(ty, wq, aq).into_iter().map(|(m, d, s, sum_q)| m * (s - d * sum_q as f64)).sum()
}

/// Checks `vec_dot` on weights `wq` (type `ty`) against activations `x`:
///
/// (a) against the f64 dot of the two dequantized rows (for Q8_1 activations
///     with each block's min term m·d·Σq replaced by the m·s that llama.cpp
///     uses, see `q8_1_shift`), which `vec_dot` computes exactly up to f32
///     rounding: per block a few roundings of terms bounded by 2·A_w·|x̃|
///     (A_w = the weight block's largest magnitude; the K-quant min term and
///     the unsigned-code term each stay under it, as does m·s, |s| being
///     within 0.1% of |d·Σq| ≤ Σ|x̃|), accumulated over at most 16 blocks or
///     lanes: 1e-5 relative to that.
/// (b) against the f64 dot of the dequantized weights with the original x:
///     on top of (a), each activation moved by at most 0.57 of its block's
///     step A_x/127 (half a step of rounding plus f16 rounding of the Q8_0 /
///     Q8_1 d; Q8_K keeps d in f32), weighted by |w̃|. Q8_1 adds one error
///     source, so one term (not a loosened factor) joins the budget there:
///     s = f16(d_f32·Σq) and the stored d = f16(d_f32) each round by at most
///     2^-11 relative (all scales here are normal f16), so |s - d·Σq| is at
///     most 2^-10·(1 + 2^-11)·|d·Σq| < |d·Σq|/1000, weighted by the block's |m|.
fn check_vec_dot(ty: GgmlType, wq: &[u8], x: &[f32], what: &str) {
    let n = x.len();
    let act_ty = vec_dot_type(ty);
    let aq = quantize_act(act_ty, x);
    let got = vec_dot(ty, n, wq, &aq) as f64;
    let w = dequantize(ty, wq, n);
    let xa = dequantize(act_ty, &aq, n);
    assert!(got.is_finite(), "{} {what}: vec_dot is {got}", ty.name());

    let aw = block_absmax(&w, ty.block_layout().0.max(QK));
    let scale: f64 = w.iter().zip(&aw).zip(&xa).map(|((&w, &a), &x)| (w.abs() + 2.0 * a) as f64 * x.abs() as f64).sum();
    let budget_a = 1e-5 * scale + 1e-30;
    let exact = dot_f64(&w, &xa) + q8_1_shift(ty, wq, &aq);
    assert!(
        (got - exact).abs() <= budget_a,
        "{} {what}: vec_dot {got} vs dequantized dot {exact} (budget {budget_a})",
        ty.name()
    );

    let ax = if act_ty == F32 { vec![0f32; n] } else { block_absmax(x, act_ty.block_layout().0) };
    let s_rounding: f64 = if act_ty == Q8_1 {
        q8_1_min_terms(ty, wq, &aq)
            .into_iter()
            .map(|(m, d, _, sum_q)| m.abs() * (d * sum_q as f64).abs() / 1000.0)
            .sum()
    } else {
        0.0
    };
    let budget_b =
        budget_a + s_rounding + w.iter().zip(&ax).map(|(&w, &a)| w.abs() as f64 * 0.57 * a as f64 / 127.0).sum::<f64>();
    let reference = dot_f64(&w, x);
    assert!(
        (got - reference).abs() <= budget_b,
        "{} {what}: vec_dot {got} vs f64 dot {reference} (budget {budget_b})",
        ty.name()
    );
}

#[test]
fn vec_dot_random_rows() {
    let mut rng = Rng(4);
    for ty in WEIGHT_TYPES {
        for n in [256, 512, 256, 512, 512] {
            let wq = quantize_ref(ty, &rng.row(n));
            check_vec_dot(ty, &wq, &rng.row(n), "random rows");
        }
    }
}

/// On random data the error against the true dot product is a sum of
/// independent roundings, far below the worst case 0.57·Σ|w̃|·A_x/127 of
/// `check_vec_dot` (b): require a tenth of Σ|w̃|·A_x/127 (its expected size
/// is about 0.015 of it at n = 512). A wrong element order or scale would
/// miss by orders of magnitude more.
#[test]
fn vec_dot_random_error_is_small() {
    let mut rng = Rng(5);
    for ty in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4K, Q5K, Q6K] {
        for _ in 0..4 {
            let n = 512;
            let wq = quantize_ref(ty, &rng.row(n));
            let w = dequantize(ty, &wq, n);
            let x = rng.row(n);
            let act_ty = vec_dot_type(ty);
            let got = vec_dot(ty, n, &wq, &quantize_act(act_ty, &x)) as f64;
            let ax = block_absmax(&x, act_ty.block_layout().0);
            let scale: f64 = w.iter().zip(&ax).map(|(&w, &a)| w.abs() as f64 * a as f64 / 127.0).sum();
            let err = (got - dot_f64(&w, &x)).abs();
            assert!(err <= 0.1 * scale, "{}: error {err} vs Σ|w|·A_x/127 = {scale}", ty.name());
        }
    }
}

#[test]
fn vec_dot_float_rows_of_any_length() {
    let mut rng = Rng(6);
    for ty in [F32, F16, Bf16] {
        for n in [1, 15, 16, 17, 37, 100] {
            let wq = quantize_ref(ty, &rng.row(n));
            check_vec_dot(ty, &wq, &rng.row(n), "odd length");
        }
    }
}

#[test]
fn vec_dot_extreme_rows() {
    let mut rng = Rng(7);
    for ty in WEIGHT_TYPES {
        let n = 512;
        let zeros = vec![0f32; n];
        let random = rng.row(n);
        let wq_zero = quantize_ref(ty, &zeros);
        let wq_random = quantize_ref(ty, &random);
        let aq_zero = quantize_act(vec_dot_type(ty), &zeros);
        assert!(aq_zero.iter().all(|&b| b == 0), "{}: zero activations quantize to zero bytes", ty.name());
        let aq_random = quantize_act(vec_dot_type(ty), &random);
        assert_eq!(vec_dot(ty, n, &wq_zero, &aq_random), 0.0, "{}", ty.name());
        assert_eq!(vec_dot(ty, n, &wq_random, &aq_zero), 0.0, "{}", ty.name());
        assert_eq!(vec_dot(ty, n, &wq_zero, &aq_zero), 0.0, "{}", ty.name());

        for m in [1.0f32, 1000.0] {
            let pm = |rng: &mut Rng| -> Vec<f32> { (0..n).map(|_| if rng.below(2) == 0 { m } else { -m }).collect() };
            // Weights at ±max against ordinary activations, and ordinary
            // weights against activations that all quantize to ±127.
            let w_pm = quantize_ref(ty, &pm(&mut rng));
            check_vec_dot(ty, &w_pm, &rng.row(n), "±max weights");
            check_vec_dot(ty, &wq_random, &pm(&mut rng), "±127 activations");
            check_vec_dot(ty, &w_pm, &pm(&mut rng), "±max both");
        }
    }
}

// ----------------------------------------- hand-built blocks: bit layouts
//
// Each `spec_*` decodes element `i` of one block straight from ggml's struct
// description, one element at a time (a different shape from the kernels'
// loops). The tests compare it with `dequantize_row` and with `vec_dot`
// against one-hot activations, which reads each weight through the dot
// product path on its own. Scales are powers of two so both are exact.

const F16_ONE: [u8; 2] = [0x00, 0x3c];

fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

fn f16_of(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 4-bit code of element i (0..32): low nibbles hold 0..16, high 16..32.
fn spec_nibble(qs: &[u8], i: usize) -> u8 {
    if i < 16 {
        qs[i] & 0x0f
    } else {
        qs[i - 16] >> 4
    }
}

fn spec_q4_0(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * (spec_nibble(&b[2..], i) as f32 - 8.0)
}

fn spec_q4_1(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * spec_nibble(&b[4..], i) as f32 + f16_of(b, 2)
}

/// Fifth bit of element i: bit i of the little-endian u32 qh.
fn spec_q5_code(qh: &[u8], qs: &[u8], i: usize) -> u8 {
    let bit = (qh[i / 8] >> (i % 8)) & 1;
    spec_nibble(qs, i) | (bit << 4)
}

fn spec_q5_0(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * (spec_q5_code(&b[2..6], &b[6..], i) as f32 - 16.0)
}

fn spec_q5_1(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * spec_q5_code(&b[4..8], &b[8..], i) as f32 + f16_of(b, 2)
}

fn spec_q8_0(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * b[2 + i] as i8 as f32
}

/// Q8_1 element i: d·q, with the quants after d and s (s is not an element).
fn spec_q8_1(b: &[u8], i: usize) -> f32 {
    f16_of(b, 0) * b[4 + i] as i8 as f32
}

/// ggml's get_scale_min_k4, transcribed for one sub-block.
fn spec_scale_min_k4(s: &[u8], j: usize) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    };
    (sc as f32, m as f32)
}

/// Q4_K element i: sub-block i/32; the 64-element chunk i/64 reads bytes
/// qs[32·(i/64)..][i%32], low nibble for its first 32 elements, high for the rest.
fn spec_q4_k(b: &[u8], i: usize) -> f32 {
    let (sc, m) = spec_scale_min_k4(&b[4..16], i / 32);
    let byte = b[16 + 32 * (i / 64) + i % 32];
    let q = if (i / 32) % 2 == 0 { byte & 0x0f } else { byte >> 4 };
    f16_of(b, 0) * sc * q as f32 - f16_of(b, 2) * m
}

/// Q5_K element i: as Q4_K plus bit i/32 (the sub-block index) of qh[i%32].
fn spec_q5_k(b: &[u8], i: usize) -> f32 {
    let (sc, m) = spec_scale_min_k4(&b[4..16], i / 32);
    let byte = b[48 + 32 * (i / 64) + i % 32];
    let lo = if (i / 32) % 2 == 0 { byte & 0x0f } else { byte >> 4 };
    let q = lo | (((b[16 + i % 32] >> (i / 32)) & 1) << 4);
    f16_of(b, 0) * sc * q as f32 - f16_of(b, 2) * m
}

/// Q6_K element i: in half h = i/128, run g = (i%128)/32, lane l = i%32, the
/// low four bits are the (g < 2 ? low : high) nibble of ql[64h + 32(g%2) + l],
/// the top two are bits 2g..2g+2 of qh[32h + l]; scale scales[i/16]; d last.
fn spec_q6_k(b: &[u8], i: usize) -> f32 {
    let (h, g, l) = (i / 128, (i % 128) / 32, i % 32);
    let byte = b[64 * h + 32 * (g % 2) + l];
    let lo = if g < 2 { byte & 0x0f } else { byte >> 4 };
    let hi = (b[128 + 32 * h + l] >> (2 * g)) & 3;
    let q = (lo | (hi << 4)) as i32 - 32;
    f16_of(b, 208) * b[192 + i / 16] as i8 as f32 * q as f32
}

/// Bytes with a fixed, position-dependent pattern (so every element differs
/// from its neighbours and from its mirror in any plausible wrong layout).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// One-hot activations for element p of an `n`-element row in `act_ty`.
fn one_hot(act_ty: GgmlType, n: usize, p: usize) -> Vec<u8> {
    let mut a = vec![0u8; row_bytes(act_ty, n)];
    match act_ty {
        Q8_0 => {
            let b = &mut a[(p / QK) * Q8_0_BYTES..];
            b[..2].copy_from_slice(&F16_ONE);
            b[2 + p % QK] = 1;
        }
        Q8_1 => {
            // d = 1 and one quant of 1, so s = d·Σq = 1.
            let b = &mut a[(p / QK) * Q8_1_BYTES..];
            b[..2].copy_from_slice(&F16_ONE);
            b[2..4].copy_from_slice(&F16_ONE);
            b[4 + p % QK] = 1;
        }
        Q8K => {
            let b = &mut a[(p / QK_K) * Q8_K_BYTES..];
            b[..4].copy_from_slice(&1f32.to_le_bytes());
            b[4 + p % QK_K] = 1;
            b[260 + 2 * ((p % QK_K) / 16)] = 1;
        }
        _ => unreachable!(),
    }
    a
}

/// Checks a hand-built block (two blocks, in fact, to catch per-block offset
/// errors) against its spec through both `dequantize_row` and `vec_dot`.
fn check_layout(ty: GgmlType, blocks: &[u8], spec: fn(&[u8], usize) -> f32) {
    let (block, bytes) = ty.block_layout();
    let n = blocks.len() / bytes * block;
    let y = dequantize(ty, blocks, n);
    for p in 0..n {
        let expected = spec(&blocks[(p / block) * bytes..][..bytes], p % block);
        assert_eq!(y[p], expected, "{} dequantize: element {p}", ty.name());
        let got = vec_dot(ty, n, blocks, &one_hot(vec_dot_type(ty), n, p));
        assert_eq!(got, expected, "{} vec_dot with one-hot activation: element {p}", ty.name());
    }
}

#[test]
fn layout_q4_0() {
    // Block 0: low nibbles 0..15 in order, high nibbles a permutation, so
    // elements 0..16 read d·(j - 8) and swapping halves or interleaving fails.
    let mut b = vec![0u8; 2 * Q4_0_BYTES];
    b[..2].copy_from_slice(&f16_bytes(0.5));
    for j in 0..16 {
        b[2 + j] = j as u8 | ((((j * 7) + 3) % 16) as u8) << 4;
    }
    b[Q4_0_BYTES..].copy_from_slice(&pattern(Q4_0_BYTES, 10));
    b[Q4_0_BYTES..Q4_0_BYTES + 2].copy_from_slice(&f16_bytes(-0.25));
    let y = dequantize(Q4_0, &b, 64);
    for (j, &v) in y[..16].iter().enumerate() {
        assert_eq!(v, 0.5 * (j as f32 - 8.0));
    }
    check_layout(Q4_0, &b, spec_q4_0);
}

#[test]
fn layout_q4_1() {
    let mut b = pattern(2 * Q4_1_BYTES, 11);
    for (k, (d, m)) in [(0.25, -1.5), (2.0, 0.75)].into_iter().enumerate() {
        b[k * Q4_1_BYTES..][..2].copy_from_slice(&f16_bytes(d));
        b[k * Q4_1_BYTES + 2..][..2].copy_from_slice(&f16_bytes(m));
    }
    check_layout(Q4_1, &b, spec_q4_1);
}

#[test]
fn layout_q5_0() {
    let mut b = pattern(2 * Q5_0_BYTES, 12);
    b[..2].copy_from_slice(&f16_bytes(0.5));
    // Fifth bits set for elements 0, 9, 16 and 31 only (little-endian u32).
    b[2..6].copy_from_slice(&(1u32 | 1 << 9 | 1 << 16 | 1 << 31).to_le_bytes());
    b[6..Q5_0_BYTES].fill(0);
    let y = dequantize(Q5_0, &b, 64);
    for (i, &v) in y[..32].iter().enumerate() {
        let expected = if [0, 9, 16, 31].contains(&i) { 0.0 } else { -8.0 };
        assert_eq!(v, expected, "element {i}");
    }
    b[Q5_0_BYTES..][..2].copy_from_slice(&f16_bytes(0.125));
    check_layout(Q5_0, &b, spec_q5_0);
}

#[test]
fn layout_q5_1() {
    let mut b = pattern(2 * Q5_1_BYTES, 13);
    for (k, (d, m)) in [(0.5, -4.0), (0.0625, 1.0)].into_iter().enumerate() {
        b[k * Q5_1_BYTES..][..2].copy_from_slice(&f16_bytes(d));
        b[k * Q5_1_BYTES + 2..][..2].copy_from_slice(&f16_bytes(m));
    }
    check_layout(Q5_1, &b, spec_q5_1);
}

#[test]
fn layout_q8_0() {
    let mut b = pattern(2 * Q8_0_BYTES, 14);
    b[..2].copy_from_slice(&f16_bytes(0.5));
    b[Q8_0_BYTES..][..2].copy_from_slice(&f16_bytes(-2.0));
    check_layout(Q8_0, &b, spec_q8_0);
}

/// Q8_1 is only an activation format (no `vec_dot` of its own), so its
/// layout is checked through `dequantize_row`, which must ignore `s`.
#[test]
fn layout_q8_1() {
    let mut b = pattern(2 * Q8_1_BYTES, 23);
    b[..2].copy_from_slice(&f16_bytes(0.5));
    b[Q8_1_BYTES..][..2].copy_from_slice(&f16_bytes(-2.0));
    let y = dequantize(Q8_1, &b, 64);
    for (p, &v) in y.iter().enumerate() {
        assert_eq!(v, spec_q8_1(&b[(p / QK) * Q8_1_BYTES..][..Q8_1_BYTES], p % QK), "element {p}");
    }
    b[2..4].copy_from_slice(&f16_bytes(0.0));
    b[Q8_1_BYTES + 2..][..2].copy_from_slice(&[0xff, 0x7f]); // NaN
    assert_eq!(dequantize(Q8_1, &b, 64), y, "s must not affect dequantization");
}

/// The Q4_1/Q5_1 min term reads the activation block's stored s, not d·Σq
/// recomputed from its quants: weight blocks with d = 0 give exactly
/// f16(m)·f16(s) per block whatever the activation quants and d are, and
/// with s = 0 the min term vanishes though Σq ≠ 0.
#[test]
fn q8_1_min_term_uses_s() {
    for (ty, spec) in [(Q4_1, spec_q4_1 as fn(&[u8], usize) -> f32), (Q5_1, spec_q5_1)] {
        let bytes = ty.block_layout().1;
        let mut w = pattern(2 * bytes, 24);
        let mut a = pattern(2 * Q8_1_BYTES, 25);
        for (k, (m, da, s)) in [(1.0, 1.0, 3.5), (-3.0, 0.5, -0.25)].into_iter().enumerate() {
            w[k * bytes..][..2].copy_from_slice(&f16_bytes(0.0));
            w[k * bytes + 2..][..2].copy_from_slice(&f16_bytes(m));
            a[k * Q8_1_BYTES..][..2].copy_from_slice(&f16_bytes(da));
            a[k * Q8_1_BYTES + 2..][..2].copy_from_slice(&f16_bytes(s));
            let alone = vec_dot(ty, QK, &w[k * bytes..][..bytes], &a[k * Q8_1_BYTES..][..Q8_1_BYTES]);
            assert_eq!(alone, m * s, "{} block {k}", ty.name());
        }
        let sums: Vec<i32> = a.chunks(Q8_1_BYTES).map(|b| b[4..].iter().map(|&v| v as i8 as i32).sum()).collect();
        assert!(sums.iter().all(|&v| v != 0), "the quants must not sum to s/d by accident");
        assert_eq!(vec_dot(ty, 2 * QK, &w, &a), 1.0 * 3.5 + -3.0 * -0.25, "{}", ty.name());

        // d_w = d_a = 1, m = 1 and s = 0: only the integer dot of the codes
        // with the quants is left.
        w[..2].copy_from_slice(&F16_ONE);
        a[..2].copy_from_slice(&F16_ONE);
        a[2..4].copy_from_slice(&f16_bytes(0.0));
        let mut codes = w[..bytes].to_vec();
        codes[2..4].copy_from_slice(&f16_bytes(0.0)); // m = 0: spec gives the code
        let isum: i32 = (0..QK).map(|i| spec(&codes, i) as i32 * a[4 + i] as i8 as i32).sum();
        assert_eq!(vec_dot(ty, QK, &w[..bytes], &a[..Q8_1_BYTES]), isum as f32, "{}", ty.name());
    }
}

/// Packs eight 6-bit scales and mins the way ggml's quantize_row_q4_K_ref
/// writes them (transcribed independently of the kernels' unpacking).
fn spec_pack_k4(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = sc[j];
            s[j + 4] = m[j];
        } else {
            s[j + 4] = (sc[j] & 0x0f) | ((m[j] & 0x0f) << 4);
            s[j - 4] |= (sc[j] >> 4) << 6;
            s[j] |= (m[j] >> 4) << 6;
        }
    }
    s
}

/// Scales and mins using all six bits (the top bits of sub-blocks 4..8 live
/// in other bytes, so a wrong unpacking changes them).
const K_SCALES: [u8; 8] = [1, 63, 17, 42, 33, 48, 5, 60];
const K_MINS: [u8; 8] = [50, 2, 63, 19, 7, 36, 61, 24];

#[test]
fn layout_q4_k() {
    let mut b = pattern(2 * Q4_K_BYTES, 15);
    for k in 0..2 {
        let blk = &mut b[k * Q4_K_BYTES..][..Q4_K_BYTES];
        blk[..2].copy_from_slice(&f16_bytes(0.5));
        blk[2..4].copy_from_slice(&f16_bytes(0.25));
        let (sc, m) = if k == 0 { (K_SCALES, K_MINS) } else { (K_MINS, K_SCALES) };
        blk[4..16].copy_from_slice(&spec_pack_k4(sc, m));
    }
    // The packing really places the values where get_scale_min_k4 finds them.
    for j in 0..8 {
        assert_eq!(spec_scale_min_k4(&b[4..16], j), (K_SCALES[j] as f32, K_MINS[j] as f32));
    }
    check_layout(Q4K, &b, spec_q4_k);
}

#[test]
fn layout_q5_k() {
    let mut b = pattern(2 * Q5_K_BYTES, 16);
    for k in 0..2 {
        let blk = &mut b[k * Q5_K_BYTES..][..Q5_K_BYTES];
        blk[..2].copy_from_slice(&f16_bytes(0.25));
        blk[2..4].copy_from_slice(&f16_bytes(0.5));
        let (sc, m) = if k == 0 { (K_SCALES, K_MINS) } else { (K_MINS, K_SCALES) };
        blk[4..16].copy_from_slice(&spec_pack_k4(sc, m));
    }
    check_layout(Q5K, &b, spec_q5_k);
}

#[test]
fn layout_q6_k() {
    let mut b = pattern(2 * Q6_K_BYTES, 17);
    b[208..210].copy_from_slice(&f16_bytes(0.5));
    b[Q6_K_BYTES + 208..].copy_from_slice(&f16_bytes(-0.125));
    check_layout(Q6K, &b, spec_q6_k);
}

/// The pack/unpack pair used by the reference quantizers round-trips.
#[test]
fn k4_scale_packing_roundtrips() {
    let packed = spec_pack_k4(K_SCALES, K_MINS);
    assert_eq!(scales_mins_k4(&packed), (K_SCALES, K_MINS));
    let y = dequantize(Q4K, &quantize_ref(Q4K, &Rng(18).row(256)), 256);
    assert!(y.iter().all(|v| v.is_finite()));
}

// --------------------------------------------------- extreme hand-built scales

/// Blocks whose scales are f16's largest finite value, its smallest and
/// largest subnormals, and ±0, with codes at their extremes: dequantization
/// matches the spec exactly, nothing overflows f32 or i32, and a
/// zero scale gives exact zeros rather than NaN.
#[test]
fn extreme_scales() {
    let scales: [u16; 5] = [0x7bff, 0x0001, 0x03ff, 0x0000, 0x8000];
    let mut rng = Rng(19);
    for &bits in &scales {
        let d = bits.to_le_bytes();
        type Case = (GgmlType, fn(&[u8], usize) -> f32, &'static [usize]);
        let cases: [Case; 8] = [
            (Q4_0, spec_q4_0, &[0]),
            (Q4_1, spec_q4_1, &[0, 2]),
            (Q5_0, spec_q5_0, &[0]),
            (Q5_1, spec_q5_1, &[0, 2]),
            (Q8_0, spec_q8_0, &[0]),
            (Q4K, spec_q4_k, &[0, 2]),
            (Q5K, spec_q5_k, &[0, 2]),
            (Q6K, spec_q6_k, &[208]),
        ];
        for (ty, spec, scale_at) in cases {
            let (block, bytes) = ty.block_layout();
            let n = 2 * block.max(QK_K);
            let nb = n / block;
            // Extreme codes: all bits set in one block, all clear in the next.
            let mut w: Vec<u8> = (0..nb).flat_map(|k| vec![if k % 2 == 0 { 0xff } else { 0x00 }; bytes]).collect();
            for blk in w.chunks_mut(bytes) {
                for &at in scale_at {
                    blk[at..at + 2].copy_from_slice(&d);
                }
                if matches!(ty, Q4K | Q5K) {
                    blk[4..16].copy_from_slice(&spec_pack_k4([63; 8], [63; 8]));
                }
                if ty == Q6K {
                    blk[192..208].fill(0x80); // scale -128
                }
            }
            let y = dequantize(ty, &w, n);
            for (p, &v) in y.iter().enumerate() {
                assert_eq!(v, spec(&w[(p / block) * bytes..][..bytes], p % block), "{} element {p}", ty.name());
                assert!(v.is_finite());
            }
            // Activations at full scale: f16::MAX Q8_0 / Q8_1 scales, large
            // Q8_K ones.
            let mut x: Vec<f32> = (0..n).map(|_| if rng.below(2) == 0 { 1.0 } else { -1.0 }).collect();
            x[3] = 0.5;
            let act_ty = vec_dot_type(ty);
            if act_ty == Q8_1 {
                // Q8_1's s = f16(d·Σq) must stay finite at d = f16::MAX, which
                // needs Σq = ±1: the second half of each block mirrors the
                // first with opposite signs, and the pair (3, 19) quantizes to
                // 32 and -31 (0.25·127 = 31.75), negated in blocks whose first
                // element is negative, so s = ±f16::MAX as well.
                for blk in x.chunks_mut(QK) {
                    for j in 0..16 {
                        blk[16 + j] = -blk[j];
                    }
                    blk[3] = 0.25 * blk[0];
                    blk[19] = -31.0 / 127.0 * blk[0];
                }
            }
            let mut aq = quantize_act(act_ty, &x);
            match act_ty {
                Q8_0 => {
                    for blk in aq.chunks_mut(Q8_0_BYTES) {
                        blk[..2].copy_from_slice(&0x7bffu16.to_le_bytes());
                    }
                }
                Q8_1 => {
                    for blk in aq.chunks_mut(Q8_1_BYTES) {
                        let sum_q: i32 = blk[4..].iter().map(|&v| v as i8 as i32).sum();
                        assert_eq!(sum_q.abs(), 1, "{}: quant sum {sum_q}", ty.name());
                        blk[..2].copy_from_slice(&0x7bffu16.to_le_bytes());
                        blk[2..4].copy_from_slice(&f16_bytes(f16::MAX.to_f32() * sum_q as f32));
                        assert_eq!(f16_of(blk, 2).abs(), f16::MAX.to_f32());
                    }
                }
                _ => {}
            }
            let got = vec_dot(ty, n, &w, &aq) as f64;
            let xa = dequantize(act_ty, &aq, n);
            // (The Q8_1 shift is zero here, s being exactly d·Σq.)
            let exact = dot_f64(&y, &xa) + q8_1_shift(ty, &w, &aq);
            let scale: f64 = y.iter().zip(&xa).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
            // Same f32-rounding budget as check_vec_dot (a); the min terms
            // here are as large as the weights themselves, hence the 3x.
            let budget = 3e-5 * scale;
            assert!(got.is_finite(), "{} scale {bits:#06x}: {got}", ty.name());
            assert!((got - exact).abs() <= budget, "{} scale {bits:#06x}: {got} vs {exact}", ty.name());
            if bits & 0x7fff == 0 {
                assert_eq!(got, 0.0, "{}", ty.name());
            }
        }
    }
}

/// The largest integer sums the formats allow (e.g. Q6_K codes -32 with
/// scale -128 against Q8_K quants of -128) stay exact in i32.
#[test]
fn extreme_integer_sums() {
    let mut w = vec![0u8; Q6_K_BYTES];
    w[192..208].fill(0x80);
    w[208..].copy_from_slice(&F16_ONE);
    let mut a = vec![0u8; Q8_K_BYTES];
    a[..4].copy_from_slice(&1f32.to_le_bytes());
    a[4..260].fill(0x80);
    for j in 0..16 {
        a[260 + 2 * j..262 + 2 * j].copy_from_slice(&(-2048i16).to_le_bytes());
    }
    // Each element: scale -128 · code -32 · quant -128.
    assert_eq!(vec_dot(Q6K, 256, &w, &a), -(256 * 128 * 32 * 128) as f32);

    let mut w = vec![0xffu8; Q4_K_BYTES];
    w[..2].copy_from_slice(&F16_ONE);
    w[2..4].copy_from_slice(&F16_ONE);
    w[4..16].copy_from_slice(&spec_pack_k4([63; 8], [63; 8]));
    // 256 · (63·15·(-128)) - (-63·128·256) = 256·128·63·(1 - 15)
    assert_eq!(vec_dot(Q4K, 256, &w, &a), (256 * 128 * 63 * (1 - 15)) as f32);
}

// ------------------------------------------------- activation quantization

/// ggml's quantize_row_q8_K_ref, transcribed in the most direct form.
fn spec_q8_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for x in x.chunks(QK_K) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            out.extend(std::iter::repeat_n(0u8, Q8_K_BYTES));
            continue;
        }
        let iscale = -127.0 / max;
        let q: Vec<i8> = x.iter().map(|&v| ((iscale * v).round_ties_even() as i32).min(127) as i8).collect();
        out.extend_from_slice(&(1.0 / iscale).to_le_bytes());
        out.extend(q.iter().map(|&v| v as u8));
        for g in q.chunks(16) {
            out.extend_from_slice(&(g.iter().map(|&v| v as i16).sum::<i16>()).to_le_bytes());
        }
    }
    out
}

#[test]
fn q8_k_matches_ggml_formula() {
    let mut rng = Rng(20);
    for n in [256, 512, 1024] {
        let x = rng.row(n);
        assert_eq!(quantize_act(Q8K, &x), spec_q8_k(&x));
    }
    // Hand-checked block: the extreme is -127, so iscale = 1 and d = 1;
    // 2.5 and -3.5 are ties, which go to even (2 and -4), unlike Q8_0.
    let mut x = vec![0f32; 256];
    x[0] = -127.0;
    x[1] = 2.5;
    x[2] = -3.5;
    x[17] = 100.25;
    let q = quantize_act(Q8K, &x);
    assert_eq!(f32::from_le_bytes(q[..4].try_into().unwrap()), 1.0);
    assert_eq!(&q[4..8], &[-127i8 as u8, 2, -4i8 as u8, 0]);
    assert_eq!(q[4 + 17], 100);
    assert_eq!(i16::from_le_bytes([q[260], q[261]]), -127 + 2 - 4);
    assert_eq!(i16::from_le_bytes([q[262], q[263]]), 100);
    // A positive extreme gives a negative d and negated quants.
    x[0] = 127.0;
    let q = quantize_act(Q8K, &x);
    assert_eq!(f32::from_le_bytes(q[..4].try_into().unwrap()), -1.0);
    assert_eq!(&q[4..8], &[-127i8 as u8, -2i8 as u8, 4, 0]);
    assert_eq!(q, spec_q8_k(&x));
}

#[test]
fn q8_0_matches_ggml_formula() {
    // amax 127 gives d = 1: ties round to even, as llama.cpp's x86 SIMD
    // quantizer (_mm256_round_ps) does.
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.5;
    x[4] = -126.5;
    let q = quantize_act(Q8_0, &x);
    assert_eq!(&q[..2], &F16_ONE);
    assert_eq!(&q[2..7], &[127, 2, -2i8 as u8, 0, -126i8 as u8]);
    // d is f16(amax/127) while the quants use 127/amax, not 1/d.
    let mut rng = Rng(21);
    let x = rng.row(64);
    let q = quantize_act(Q8_0, &x);
    for (b, xb) in q.chunks(Q8_0_BYTES).zip(x.chunks(32)) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        assert_eq!(&b[..2], &f16_bytes(d));
        for (&qv, &xv) in b[2..].iter().zip(xb) {
            assert_eq!(qv as i8, (xv * (127.0 / amax)).round_ties_even() as i8);
        }
    }
}

#[test]
fn q8_1_matches_ggml_formula() {
    // amax 127 gives d = 1; ties round to even as in Q8_0; and
    // s = d·Σq = 127 + 2 - 2 + 0 - 126 = 1.
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 0.5;
    x[4] = -126.5;
    let q = quantize_act(Q8_1, &x);
    assert_eq!(&q[..2], &F16_ONE);
    assert_eq!(&q[2..4], &F16_ONE);
    assert_eq!(&q[4..9], &[127, 2, -2i8 as u8, 0, -126i8 as u8]);
    assert!(q[9..].iter().all(|&b| b == 0));
    // A zero block gives d = s = 0 and zero quants (no NaN from 1/0).
    assert!(quantize_act(Q8_1, &[0f32; 64]).iter().all(|&b| b == 0));

    // Random rows with one zero block: d and the quants are Q8_0's byte for
    // byte, and s = f16(Σq·d) with the unrounded d = amax/127, which is not
    // f16(Σq·f16(d)) in some of these blocks (so the check tells them apart).
    let mut rng = Rng(22);
    let mut x = rng.row(2048);
    x[64..96].fill(0.0);
    let (q1, q0) = (quantize_act(Q8_1, &x), quantize_act(Q8_0, &x));
    let mut rounded_d_differs = 0;
    for (k, ((b1, b0), xb)) in q1.chunks(Q8_1_BYTES).zip(q0.chunks(Q8_0_BYTES)).zip(x.chunks(QK)).enumerate() {
        assert_eq!(&b1[..2], &b0[..2], "block {k}: d");
        assert_eq!(&b1[4..], &b0[2..], "block {k}: quants");
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let sum_q: i32 = b1[4..].iter().map(|&v| v as i8 as i32).sum();
        assert_eq!(&b1[2..4], &f16_bytes(sum_q as f32 * d), "block {k}: s");
        if b1[2..4] != f16_bytes(sum_q as f32 * f16_of(b1, 0)) {
            rounded_d_differs += 1;
        }
    }
    assert_eq!(&q1[2 * Q8_1_BYTES..3 * Q8_1_BYTES], &[0u8; Q8_1_BYTES]);
    assert!(rounded_d_differs > 0);
}

#[test]
fn f32_activations_are_le_bytes() {
    let x = [1.5f32, -2.0, 3.25e-3];
    let q = quantize_act(F32, &x);
    assert_eq!(q, x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    assert_eq!(dequantize(F32, &q, 3), x);
}

/// A packed matrix gives back every row as the file had it, and its product,
/// over row ranges that cut groups and reach the rows left unpacked, equals
/// each row's own product with one token and with several.
#[test]
fn packed_matrices_keep_their_rows_and_products() {
    let mut rng = Rng(17);
    let n = 512;
    for ty in [Q4_0, Q5_0, Q4K, Q6K] {
        let rows = 11;
        let file: Vec<u8> = (0..rows).flat_map(|_| quantize_ref(ty, &rng.row(n))).collect();
        let w_row = row_bytes(ty, n);
        let mut data = file.clone();
        let mut scratch = Vec::new();
        for group in data.chunks_exact_mut(4 * w_row).take(rows / 4) {
            packed::pack_group(ty, group, &mut scratch);
        }
        assert_ne!(data, file, "{} is packed", ty.name());
        for r in 0..rows {
            let mut scratch = Vec::new();
            assert_eq!(
                packed::file_row(ty, &data, w_row, r, &mut scratch),
                &file[r * w_row..][..w_row],
                "{} row {r}",
                ty.name()
            );
        }
        let xs: Vec<Vec<f32>> = (0..6).map(|_| rng.row(n)).collect();
        let acts: Vec<Vec<u8>> = xs.iter().map(|x| quantize_act(vec_dot_type(ty), x)).collect();
        let kernel_acts: Vec<u8> = xs
            .iter()
            .flat_map(|x| {
                let mut k = vec![0u8; act_row_bytes(ty, n)];
                quantize_act_row(ty, x, &mut k);
                k
            })
            .collect();
        for tokens in [1, 6] {
            let act = &kernel_acts[..tokens * act_row_bytes(ty, n)];
            for range in [0..rows, 1..7, 3..11, 9..11, 5..6] {
                let mut out = vec![f32::NAN; tokens * range.len()];
                matmul(ty, n, &data, range.clone(), act, &mut out, range.len());
                for (t, a) in acts[..tokens].iter().enumerate() {
                    for r in range.clone() {
                        let want = vec_dot(ty, n, &file[r * w_row..][..w_row], a);
                        let got = out[t * range.len() + r - range.start];
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{} rows {range:?}, token {t} of {tokens}, row {r}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}
