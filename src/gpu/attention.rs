//! Attention over the KV cache: the new keys and values stored (`kv_store`),
//! then one token's attention split over chunks of the cache
//! (`attention_vec*`; the hardware family scores a chunk with a workgroup,
//! a lane a position), or a batch's (`attention_mat`). With f16 the scores'
//! products are f16 (the `_f16` kernels).

use super::buffers::{Act, Cache};
use super::pipelines::precise;
use super::{grid, Family, Gpu};
use crate::model::{self, Attention};

#[allow(clippy::too_many_arguments)]
pub(super) fn attention(
    gpu: &mut Gpu,
    q: &Act,
    k: &Act,
    v: &Act,
    cache: &mut Cache,
    layer: usize,
    pos: usize,
    shape: &Attention,
) -> Act {
    let (kv_dim, ring) = (cache.kv_dim, cache.positions[layer]);
    assert!(
        model::attention_span(pos, q.rows, shape.window) <= ring,
        "a batch of {} at {pos} reads more positions than layer {layer}'s {ring}",
        q.rows
    );
    let (kc, vc) = (cache.k[layer].clone(), cache.v[layer].clone());
    let params = [kv_dim as u32, pos as u32, k.rows as u32, ring as u32];
    let groups = [(kv_dim / 2).div_ceil(64) as u32, k.rows as u32, 1];
    gpu.dispatch(("kv_store", ""), &params, &[&k.buf, &v.buf, &kc, &vc], groups);
    if q.rows == 1 {
        return attention_vec(gpu, q, &kc, &vc, ring, kv_dim, pos + 1, shape);
    }
    // Query rows a workgroup: as many as attention_mat.wgsl's 512 query
    // pairs hold, a power of two (its 64 threads split evenly over
    // them), at most 16.
    let rows = 1 << (1024 / shape.head_dim).clamp(1, 16).ilog2();
    let out = gpu.act(q.rows, shape.n_head * shape.head_dim);
    let params = [
        shape.n_head as u32,
        (shape.n_head / shape.n_head_kv) as u32,
        shape.head_dim as u32,
        kv_dim as u32,
        pos as u32,
        shape.scale.to_bits(),
        q.rows as u32,
        rows as u32,
        shape.window.unwrap_or(0) as u32,
        ring as u32,
    ];
    let groups = [shape.n_head as u32, q.rows.div_ceil(rows) as u32, 1];
    let kernel = precise(gpu.family, "attention_mat");
    gpu.dispatch((kernel, ""), &params, &[&q.buf, &kc, &vc, &out.buf], groups);
    out
}

/// One token's attention over `seen` positions of a layer's cache (`kc`,
/// `vc`, a ring of `ring` positions), split over chunks of positions
/// (`shaders/attention_vec*.wgsl`). The scratch buffers are sized for the
/// whole ring, so that every token gets the same pooled buffers and bind
/// groups.
#[allow(clippy::too_many_arguments)]
fn attention_vec(
    gpu: &mut Gpu,
    q: &Act,
    kc: &wgpu::Buffer,
    vc: &wgpu::Buffer,
    ring: usize,
    kv_dim: usize,
    seen: usize,
    shape: &Attention,
) -> Act {
    const CHUNK: usize = 32;
    let (n_head, hd) = (shape.n_head, shape.head_dim);
    let group = n_head / shape.n_head_kv;
    let first = shape.window.map_or(0, |w| seen.saturating_sub(w));
    let (n_chunks, max_chunks) = ((seen - first).div_ceil(CHUNK), ring.div_ceil(CHUNK));
    let scores = gpu.act(n_head, ring);
    let stats = gpu.act(n_head, 2 * max_chunks);
    let partial = gpu.act(n_head * max_chunks, hd);
    let out = gpu.act(1, n_head * hd);
    let [n_head, group, hd, kv_dim, seen, n_chunks, first, ring] =
        [n_head, group, hd, kv_dim, seen, n_chunks, first, ring].map(|x| x as u32);
    let scale = shape.scale.to_bits();
    let threads = |n: u32| grid((n as usize).div_ceil(64));
    // The scores: a thread a (head, chunk) in software, a workgroup (a lane
    // a position) on hardware.
    let (scores_kernel, scores_groups) = match gpu.family {
        Family::Software => ("attention_vec_scores", threads(n_head * n_chunks)),
        Family::Hardware { .. } => {
            (precise(gpu.family, "attention_vec_scores_coop"), grid((n_head * n_chunks) as usize))
        }
    };
    gpu.dispatch(
        (scores_kernel, ""),
        &[n_head, group, hd, kv_dim, seen, scale, n_chunks, ring, first],
        &[&q.buf, kc, &scores.buf, &stats.buf],
        scores_groups,
    );
    gpu.dispatch(
        ("attention_vec", ""),
        &[n_head, group, hd, kv_dim, seen, n_chunks, ring, first],
        &[&stats.buf, &scores.buf, vc, &partial.buf],
        threads(n_head * n_chunks * hd),
    );
    gpu.dispatch(
        ("attention_vec_reduce", ""),
        &[n_head, hd, n_chunks],
        &[&partial.buf, &out.buf],
        threads(n_head * hd),
    );
    out
}
