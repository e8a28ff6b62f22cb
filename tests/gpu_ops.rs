//! Every WGSL kernel against the CPU reference, on the first GPU adapter
//! wgpu finds: natively mesa's lavapipe in CI (`scripts/setup.sh` installs
//! it; `cargo test --release --features gpu --test gpu_ops`), and in
//! headless Chromium on SwiftShader's WebGPU (`WASM_BINDGEN_USE_BROWSER=1
//! cargo test --release --target wasm32-unknown-unknown --features gpu
//! --test gpu_ops`, with the flags of `webdriver.json`). Each test is one
//! async body ([`gpu_test`]), the same shapes and budgets on both.
//!
//! Budgets, with u = 2^-24 (f32 rounding) and S = Σ|w·x| of a dot product:
//! - matmul (decode GEMV and prefill GEMM, every format, matrices split into
//!   parts): within (k/8 + 20)·u·S of the f64 product of the dequantized
//!   weights (a thread adds k/8 sums of eight products in turn, each sum
//!   four levels deep; dequantizing may fuse a multiply-add), and the f16
//!   GEMM's tiles 6·2^-11·S more (see `f16_terms`);
//! - embedding rows: within 2u of |value| + |minimum| of the CPU's
//!   dequantization (one multiply-add that may fuse), the row's largest
//!   |value| standing in for the block's minimum;
//! - RMSNorm: within 2^-18 relative (f32 sum of squares on the GPU, f64 on
//!   the CPU);
//! - RoPE: within 4u·(|x0| + |x1|) (the same angles; the GPU may fuse);
//! - SwiGLU: within 2^-20 relative plus 2^-30 (the GPU's `exp`);
//! - GELU gate: within 2^-10·|result| + (|gate| + 1)·2^-23·|up|: both sides
//!   round the GELU to f16, which a different last bit before it may move
//!   to the neighbouring f16 value (relative step 2^-11; 2^-24 among f16
//!   subnormals), and the CPU's 1 + tanh (ggml's form) loses up to an f32
//!   step of 1, times gate/2, where tanh nears -1 (the GPU's sigmoid form
//!   does not);
//! - scale: bit-exact; reshape moves nothing (a per-head RMSNorm through
//!   it meets the RMSNorm budget);
//! - residual add: bit-exact;
//! - attention: within 2^-10·max|v| + 2^-12 of the CPU, because each weight
//!   is rounded to f16 on both sides and a rounding tie may fall either way;
//!   with and without a sliding window; in f16, what rounded products move
//!   the scores by, a random walk (see `attention_budget`);
//! - the tiny gemma3 end to end: logits within 1/16 of the largest (the
//!   CPU's 8-bit activations, carried through seven layers: see the test).
#![cfg(feature = "gpu")]

mod common;

use webslm::cpu::{Act as CpuAct, Cpu};
use webslm::gguf::TensorInfo;
use webslm::gpu::{Family, Gpu};
use webslm::model::{Attention, Backend, Rope};
use webslm::quant::{self, GgmlType};
use webslm::session::{LoaderOrCpu, SessionOrCpu};
use webslm::{GenerateOptions, LoadOptions, Session};

const U: f64 = 1.0 / (1u64 << 24) as f64;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A test written once as an async body: natively a `#[test]` that blocks
/// on it (a native GPU's reads are ready at once), in the browser a
/// `#[wasm_bindgen_test]` that awaits it, as a browser's GPU hands results
/// back only through the event loop.
macro_rules! gpu_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on(async $body)
        }

        $(#[$meta])*
        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() $body
    };
}

/// A device of the test's own: wgpu's browser types cannot be shared
/// between tests through a static.
async fn gpu() -> Gpu {
    let gpu = Gpu::request()
        .await
        .expect("no GPU adapter: install a Vulkan driver (Debian: mesa-vulkan-drivers), or turn WebGPU on");
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("GPU: {}", gpu.adapter());
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("GPU: {}", gpu.adapter());
    gpu
}

/// A device running the kernel `family` (`None` where the adapter lacks the
/// subgroups or f16 it needs; lavapipe and most real GPUs have both).
async fn gpu_of(family: Family) -> Option<Gpu> {
    let gpu = Gpu::request_family(Some(family)).await.expect("no GPU adapter");
    if gpu.family() != family {
        let note = format!("{}: no {} kernels here (it runs {})", gpu.adapter(), family.name(), gpu.family().name());
        // lavapipe has both: there every family must be tested.
        assert!(!gpu.adapter().contains("llvmpipe"), "{note}");
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("{note}");
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_test::console_log!("{note}");
        return None;
    }
    Some(gpu)
}

async fn read(g: &mut Gpu, x: &webslm::gpu::Act) -> Vec<f32> {
    g.read(x).get().await
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32() * scale).collect()
    }
}

fn info(name: &str, ty: GgmlType, dims: &[usize]) -> TensorInfo {
    let n: usize = dims.iter().product();
    TensorInfo {
        name: name.into(),
        dims: dims.iter().map(|&d| d as u64).collect(),
        ty,
        offset: 0,
        size: ty.bytes_for(n as u64).unwrap(),
    }
}

/// A `rows × k` matrix of `ty` from random values (through the reference
/// quantizer), with a row of raw random codes for the 8-bit format so that
/// -128 occurs; and its dequantized values. For the K-quants, rows 1 to 3
/// have raw random sub-block scales, minimums and codes (any packed 6-bit
/// scale and minimum of Q4_K and Q5_K, any sign of Q6_K's scales, whatever
/// the quantizer writes), row 2 under random subnormal f16 super-block
/// scales and row 3 under the largest f16 (each in a row of its own, so
/// that a subnormal flushed to zero is not lost in a larger row's sum).
fn matrix(ty: GgmlType, rows: usize, k: usize, rng: &mut Rng) -> (Vec<u8>, Vec<f32>) {
    let row_bytes = ty.bytes_for(k as u64).unwrap() as usize;
    let mut bytes = vec![0u8; rows * row_bytes];
    for (r, dst) in bytes.chunks_exact_mut(row_bytes).enumerate() {
        let src = rng.vec(k, if r % 3 == 0 { 20.0 } else { 1.0 });
        quant::quantize_row_ref(ty, &src, dst);
        if ty == GgmlType::Q8_0 && r == 1 {
            for block in dst.chunks_exact_mut(34) {
                block[2..].iter_mut().for_each(|b| *b = rng.next() as u8);
            }
        }
        // Where the f16 scales are in a super-block, and its other bytes.
        let (size, scales, raw) = match ty {
            GgmlType::Q4K => (144, 0..4, 4..144),
            GgmlType::Q5K => (176, 0..4, 4..176),
            GgmlType::Q6K => (210, 208..210, 0..208),
            _ => continue,
        };
        if (1..=3).contains(&r) {
            for block in dst.chunks_exact_mut(size) {
                block[raw.clone()].iter_mut().for_each(|b| *b = rng.next() as u8);
                for f16 in block[scales.clone()].chunks_exact_mut(2) {
                    match r {
                        2 => f16.copy_from_slice(&((rng.next() % 0x3ff + 1) as u16).to_le_bytes()),
                        3 => f16.copy_from_slice(&0x7bffu16.to_le_bytes()),
                        _ => {}
                    }
                }
            }
        }
    }
    let mut values = vec![0f32; rows * k];
    for (src, dst) in bytes.chunks_exact(row_bytes).zip(values.chunks_exact_mut(k)) {
        quant::dequantize_row(ty, src, dst);
    }
    (bytes, values)
}

const FORMATS: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// The K-quants' 256-weight super-blocks need rows of a multiple of 256.
fn cols(ty: GgmlType, k: usize) -> usize {
    if ty.block_layout().0 == 256 {
        k.next_multiple_of(256)
    } else {
        k
    }
}

gpu_test! {
    async fn matmul_vec_and_mat_match_the_dequantized_product_for_every_format() {
        for family in Family::ALL {
            let Some(g) = gpu_of(family).await else { continue };
            matmul_matches(g).await;
        }
    }
}

/// What f16 products add to a sum's error, relative to S: nothing in f32;
/// with f16 (the prefill GEMM's tiles), each weight and value rounded to
/// f16, their product, and the three additions of a dot of four, at most
/// 2^-11 each.
fn f16_terms(family: Family) -> f64 {
    match family {
        Family::Hardware { f16: true, .. } => 6.0 * f64::powi(2.0, -11),
        _ => 0.0,
    }
}

/// The attention tests' budget (queries and keys up to 4, values up to 2):
/// a weight rounded to f16 on both sides may fall either way of a tie,
/// 2^-10·max|v| + 2^-12. In f16 a score's products are rounded too: a
/// random walk of head_dim steps of up to 2^-11·|q|·|k|, scaled, which
/// moves the output by up to twice a score's error times max|v|. We allow
/// 2^-10·16·√head_dim·scale·max|v|, six times what these data show (at
/// head_dim 64 and 256: 0.0049 and 0.0054, against 0.0010 and 0.0010 in
/// f32).
fn attention_budget(family: Family, shape: &Attention) -> f64 {
    let f32_budget = f64::powi(2.0, -10) * 2.0 + f64::powi(2.0, -12);
    let walk = f64::powi(2.0, -10) * 16.0 * (shape.head_dim as f64).sqrt() * shape.scale as f64 * 2.0;
    match family {
        Family::Hardware { f16: true, .. } => f32_budget + walk,
        _ => f32_budget,
    }
}

/// Every format's GEMV and GEMM on `g`'s kernels against the f64 product.
async fn matmul_matches(mut g: Gpu) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for ty in FORMATS {
        for (rows, k, tokens, split) in [
            (7, 64, 1, false),
            (45, 576, 1, true),
            (9, 4096, 1, false),
            (33, 576, 13, false),
            (20, 1536, 9, true),
            (70, 256, 40, false),
        ] {
            // K-quants: 256, 768 and 1536 columns.
            let k = cols(ty, k);
            let (bytes, w) = matrix(ty, rows, k, &mut rng);
            let x = rng.vec(tokens * k, 3.0);
            let t = info("w", ty, &[k, rows]);
            let weight = if split {
                // Parts of about a third of the rows, filled four rows
                // at a time as a stream would, across the parts' ends.
                let row_bytes = bytes.len() / rows;
                g.limit_binding((row_bytes * rows.div_ceil(3)) as u64 + 8);
                let mut weight = g.alloc(&t).unwrap();
                for (i, group) in bytes.chunks(4 * row_bytes).enumerate() {
                    g.fill(&mut weight, &t, 4 * i as u64, group).unwrap();
                }
                weight
            } else {
                g.upload(&t, &bytes).unwrap()
            };
            g.limit_binding(u32::MAX as u64);
            let xa = g.act_from(tokens, k, &x);
            let y = g.matmul(&xa, &weight);
            let got = read(&mut g, &y).await;
            assert_eq!(got.len(), tokens * rows);
            // What f16 tiles add (the GEMM's only).
            let f16 = if tokens > 1 { f16_terms(g.family()) } else { 0.0 };
            for t in 0..tokens {
                for r in 0..rows {
                    let (wr, xt) = (&w[r * k..(r + 1) * k], &x[t * k..(t + 1) * k]);
                    // f16 tiles hold no weight past 65504, nor a dot of four
                    // products past it: the rows made with the largest
                    // K-quant scales (weights up to 6·10^7, no model's) are
                    // for the f32 kernels.
                    if f16 > 0.0 && wr.iter().any(|v| v.abs() * 3.0 * 4.0 > 65504.0) {
                        continue;
                    }
                    let want: f64 = wr.iter().zip(xt).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let s: f64 = wr.iter().zip(xt).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                    let budget = (k / 8 + 20) as f64 * U * s + f16 * s;
                    let d = (got[t * rows + r] as f64 - want).abs();
                    assert!(
                            d <= budget,
                            "{} kernels, {} {rows}x{k}, {tokens} tokens, split {split}: [{t}][{r}] {} vs {want} (budget {budget})",
                            g.family().name(),
                            ty.name(),
                            got[t * rows + r]
                        );
                }
            }
        }
    }
}

gpu_test! {
    /// A matrix whose rows are not whole blocks of its format (here half a
    /// K-quant super-block, though the tensor as a whole is one) is refused.
    async fn rows_of_partial_super_blocks_are_a_bad_model() {
        let mut g = gpu().await;
        for ty in [GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
            let bytes = vec![0u8; ty.bytes_for(256).unwrap() as usize];
            let e = g.upload(&info("w", ty, &[128, 2]), &bytes).err().expect("rows of 128 K-quant weights");
            assert!(matches!(&e, webslm::Error::BadModel(m) if m.contains("256-weight blocks")), "{} {e:?}", ty.name());
        }
    }
}

gpu_test! {
    async fn embedding_rows_match_the_cpu_dequantization() {
        let mut g = gpu().await;
        let mut cpu = Cpu::default();
        let mut rng = Rng(77);
        for ty in
            [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::F16, GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K]
        {
            // Two super-blocks a row for the K-quants.
            let (rows, k) = (50, if ty.block_layout().0 == 256 { 512 } else { 128 });
            let (bytes, _) = matrix(ty, rows, k, &mut rng);
            let t = info("embd", ty, &[k, rows]);
            g.limit_binding((bytes.len() / 4) as u64);
            let gw = g.upload(&t, &bytes).unwrap();
            g.limit_binding(u32::MAX as u64);
            let cw = cpu.upload(&t, &bytes).unwrap();
            let tokens = [0u32, 49, 13, 13, 25, 37, 1, 2, 3];
            let got = {
                let e = g.embed(&gw, &tokens);
                read(&mut g, &e).await
            };
            let want = cpu.embed(&cw, &tokens).data;
            assert_eq!(got.len(), want.len());
            for (tok, (got, want)) in got.chunks_exact(k).zip(want.chunks_exact(k)).enumerate() {
                let max = want.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                for (i, (a, b)) in got.iter().zip(want).enumerate() {
                    let budget = 2.0 * U * (b.abs() as f64 + max);
                    assert!((*a as f64 - *b as f64).abs() <= budget, "{} token {tok} [{i}]: {a} vs {b}", ty.name());
                }
            }
        }
    }
}

fn cpu_act(rows: usize, cols: usize, data: &[f32]) -> CpuAct {
    CpuAct { rows, cols, data: data.to_vec() }
}

gpu_test! {
    async fn norm_rope_swiglu_and_add_match_the_cpu() {
        let mut g = gpu().await;
        let mut cpu = Cpu::default();
        let mut rng = Rng(5);
        let (rows, cols) = (5, 576);
        let x = rng.vec(rows * cols, 40.0);
        let w = rng.vec(cols, 2.0);
        let t = info("norm", GgmlType::F32, &[cols]);
        let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (gw, cw) = (g.upload(&t, &wb).unwrap(), cpu.upload(&t, &wb).unwrap());
        let gx = g.act_from(rows, cols, &x);
        let cx = cpu_act(rows, cols, &x);

        let got = {
            let y = g.rms_norm(&gx, &gw, 1e-5);
            read(&mut g, &y).await
        };
        let want = cpu.rms_norm(&cx, &cw, 1e-5).data;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() as f64 <= f64::powi(2.0, -18) * b.abs() as f64 + 1e-30, "rms_norm [{i}]: {a} vs {b}");
        }

        // The last: Phi-3's LongRoPE, per-frequency divisors and cos/sin scaled.
        let long = Some((0..48).map(|i| 1.0 + i as f32 / 6.0).collect::<Vec<f32>>());
        for (neox, dims, head_dim, n_head, pos, factors, attn_factor) in [
            (false, 64, 64, 9, 0, None, 1.0),
            (true, 64, 64, 9, 700, None, 1.0),
            (true, 32, 64, 3, 5, None, 1.0),
            (true, 96, 96, 2, 300, long, 1.19),
        ] {
            let rope = Rope { dims, freq_base: 10_000.0, freq_scale: 1.0, neox, factors, attn_factor };
            let data = rng.vec(rows * n_head * head_dim, 5.0);
            let (mut gq, mut cq) =
                (g.act_from(rows, n_head * head_dim, &data), cpu_act(rows, n_head * head_dim, &data));
            g.rope(&mut gq, n_head, head_dim, pos, &rope);
            cpu.rope(&mut cq, n_head, head_dim, pos, &rope);
            let got = read(&mut g, &gq).await;
            for (i, (a, b)) in got.iter().zip(&cq.data).enumerate() {
                // Each output mixes two inputs of at most 5 in magnitude.
                assert!((a - b).abs() as f64 <= 4.0 * U * 10.0 * attn_factor as f64, "rope neox {neox} pos {pos} [{i}]: {a} vs {b}");
            }
        }

        let (gate, up) = (rng.vec(rows * cols, 12.0), rng.vec(rows * cols, 3.0));
        let got = {
            let (ga, ua) = (g.act_from(rows, cols, &gate), g.act_from(rows, cols, &up));
            let y = g.swiglu(&ga, &ua);
            read(&mut g, &y).await
        };
        let want = cpu.swiglu(&cpu_act(rows, cols, &gate), &cpu_act(rows, cols, &up)).data;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() as f64 <= f64::powi(2.0, -20) * b.abs() as f64 + f64::powi(2.0, -30), "swiglu [{i}]: {a} vs {b}");
        }

        let y = rng.vec(rows * cols, 100.0);
        let mut gx2 = g.act_from(rows, cols, &x);
        let gy = g.act_from(rows, cols, &y);
        g.add(&mut gx2, &gy);
        let mut cx2 = cpu_act(rows, cols, &x);
        cpu.add(&mut cx2, &cpu_act(rows, cols, &y));
        assert!(read(&mut g, &gx2).await.iter().zip(&cx2.data).all(|(a, b)| a.to_bits() == b.to_bits()), "add");
    }
}

gpu_test! {
    /// GPT-2's and Phi-2's ops: LayerNorm with a bias, GELU, a bias on every row.
    async fn layer_norm_gelu_and_bias_match_the_cpu() {
        let mut g = gpu().await;
        let mut cpu = Cpu::default();
        let mut rng = Rng(17);
        let vector = |g: &mut Gpu, cpu: &mut Cpu, name: &str, v: &[f32]| {
            let t = info(name, GgmlType::F32, &[v.len()]);
            let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (g.upload(&t, &b).unwrap(), cpu.upload(&t, &b).unwrap())
        };
        for (rows, cols) in [(5, 160), (2, 2560)] {
            // Rows off centre, as residual streams are: the mean matters.
            let x: Vec<f32> = rng.vec(rows * cols, 40.0).iter().map(|v| v + 7.0).collect();
            let (w, bias) = (rng.vec(cols, 2.0), rng.vec(cols, 1.0));
            let ((gw, cw), (gb, cb)) = (vector(&mut g, &mut cpu, "w", &w), vector(&mut g, &mut cpu, "b", &bias));
            let got = {
                let gx = g.act_from(rows, cols, &x);
                let y = g.layer_norm(&gx, &gw, &gb, 1e-5);
                read(&mut g, &y).await
            };
            let want = cpu.layer_norm(&cpu_act(rows, cols, &x), &cw, &cb, 1e-5).data;
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                // Measured at most 3.7e-7 × (|w| + |b|) on lavapipe and
                // SwiftShader: sums in another order, a normalized value of a
                // few units times the weight, plus the bias.
                let budget = f64::powi(2.0, -18) * (w[i % cols].abs() + bias[i % cols].abs()) as f64;
                assert!((a - b).abs() as f64 <= budget, "layer_norm {rows}x{cols} [{i}]: {a} vs {b}");
            }

            let mut gy = g.act_from(rows, cols, &x);
            let mut cy = cpu_act(rows, cols, &x);
            g.add_bias(&mut gy, &gb);
            cpu.add_bias(&mut cy, &cb);
            assert!(read(&mut g, &gy).await.iter().zip(&cy.data).all(|(a, b)| a.to_bits() == b.to_bits()), "add_bias");
        }

        // Over GELU's whole range, past ggml's ±10 cut-offs.
        let (rows, cols) = (3, 640);
        let x = rng.vec(rows * cols, 12.0);
        let got = {
            let gx = g.act_from(rows, cols, &x);
            let y = g.gelu(&gx);
            read(&mut g, &y).await
        };
        let want = cpu.gelu(&cpu_act(rows, cols, &x)).data;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let budget = f64::powi(2.0, -10) * b.abs() as f64 + (x[i].abs() + 1.0) as f64 * f64::powi(2.0, -23);
            assert!((a - b).abs() as f64 <= budget, "gelu [{i}] (x {}): {a} vs {b}", x[i]);
        }
    }
}

gpu_test! {
    async fn geglu_scale_and_per_head_norm_match_the_cpu() {
        let mut g = gpu().await;
        let mut cpu = Cpu::default();
        let mut rng = Rng(11);
        let (rows, cols) = (3, 2048);
        // Gates over GELU's whole range, past ggml's ±10 cut-offs.
        let (gate, up) = (rng.vec(rows * cols, 12.0), rng.vec(rows * cols, 3.0));
        let got = {
            let (ga, ua) = (g.act_from(rows, cols, &gate), g.act_from(rows, cols, &up));
            let y = g.geglu(&ga, &ua);
            read(&mut g, &y).await
        };
        let want = cpu.geglu(&cpu_act(rows, cols, &gate), &cpu_act(rows, cols, &up)).data;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let budget = f64::powi(2.0, -10) * b.abs() as f64
                + (gate[i].abs() + 1.0) as f64 * f64::powi(2.0, -23) * up[i].abs() as f64;
            assert!((a - b).abs() as f64 <= budget, "geglu [{i}] (gate {}): {a} vs {b}", gate[i]);
        }

        let x = rng.vec(rows * cols, 40.0);
        let mut gx = g.act_from(rows, cols, &x);
        let mut cx = cpu_act(rows, cols, &x);
        g.scale(&mut gx, 25.298_222);
        cpu.scale(&mut cx, 25.298_222);
        assert!(read(&mut g, &gx).await.iter().zip(&cx.data).all(|(a, b)| a.to_bits() == b.to_bits()), "scale");

        // Gemma 3's q norm: 4 heads of 256 a row, each normalized on its own.
        let (n_head, hd) = (4, 256);
        let w = rng.vec(hd, 2.0);
        let t = info("q_norm", GgmlType::F32, &[hd]);
        let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (gw, cw) = (g.upload(&t, &wb).unwrap(), cpu.upload(&t, &wb).unwrap());
        let x = rng.vec(rows * n_head * hd, 40.0);
        let got = {
            let gx = g.act_from(rows, n_head * hd, &x);
            let gx = g.reshape(gx, rows * n_head, hd);
            let y = g.rms_norm(&gx, &gw, 1e-6);
            let y = g.reshape(y, rows, n_head * hd);
            assert_eq!((y.rows, y.cols), (rows, n_head * hd));
            read(&mut g, &y).await
        };
        let want = {
            let cx = cpu.reshape(cpu_act(rows, n_head * hd, &x), rows * n_head, hd);
            cpu.rms_norm(&cx, &cw, 1e-6).data
        };
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() as f64 <= f64::powi(2.0, -18) * b.abs() as f64 + 1e-30,
                "per-head rms_norm [{i}]: {a} vs {b}"
            );
        }
    }
}

gpu_test! {
    async fn attention_matches_the_cpu_over_batches_and_grouped_heads() {
        // attention_mat.wgsl in f32 (software and hardware alike) and f16.
        for family in [Family::Software, Family::Hardware { subgroups: false, f16: true }] {
        let Some(mut g) = gpu_of(family).await else {
            assert!(matches!(family, Family::Hardware { f16: true, .. }), "software and hardware kernels run anywhere");
            continue;
        };
        let mut cpu = Cpu::default();
        let mut rng = Rng(99);
        // SmolLM2's shape (9 heads over 3), Gemma 3's (4 over 1, head size 256),
        // and windows shorter than a batch, across position tiles (16 positions
        // for a head of 256, 32 or 64 for 64).
        for (n_head, n_head_kv, head_dim, window) in
            [(9, 3, 64, None), (4, 1, 256, None), (4, 1, 256, Some(21)), (9, 3, 64, Some(45))]
        {
            let shape = Attention { n_head, n_head_kv, head_dim, scale: 1.0 / (head_dim as f32).sqrt(), window };
            let kv_dim = n_head_kv * head_dim;
            let context = 256;
            // Single tokens (attention_vec*.wgsl) and batches (attention_mat.wgsl:
            // tiles of 16 query rows and 64, then 32, positions for a head of 64;
            // 4 rows and 16 positions for 256) of rows no multiple of those
            // tiles, all but the first starting off a position tile; the last,
            // 130 rows, sees up to 244 positions. Windowed, batches of at most
            // 37 over a GPU cache that is a ring of window + 36 positions (57,
            // 81), wrapped three and two times, against a CPU cache of every
            // position.
            let batches: &[usize] = if window.is_some() {
                &[37, 1, 2, 3, 30, 1, 37, 5, 37, 1, 30, 37]
            } else {
                &[70, 1, 37, 1, 2, 3, 130]
            };
            let ring = window.map_or(context, |w| w + 36);
            let mut gc = g.new_cache(&[context, ring], kv_dim).unwrap();
            let mut cc = cpu.new_cache(&[context, context], kv_dim).unwrap();
            let mut pos = 0;
            for &batch in batches {
                let q = rng.vec(batch * n_head * head_dim, 4.0);
                let k = rng.vec(batch * kv_dim, 4.0);
                let v = rng.vec(batch * kv_dim, 2.0);
                let got = {
                    let (gq, gk, gv) =
                        (g.act_from(batch, n_head * head_dim, &q), g.act_from(batch, kv_dim, &k), g.act_from(batch, kv_dim, &v));
                    let o = g.attention(&gq, &gk, &gv, &mut gc, 1, pos, &shape);
                    read(&mut g, &o).await
                };
                let (cq, ck, cv) = (cpu_act(batch, n_head * head_dim, &q), cpu_act(batch, kv_dim, &k), cpu_act(batch, kv_dim, &v));
                let want = cpu.attention(&cq, &ck, &cv, &mut cc, 1, pos, &shape).data;
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    let budget = attention_budget(family, &shape);
                    assert!(
                        (a - b).abs() as f64 <= budget,
                        "{} kernels, heads {n_head}/{n_head_kv}x{head_dim}, window {window:?}, batch {batch} at {pos}, [{i}]: {a} vs {b}",
                        family.name()
                    );
                }
                pos += batch;
            }
        }
        }
    }
}

gpu_test! {
    /// Decode steps (the split-KV kernels): one token at a time from the first
    /// position to past four 32-position chunks, every step against the CPU,
    /// so that one chunk, several, a chunk with a single position and exact
    /// chunk boundaries all occur. Windowed, the GPU's cache is a ring of
    /// window + 3 positions (53, 67: as for batches of 4), wrapped twice, the
    /// CPU's one of every position.
    async fn decode_attention_matches_the_cpu_at_every_position() {
        // The scores' kernel: software's, hardware's, and hardware's in f16.
        for family in [Family::Software, Family::Hardware { subgroups: false, f16: false }, Family::Hardware { subgroups: false, f16: true }] {
        let Some(mut g) = gpu_of(family).await else {
            assert!(matches!(family, Family::Hardware { f16: true, .. }), "software and hardware kernels run anywhere");
            continue;
        };
        let mut cpu = Cpu::default();
        let mut rng = Rng(7);
        // Windows that start inside a chunk and on a chunk's boundary.
        for (n_head, n_head_kv, head_dim, window) in
            [(9, 3, 64, None), (4, 1, 256, None), (4, 1, 256, Some(50)), (9, 3, 64, Some(64))]
        {
            let shape = Attention { n_head, n_head_kv, head_dim, scale: 1.0 / (head_dim as f32).sqrt(), window };
            let kv_dim = n_head_kv * head_dim;
            let mut gc = g.new_cache(&[window.map_or(150, |w| w + 3)], kv_dim).unwrap();
            let mut cc = cpu.new_cache(&[150], kv_dim).unwrap();
            for pos in 0..140 {
                let (q, k, v) = (rng.vec(n_head * head_dim, 4.0), rng.vec(kv_dim, 4.0), rng.vec(kv_dim, 2.0));
                let got = {
                    let (gq, gk, gv) = (g.act_from(1, n_head * head_dim, &q), g.act_from(1, kv_dim, &k), g.act_from(1, kv_dim, &v));
                    let o = g.attention(&gq, &gk, &gv, &mut gc, 0, pos, &shape);
                    read(&mut g, &o).await
                };
                let want = cpu.attention(&cpu_act(1, n_head * head_dim, &q), &cpu_act(1, kv_dim, &k), &cpu_act(1, kv_dim, &v), &mut cc, 0, pos, &shape).data;
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    let budget = attention_budget(family, &shape);
                    assert!(
                        (a - b).abs() as f64 <= budget,
                        "{} kernels, heads {n_head}/{n_head_kv}x{head_dim}, window {window:?} at {pos}, [{i}]: {a} vs {b}",
                        family.name()
                    );
                }
            }
        }
        }
    }
}

gpu_test! {
    /// The GPU's greedy token is the CPU sampler's: ties to the lowest index,
    /// NaN and -inf skipped, +inf taken, 0 when nothing is left.
    async fn argmax_picks_the_greedy_token() {
        let mut g = gpu().await;
        let mut rng = Rng(3);
        let n = 49152;
        let base = rng.vec(n, 10.0);
        let cases: Vec<(&str, Box<dyn Fn(&mut Vec<f32>)>)> = vec![
            ("random", Box::new(|_| {})),
            ("a tie", Box::new(|x| {
                x[40000] = 50.0;
                x[123] = 50.0;
                x[30000] = 50.0;
            })),
            ("NaN and -inf", Box::new(|x| {
                x[7] = f32::NAN;
                x[9] = f32::NEG_INFINITY;
                x[5] = 11.0;
            })),
            ("+inf", Box::new(|x| x[333] = f32::INFINITY)),
            ("nothing usable", Box::new(|x| {
                for (i, v) in x.iter_mut().enumerate() {
                    *v = if i % 2 == 0 { f32::NAN } else { f32::NEG_INFINITY };
                }
            })),
            ("all equal", Box::new(|x| x.iter_mut().for_each(|v| *v = -3.0))),
        ];
        for (what, edit) in cases {
            let mut x = base.clone();
            edit(&mut x);
            let a = g.act_from(1, n, &x);
            let got = g.argmax(&a).get().await;
            assert_eq!(got, webslm::sampler::greedy(&x), "{what}");
        }
    }
}

gpu_test! {
    /// A model the GPU cannot hold (here: the tiny model, with a binding limit
    /// below one layer's KV cache) goes to the CPU where the loader may hand it
    /// over, however the file is cut into chunks, and then generates what a CPU
    /// load does; where it may not, the load fails with the error's code before
    /// any weight was uploaded.
    async fn a_model_the_gpu_cannot_hold_goes_to_the_cpu_where_allowed() {
        let bytes = common::tiny_llama();
        let small_gpu = || async {
            let mut g = gpu().await;
            // The tiny model's cache: 128 positions of 32 f16 values a layer.
            g.limit_binding(4096);
            g
        };
        let greedy = || GenerateOptions { max_tokens: 6, ..GenerateOptions::default() };
        let mut reference = Session::load_bytes(&bytes, LoadOptions::default()).unwrap();
        let want: Vec<u32> = reference.generate(&[1, 40, 50], greedy()).unwrap().map(|p| p.token).collect();
        for chunk in [7, 300, bytes.len()] {
            let mut l = LoaderOrCpu::new(small_gpu().await, bytes.len() as u64, LoadOptions::default(), true);
            bytes.chunks(chunk).try_for_each(|c| l.push(c)).unwrap();
            let SessionOrCpu::Cpu(mut s) = l.finish().unwrap() else { panic!("chunks of {chunk}: the GPU took a model it cannot hold") };
            let got: Vec<u32> = s.generate(&[1, 40, 50], greedy()).unwrap().map(|p| p.token).collect();
            assert_eq!(got, want, "chunks of {chunk}");
        }
        let mut l = LoaderOrCpu::new(small_gpu().await, bytes.len() as u64, LoadOptions::default(), false);
        let e = bytes.chunks(300).try_for_each(|c| l.push(c)).unwrap_err();
        assert_eq!(e.code(), "OUT_OF_MEMORY", "{e}");
        assert!(e.to_string().contains("smaller context length"), "{e}");
        // With room for the cache, the GPU keeps a model whose formats it reads.
        let mut g = gpu().await;
        g.limit_binding(1 << 20);
        assert!(g.check_fits(&[], &[2048; 30], 192).is_ok());
        assert_eq!(g.check_fits(&[], &[4096; 30], 192).unwrap_err().code(), "OUT_OF_MEMORY");
        // Each layer as large as it is: rings of a window fit where the context would not.
        let mut gemma_like = [767; 30];
        gemma_like[5] = 2048;
        assert!(g.check_fits(&[], &gemma_like, 192).is_ok());
        gemma_like[11] = 4096;
        assert_eq!(g.check_fits(&[], &gemma_like, 192).unwrap_err().code(), "OUT_OF_MEMORY");
    }
}

gpu_test! {
    /// The tiny gemma3 end to end, its 64 positions past its 4-position window:
    /// the GPU's logits, from batches of 7 (attention_mat.wgsl) and from one
    /// token at a time (the decode kernels), its local layers' caches rings of
    /// 4 + 7 - 1 positions wrapped six times, are the CPU's (one batch, every
    /// position cached) within 1/16 of the largest logit. The backends differ by design in the matrix products (the CPU
    /// quantizes activations to 8 bits, the GPU multiplies them in f32), which
    /// seven layers carry to 2.1% of the largest logit here, at every position
    /// alike; attending past the window instead moves logits by 40% to 90%.
    async fn tiny_gemma3_logits_match_the_cpu_in_batches_and_token_by_token() {
        use webslm::session::Loader;
        let bytes = common::tiny_gemma();
        let mut cpu = Session::load_bytes(&bytes, LoadOptions::default()).unwrap();
        let tokens: Vec<u32> = (0..65).map(|i| 3 + (i * 37) % 250).collect();
        let want = logits(&mut cpu, &tokens, 1).await;
        for family in Family::ALL {
        let Some(device) = gpu_of(family).await else { continue };
        let options = LoadOptions { max_batch: Some(7), ..Default::default() };
        let mut loader = Loader::new(device, bytes.len() as u64, options);
        loader.push(&bytes).unwrap();
        let mut gpu: Session<Gpu> = loader.finish().unwrap();
        let batch = logits(&mut gpu, &tokens, 1).await;
        // Each prefix scored after the one before: the cache is reused, so one
        // token is fed at a time.
        let mut single = Vec::new();
        for n in 1..tokens.len() {
            single.push(logits(&mut gpu, &tokens[..n + 1], n).await.remove(0));
        }
        let max = want.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        for (how, got) in [("batch", &batch), ("token by token", &single)] {
            for (pos, (g, c)) in got.iter().zip(&want).enumerate() {
                for (id, (a, b)) in g.iter().zip(c).enumerate() {
                    assert!(
                        (a - b).abs() <= max / 16.0,
                        "{} kernels, {how}, position {pos}, token {id}: {a} vs {b} (max {max})",
                        family.name()
                    );
                }
            }
        }
        }
    }
}

/// Every logit at each position that predicts `tokens[n_prompt..]`.
async fn logits<B: Backend>(s: &mut Session<B>, tokens: &[u32], n_prompt: usize) -> Vec<Vec<f32>> {
    let n_vocab = s.hparams().n_vocab;
    let score = s.score_async(tokens, n_prompt, n_vocab).await.unwrap();
    score
        .tokens
        .iter()
        .map(|t| {
            let mut row = vec![0f32; n_vocab];
            t.top.iter().for_each(|c| row[c.id as usize] = c.logit);
            row
        })
        .collect()
}
