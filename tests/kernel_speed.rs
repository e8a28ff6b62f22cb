//! How fast each format's matrix product runs on one thread, in wasm: a
//! by-hand probe (ignored by default, never a pass/fail timing), printing
//! multiply-adds a second for a prompt's batch and for one token.
//!
//! ```text
//! cargo test --release --target wasm32-unknown-unknown --test kernel_speed -- --include-ignored
//! WASM_BINDGEN_TEST_TIMEOUT=300 WASM_BINDGEN_USE_BROWSER=1 CARGO_TARGET_DIR=target/wasm-relaxed-simd \
//!   RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo test ... (the same)
//! ```
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use half::f16;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};
use webslm::quant::{self, GgmlType};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

/// TinyLlama-1.1B's attention output: 2048 × 2048.
const N: usize = 2048;
const ROWS: usize = 2048;

/// Random code bytes with every f16 field of the block set to a small scale.
fn weights(ty: GgmlType) -> Vec<u8> {
    let (block, size) = ty.block_layout();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut data: Vec<u8> = (0..ROWS * N / block * size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let fields: &[usize] = match ty {
        GgmlType::Q6K => &[208],
        GgmlType::Q4_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        _ => &[0],
    };
    for b in data.chunks_exact_mut(size) {
        for &at in fields {
            b[at..at + 2].copy_from_slice(&f16::from_f32(0.01).to_le_bytes());
        }
    }
    if quant::packed::is_packed(ty) {
        let mut scratch = Vec::new();
        for group in data.chunks_exact_mut(4 * N / block * size) {
            quant::packed::pack_group(ty, group, &mut scratch);
        }
    }
    data
}

fn gmacs(ty: GgmlType, w: &[u8], tokens: usize) -> f64 {
    let a_row = quant::act_row_bytes(ty, N);
    let x: Vec<f32> = (0..N).map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0).collect();
    let mut act = vec![0u8; a_row * tokens];
    for dst in act.chunks_exact_mut(a_row) {
        quant::quantize_act_row(ty, &x, dst);
    }
    let mut out = vec![0f32; ROWS * tokens];
    quant::matmul(ty, N, w, 0..ROWS, &act, &mut out, ROWS);
    // The fastest sample of 10 ms or more (the browser's clock is coarse) in
    // two seconds: other processes on the machine slow some samples down,
    // none speeds one up.
    let t = now();
    quant::matmul(ty, N, w, 0..ROWS, &act, &mut out, ROWS);
    let reps = (10.0 / (now() - t).max(0.1)).ceil() as usize;
    let (start, mut best) = (now(), f64::INFINITY);
    while now() - start < 2000.0 {
        let t = now();
        for _ in 0..reps {
            quant::matmul(ty, N, w, 0..ROWS, &act, &mut out, ROWS);
        }
        best = best.min((now() - t) / reps as f64);
    }
    (ROWS * N * tokens) as f64 / (best * 1e6)
}

/// Packing at load: megabytes of weights a second.
#[wasm_bindgen_test]
#[ignore]
fn packing_speed() {
    for ty in [GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4K, GgmlType::Q6K] {
        let (block, size) = ty.block_layout();
        let mut data = weights(ty);
        let (mut scratch, group) = (Vec::new(), 4 * N / block * size);
        let (start, mut bytes) = (now(), 0f64);
        while now() - start < 1000.0 {
            for g in data.chunks_exact_mut(group) {
                quant::packed::pack_group(ty, g, &mut scratch);
            }
            bytes += data.len() as f64;
        }
        console_log!("{:5} packing: {:.0} MB/s", ty.name(), bytes / ((now() - start) * 1e3));
    }
}

#[wasm_bindgen_test]
#[ignore]
fn matmul_speed() {
    use GgmlType::*;
    // The relaxed build's packed kernels as dispatched, then with each summation.
    #[cfg(target_feature = "relaxed-simd")]
    let summations =
        [("", None), (" i32", Some(quant::simd128::Summation::I32)), (" i16", Some(quant::simd128::Summation::I16))];
    #[cfg(not(target_feature = "relaxed-simd"))]
    let summations = [("", ())];
    for ty in [Q4_0, Q4_1, Q5_0, Q8_0, Q4K, Q5K, Q6K] {
        let w = weights(ty);
        for (how, _s) in summations {
            if !how.is_empty() && !quant::packed::is_packed(ty) {
                continue;
            }
            #[cfg(target_feature = "relaxed-simd")]
            quant::simd128::set_summation(_s);
            let (prompt, token) = (gmacs(ty, &w, 64), gmacs(ty, &w, 1));
            let gbs = token * 1e9 * w.len() as f64 / (ROWS * N) as f64 / 1e9;
            console_log!(
                "{:9} prompt of 64: {prompt:6.2} GMAC/s   one token: {token:5.2} GMAC/s ({gbs:.1} GB/s of weights)",
                format!("{}{how}", ty.name())
            );
        }
    }
}
