//! How fast this CPU's decode GEMV reads a weight format, for `device:
//! 'auto'`: it expects a model's decode step on the CPU to take the model's
//! decode bytes ([`crate::session::ModelInfo::decode_bytes`]) over this rate,
//! and compares that with a timed decode on the GPU.

use super::{Act, Cpu};
use crate::gguf::TensorInfo;
use crate::model::Backend;
use crate::quant::GgmlType;

/// Columns of the calibration matrix: whole K-quant super-blocks.
const COLS: usize = 2048;
/// About this many bytes of weights: more than a CPU's caches hold, as a
/// model's are.
const BYTES: usize = 16 << 20;
/// Products timed, after one that warms the caches and the pool.
const REPEATS: usize = 8;

/// Bytes of `ty` weights the CPU backend multiplies a millisecond in a
/// one-token GEMV, on its threads where it has a pool; `now` is a clock in
/// milliseconds. `None` for a type the CPU backend has no kernel for.
pub fn gemv_bytes_per_ms(ty: GgmlType, now: &dyn Fn() -> f64) -> Option<f64> {
    if !ty.is_supported() {
        return None;
    }
    let row = ty.bytes_for(COLS as u64)? as usize;
    let rows = (BYTES / row).max(1);
    let info = TensorInfo {
        name: "calibration".into(),
        dims: vec![COLS as u64, rows as u64],
        ty,
        offset: 0,
        size: (rows * row) as u64,
    };
    // Small f16 scales, so that no weight is a NaN or an infinity: byte
    // patterns of 0x21 make every f16 in a block 2^-14·1.0x, every code 1.
    let data = vec![0x21u8; rows * row];
    let mut cpu = Cpu::default();
    let mut w = cpu.alloc(&info).ok()?;
    cpu.fill(&mut w, &info, 0, &data).ok()?;
    drop(data);
    let x = Act { rows: 1, cols: COLS, data: (0..COLS).map(|i| (i % 7) as f32 - 3.0).collect() };
    std::hint::black_box(cpu.matmul(&x, &w));
    let start = now();
    for _ in 0..REPEATS {
        std::hint::black_box(cpu.matmul(&x, &w));
    }
    let ms = (now() - start).max(1e-3);
    Some((REPEATS * rows * row) as f64 / ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_bytes_over_the_time() {
        let clock = std::time::Instant::now();
        let now = || clock.elapsed().as_secs_f64() * 1e3;
        for ty in [GgmlType::Q4_0, GgmlType::Q4K, GgmlType::Q8_0] {
            let rate = gemv_bytes_per_ms(ty, &now).unwrap();
            // Between 10 MB/s and 1 TB/s: a clock or a size gone wrong is
            // off by a thousand.
            assert!((1e4..1e9).contains(&rate), "{}: {rate} bytes/ms", ty.name());
        }
        assert!(gemv_bytes_per_ms(GgmlType::Iq2Xxs, &now).is_none());
    }
}
