//! Rotary position embeddings from a table of angles on the GPU, made once
//! for a range of positions and the model's RoPE parameters.

use super::buffers::Act;
use super::Gpu;
use crate::model::Rope;
use wgpu::util::DeviceExt;

/// The RoPE angles of positions `0..positions` for one set of parameters.
pub(super) struct RopeTable {
    rope: Rope,
    positions: usize,
    buf: wgpu::Buffer,
}

pub(super) fn rope(gpu: &mut Gpu, x: &mut Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope) {
    let table = rope_table(gpu, rope, pos + x.rows);
    let pairs = rope.dims / 2;
    let params = [n_head as u32, head_dim as u32, pairs as u32, rope.neox as u32, pos as u32, x.rows as u32];
    let groups = [(n_head * pairs).div_ceil(64) as u32, x.rows as u32, 1];
    gpu.dispatch(("rope", ""), &params, &[&table, &x.buf], groups);
}

/// The angle table for `rope` covering positions `..end`.
fn rope_table(gpu: &mut Gpu, rope: &Rope, end: usize) -> wgpu::Buffer {
    if let Some(t) = gpu.rope_tables.iter().find(|t| &t.rope == rope && t.positions >= end) {
        return t.buf.clone();
    }
    let positions = end.next_power_of_two().max(1024);
    let mut data = Vec::with_capacity(positions * rope.dims);
    let mut angles = Vec::new();
    for pos in 0..positions {
        rope.angles(pos, &mut angles);
        data.extend(angles.iter().flat_map(|&(c, s)| [c, s]));
    }
    let buf = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("rope angles"),
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE,
    });
    gpu.rope_tables.retain(|t| &t.rope != rope);
    gpu.rope_tables.push(RopeTable { rope: rope.clone(), positions, buf: buf.clone() });
    buf
}
