//! Token embeddings: rows of the (quantized) table, dequantized.

use super::buffers::{Act, Weight};
use super::{layout, Gpu};

pub(super) fn embed(gpu: &mut Gpu, table: &Weight, tokens: &[u32]) -> Act {
    let Weight::Matrix { ty, cols, parts, .. } = table else { unreachable!("the embedding table is a matrix") };
    let kernel = ("embed", layout::Format::of(*ty).expect("checked at upload").name);
    let ids = Gpu::scratch(
        &gpu.device,
        &mut gpu.tokens,
        (tokens.len() * 4) as u64,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    );
    // The ids must land before this batch's dispatches and after the
    // last batch's: record-time order is kept by submitting first.
    gpu.submit();
    gpu.queue.write_buffer(&ids, 0, bytemuck::cast_slice(tokens));
    let out = gpu.act(tokens.len(), *cols);
    for part in parts {
        let params = [*cols as u32, part.rows as u32, part.row0 as u32, tokens.len() as u32];
        let groups = [(*cols / 32).div_ceil(64) as u32, tokens.len() as u32, 1];
        gpu.dispatch(kernel, &params, &[&part.buf, &ids, &out.buf], groups);
    }
    out
}
