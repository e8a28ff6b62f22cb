//! The CPU backend: weights stay in their GGUF blocks in host memory, and
//! matrix products run the integer dot-product kernels of [`crate::quant`].

#[doc(hidden)]
pub mod calibrate;
pub mod kernels;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[doc(hidden)]
pub mod simd128;

mod parallel;

pub use parallel::threads;

/// The float loops of attention and the feed-forward, by instruction set (as
/// `quant`'s kernels).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use kernels as ops;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128 as ops;

use crate::gguf::TensorInfo;
use crate::model::{self, Attention, Backend, Readback, Rope};
use crate::quant::{self, GgmlType};
use crate::{Error, Result};
use half::f16;

/// Runs the ops on the calling thread, matrix products and attention split
/// over a thread pool where there is one ([`parallel`]).
#[derive(Default)]
pub struct Cpu {
    /// Reused buffer for activations quantized to a weight's dot-product type.
    act_q: Vec<u8>,
    /// The RoPE angles last computed for each set of parameters: every layer
    /// of a forward pass rotates the same positions.
    rope_angles: Vec<RopeAngles>,
    /// Working space of `quant::packed`: a group of rows as it is packed, a
    /// row of the embedding table as it is unpacked.
    pack_scratch: Vec<u8>,
}

/// The (cos, sin) pairs of positions `start..` for `rope`, `rope.dims / 2` a position.
struct RopeAngles {
    rope: Rope,
    start: usize,
    angles: Vec<(f32, f32)>,
}

pub enum Weight {
    /// A matrix of `rows` rows of `cols` elements, in `ty`'s blocks (in
    /// groups of four interleaved rows where `quant::packed` packs `ty`).
    Matrix { ty: GgmlType, rows: usize, cols: usize, data: Vec<u8> },
    /// A vector (norm weights), dequantized once at load.
    Vector(Vec<f32>),
}

/// A row-major activation matrix.
#[derive(Clone, Debug)]
pub struct Act {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Act {
    fn zeros(rows: usize, cols: usize) -> Act {
        Act { rows, cols, data: vec![0.0; rows * cols] }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Rows `from..to` as a new activation.
    #[cfg(test)]
    fn slice(&self, from: usize, to: usize) -> Act {
        Act { rows: to - from, cols: self.cols, data: self.data[from * self.cols..to * self.cols].to_vec() }
    }
}

/// Keys and values of every layer, in f16 as llama.cpp keeps them: half the
/// memory of f32, and the same rounding as the reference. Layer `i` is a
/// ring of `positions[i]` rows (see [`Backend::new_cache`]), held in pages
/// of [`PAGE`] rows allocated as the positions are first written: memory
/// follows the context used, not the context allowed, and pages of one size
/// leave no holes in a wasm memory that never shrinks.
pub struct Cache {
    positions: Vec<usize>,
    kv_dim: usize,
    k: Vec<Vec<Vec<f16>>>,
    v: Vec<Vec<Vec<f16>>>,
}

/// Rows of a KV cache page: at most 63 positions a layer are held unused
/// (TinyLlama-1.1B's 22 layers: 1.4 MiB; pages of 256 left up to 5.6 MiB).
const PAGE: usize = 64;

impl Cache {
    /// Allocates the pages of `layer` that its slots `0..slots` need.
    fn grow(&mut self, layer: usize, slots: usize) {
        let ring = self.positions[layer];
        let pages = slots.min(ring).div_ceil(PAGE);
        for list in [&mut self.k[layer], &mut self.v[layer]] {
            while list.len() < pages {
                let rows = PAGE.min(ring - list.len() * PAGE);
                list.push(vec![f16::ZERO; rows * self.kv_dim]);
            }
        }
    }
}

/// Allocates `n` zeroed elements, reporting failure instead of aborting.
fn try_zeroed<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory(format!("{what}: {n} elements")))?;
    v.resize(n, T::default());
    Ok(v)
}

/// The memory this engine can address: 4 GiB for wasm32, whose linear
/// memory never grows past it (natively, the allocator says when it fails).
const ADDRESSABLE: u64 = if cfg!(target_pointer_width = "32") { 1 << 32 } else { u64::MAX };

/// What a forward pass needs beside the weights and the cache (activations,
/// the logits, the tokenizer and the loader's buffers), with room to spare.
const WORKING_MEMORY: u64 = 128 << 20;

/// Refuses, from the header alone, a model whose weights (matrices as they
/// are in the file, vectors widened to f32), KV cache and working memory
/// exceed `available` bytes, saying which part to make smaller.
fn fits_in(available: u64, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
    let weights: u64 = tensors.iter().map(|t| if t.dims.len() == 1 { t.n_elements() * 4 } else { t.size }).sum();
    let per_position = (kv_dim * 2 * std::mem::size_of::<f16>()) as u64;
    let cache: u64 = positions.iter().map(|&p| p as u64 * per_position).sum();
    if weights.saturating_add(cache).saturating_add(WORKING_MEMORY) <= available {
        return Ok(());
    }
    let mib = |b: u64| format!("{} MiB", b.div_ceil(1 << 20));
    let context = positions.iter().max().copied().unwrap_or(0);
    let what = format!(
        "this model needs {} of weights, {} of KV cache for {context} positions and {} to work in, more than the {} \
         this engine can still address (wasm32 has 4 GiB)",
        mib(weights),
        mib(cache),
        mib(WORKING_MEMORY),
        mib(available)
    );
    let advice = if weights + WORKING_MEMORY <= available {
        let layers_per_position: u64 = positions.iter().map(|&p| (p == context) as u64).sum::<u64>().max(1);
        let room = (available - weights - WORKING_MEMORY) / (per_position * layers_per_position);
        format!("load with a smaller contextLength (at most about {room}), or run it on WebGPU (device: 'webgpu')")
    } else {
        "choose a smaller quantization of it (Q4_0 or Q4_K_M), or run it on WebGPU (device: 'webgpu')".to_string()
    };
    Err(Error::OutOfMemory(format!("{what}: {advice}")))
}

impl Cpu {
    /// `x` times the rows of `ws` one after another (whose activation rows
    /// agree: `quant::act_row_bytes`): the activations are quantized once,
    /// and threads take blocks of output columns (weight rows, in fours: the
    /// kernel's tile), each for every token, across the weights' boundaries.
    fn matmul_concat(&mut self, x: &Act, ws: &[&Weight]) -> Act {
        let mats: Vec<(GgmlType, usize, &[u8])> = ws
            .iter()
            .map(|w| match w {
                Weight::Matrix { ty, rows, cols, data } => {
                    debug_assert_eq!(x.cols, *cols);
                    (*ty, *rows, &data[..])
                }
                Weight::Vector(_) => unreachable!("matmul takes a matrix"),
            })
            .collect();
        let cols = x.cols;
        let ty = mats[0].0;
        let act_row = quant::act_row_bytes(ty, cols);
        self.act_q.resize(act_row * x.rows, 0);
        // A prompt's rows are quantized on every thread (a few multiply-adds
        // an element; one token's row is not worth a second thread).
        parallel::for_chunks(&mut self.act_q, act_row, 1, parallel::MIN_WORK / (4 * cols).max(1), |first, dst| {
            for (src, dst) in x.data[first * cols..].chunks_exact(cols).zip(dst.chunks_exact_mut(act_row)) {
                quant::quantize_act_row(ty, src, dst);
            }
        });
        let (tokens, acts) = (x.rows, &self.act_q);
        let total: usize = mats.iter().map(|m| m.1).sum();
        let mut out = Act::zeros(tokens, total);
        let min_rows = parallel::MIN_WORK / (cols * tokens).max(1);
        // Runs the rows `first..first + n` of the concatenation, writing
        // token t's products at `out[t * stride + row - first]`.
        let product = |first: usize, n: usize, out: &mut [f32], stride: usize| {
            let mut start = 0;
            for &(ty, rows, data) in &mats {
                let (lo, hi) = (first.max(start), (first + n).min(start + rows));
                if lo < hi {
                    quant::matmul(ty, cols, data, lo - start..hi - start, acts, &mut out[lo - first..], stride);
                }
                start += rows;
            }
        };
        parallel::for_blocks(&mut out.data, total, 1, 4, min_rows, |first, mut block| {
            let n = block.row(0).len();
            if let Some(whole) = block.contiguous() {
                return product(first, n, whole, n);
            }
            parallel::with_scratch(|products| {
                products.resize(n * tokens, 0.0);
                product(first, n, products, n);
                for t in 0..tokens {
                    block.row(t).copy_from_slice(&products[t * n..][..n]);
                }
            })
        });
        out
    }
}

impl Backend for Cpu {
    type Weight = Weight;
    type Act = Act;
    type Cache = Cache;

    fn check_fits(&self, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
        fits_in(ADDRESSABLE.saturating_sub(crate::heap::in_use()), tensors, positions, kv_dim)
    }

    fn alloc(&mut self, info: &TensorInfo) -> Result<Weight> {
        let cols = info.dims[0] as usize;
        if info.dims.len() == 1 {
            return Ok(Weight::Vector(try_zeroed(cols, &info.name)?));
        }
        let rows = (info.n_elements() / info.dims[0]) as usize;
        let mut data = Vec::new();
        data.try_reserve_exact(info.size as usize)
            .map_err(|_| Error::OutOfMemory(format!("tensor `{}`: {} bytes", info.name, info.size)))?;
        Ok(Weight::Matrix { ty: info.ty, rows, cols, data })
    }

    fn fill(&mut self, w: &mut Weight, info: &TensorInfo, first: u64, bytes: &[u8]) -> Result<()> {
        match w {
            // A vector is one row: it comes whole.
            Weight::Vector(v) => quant::dequantize_row(info.ty, bytes, v),
            Weight::Matrix { ty, data, .. } => {
                let row = info.row_bytes() as usize;
                debug_assert_eq!(data.len(), first as usize * row, "rows come in order");
                // Within the capacity reserved at alloc: no reallocation.
                let packed = data.len() / (4 * row);
                data.extend_from_slice(bytes);
                if quant::packed::is_packed(*ty) {
                    for group in data[packed * 4 * row..].chunks_exact_mut(4 * row) {
                        quant::packed::pack_group(*ty, group, &mut self.pack_scratch);
                    }
                }
            }
        }
        Ok(())
    }

    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Cache> {
        // Checked whole before any layer is allocated, so an impossible
        // context fails at once instead of after growing memory for layers.
        let context = positions.iter().max().copied().unwrap_or(0);
        model::cache_bytes(positions, kv_dim).filter(|&bytes| bytes <= isize::MAX as usize).ok_or_else(|| {
            Error::OutOfMemory(format!(
                "a KV cache of {context} positions does not fit in this device's memory; load with a smaller context length"
            ))
        })?;
        let layers = vec![Vec::new(); positions.len()];
        Ok(Cache { positions: positions.to_vec(), kv_dim, k: layers.clone(), v: layers })
    }

    fn rows(&self, x: &Act) -> usize {
        x.rows
    }

    fn embed(&mut self, table: &Weight, tokens: &[u32]) -> Act {
        let Weight::Matrix { ty, rows, cols, data } = table else { unreachable!("the embedding table is a matrix") };
        let row_bytes = ty.bytes_for(*cols as u64).expect("checked at load") as usize;
        let mut out = Act::zeros(tokens.len(), *cols);
        for (t, dst) in tokens.iter().zip(out.data.chunks_exact_mut(*cols)) {
            // Ids are checked against the vocabulary before a forward pass.
            let r = (*t as usize).min(rows - 1);
            quant::dequantize_row(*ty, quant::packed::file_row(*ty, data, row_bytes, r, &mut self.pack_scratch), dst);
        }
        out
    }

    fn rms_norm(&mut self, x: &Act, weight: &Weight, eps: f32) -> Act {
        let Weight::Vector(w) = weight else { unreachable!("norm weights are vectors") };
        let mut out = Act::zeros(x.rows, x.cols);
        // A prompt's rows are split over the threads (its sums are f64).
        parallel::for_chunks(&mut out.data, x.cols, 1, parallel::MIN_WORK / x.cols.max(1), |first, dst| {
            for (src, dst) in x.data[first * x.cols..].chunks_exact(x.cols).zip(dst.chunks_exact_mut(x.cols)) {
                kernels::rms_norm(src, w, eps, dst);
            }
        });
        out
    }

    fn layer_norm(&mut self, x: &Act, weight: &Weight, bias: &Weight, eps: f32) -> Act {
        let (Weight::Vector(w), Weight::Vector(b)) = (weight, bias) else { unreachable!("norm weights are vectors") };
        let mut out = Act::zeros(x.rows, x.cols);
        parallel::for_chunks(&mut out.data, x.cols, 1, parallel::MIN_WORK / x.cols.max(1), |first, dst| {
            for (src, dst) in x.data[first * x.cols..].chunks_exact(x.cols).zip(dst.chunks_exact_mut(x.cols)) {
                kernels::layer_norm(src, w, b, eps, dst);
            }
        });
        out
    }

    fn matmul(&mut self, x: &Act, w: &Weight) -> Act {
        self.matmul_concat(x, &[w])
    }

    fn matmuls<const N: usize>(&mut self, x: &Act, ws: [&Weight; N]) -> [Act; N] {
        let act_row = |w: &Weight| match w {
            Weight::Matrix { ty, cols, .. } => (quant::vec_dot_type(*ty), quant::act_row_bytes(*ty, *cols)),
            Weight::Vector(_) => unreachable!("matmul takes a matrix"),
        };
        if ws.iter().any(|w| act_row(w) != act_row(ws[0])) {
            return ws.map(|w| self.matmul(x, w));
        }
        let all = self.matmul_concat(x, &ws);
        let mut start = 0;
        ws.map(|w| {
            let Weight::Matrix { rows, .. } = w else { unreachable!("checked above") };
            let mut out = Act::zeros(x.rows, *rows);
            for (dst, src) in out.data.chunks_exact_mut(*rows).zip(all.data.chunks_exact(all.cols)) {
                dst.copy_from_slice(&src[start..start + rows]);
            }
            start += rows;
            out
        })
    }

    fn rope(&mut self, x: &mut Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope) {
        let half = rope.dims / 2;
        let i = match self.rope_angles.iter().position(|a| &a.rope == rope) {
            Some(i) => i,
            None => {
                self.rope_angles.push(RopeAngles { rope: rope.clone(), start: 0, angles: Vec::new() });
                self.rope_angles.len() - 1
            }
        };
        let cached = &mut self.rope_angles[i];
        if cached.start != pos || cached.angles.len() != x.rows * half {
            let mut angles = Vec::with_capacity(half);
            cached.angles.clear();
            for p in pos..pos + x.rows {
                rope.angles(p, &mut angles);
                cached.angles.extend_from_slice(&angles);
            }
            cached.start = pos;
        }
        for (row, angles) in x.data.chunks_exact_mut(x.cols).zip(cached.angles.chunks_exact(half.max(1))) {
            for head in row.chunks_exact_mut(head_dim).take(n_head) {
                kernels::rope(head, angles, rope.neox);
            }
        }
    }

    fn attention(
        &mut self,
        q: &Act,
        k: &Act,
        v: &Act,
        cache: &mut Cache,
        layer: usize,
        pos: usize,
        shape: &Attention,
    ) -> Act {
        // Positions the batch reads: a row sees at most that many.
        let span = model::attention_span(pos, q.rows, shape.window);
        let (kv_dim, ring) = (cache.kv_dim, cache.positions[layer]);
        assert!(span <= ring, "a batch of {} at {pos} reads more positions than layer {layer}'s {ring}", q.rows);
        cache.grow(layer, pos + k.rows);
        let (kc, vc) = (&mut cache.k[layer], &mut cache.v[layer]);
        for i in 0..k.rows {
            let slot = (pos + i) % ring;
            let (page, at) = (slot / PAGE, slot % PAGE * kv_dim);
            for (d, s) in kc[page][at..at + kv_dim].iter_mut().zip(k.row(i)) {
                *d = f16::from_f32(*s);
            }
            for (d, s) in vc[page][at..at + kv_dim].iter_mut().zip(v.row(i)) {
                *d = f16::from_f32(*s);
            }
        }
        let kv = CacheView { k: &cache.k[layer], v: &cache.v[layer], ring, kv_dim };
        if q.rows == 1 {
            one_token_attention(q, &kv, pos, shape)
        } else {
            attention_by_groups(q, &kv, pos, span, shape)
        }
    }

    fn swiglu(&mut self, gate: &Act, up: &Act) -> Act {
        let mut out = Act::zeros(gate.rows, gate.cols);
        // A prompt's rows are split over the threads; one token's row is not
        // worth a region (timed: splitting it slowed decode).
        parallel::for_chunks(&mut out.data, 1, 1, parallel::MIN_WORK / 2, |first, dst| {
            ops::silu_mul(&gate.data[first..], &up.data[first..], dst);
        });
        out
    }

    fn geglu(&mut self, gate: &Act, up: &Act) -> Act {
        let mut out = Act::zeros(gate.rows, gate.cols);
        kernels::gelu_table();
        parallel::for_chunks(&mut out.data, 1, 1, parallel::MIN_WORK / 8, |first, dst| {
            kernels::gelu_mul(&gate.data[first..], &up.data[first..], dst);
        });
        out
    }

    fn gelu(&mut self, x: &Act) -> Act {
        let mut out = Act::zeros(x.rows, x.cols);
        kernels::gelu_table();
        parallel::for_chunks(&mut out.data, 1, 1, parallel::MIN_WORK / 8, |first, dst| {
            kernels::gelu_row(&x.data[first..], dst);
        });
        out
    }

    fn scale(&mut self, x: &mut Act, s: f32) {
        for v in &mut x.data {
            *v *= s;
        }
    }

    fn reshape(&mut self, x: Act, rows: usize, cols: usize) -> Act {
        assert_eq!(rows * cols, x.rows * x.cols, "reshape keeps the values");
        Act { rows, cols, data: x.data }
    }

    fn add(&mut self, x: &mut Act, y: &Act) {
        for (a, b) in x.data.iter_mut().zip(&y.data) {
            *a += b;
        }
    }

    fn add_bias(&mut self, x: &mut Act, bias: &Weight) {
        let Weight::Vector(b) = bias else { unreachable!("a bias is a vector") };
        for row in x.data.chunks_exact_mut(x.cols) {
            for (a, b) in row.iter_mut().zip(b) {
                *a += b;
            }
        }
    }

    fn rows_from(&mut self, x: &Act, first: usize) -> Act {
        Act { rows: x.rows - first, cols: x.cols, data: x.data[first * x.cols..].to_vec() }
    }

    fn read(&mut self, x: &Act) -> Readback<Vec<f32>> {
        Readback::Ready(x.data.clone())
    }
}

/// One layer's cache, read by attention: position `j` at slot `j % ring`.
struct CacheView<'a> {
    k: &'a [Vec<f16>],
    v: &'a [Vec<f16>],
    ring: usize,
    kv_dim: usize,
}

impl CacheView<'_> {
    /// Position `p`'s keys.
    fn k(&self, p: usize) -> &[f16] {
        self.row(self.k, p)
    }

    /// Position `p`'s values.
    fn v(&self, p: usize) -> &[f16] {
        self.row(self.v, p)
    }

    fn row<'b>(&self, pages: &'b [Vec<f16>], p: usize) -> &'b [f16] {
        let slot = p % self.ring;
        &pages[slot / PAGE][slot % PAGE * self.kv_dim..][..self.kv_dim]
    }
}

/// Positions `start..end` that a token at `p` attends to: all up to its own,
/// or its window.
fn attended(p: usize, window: Option<usize>) -> (usize, usize) {
    let end = p + 1;
    (window.map_or(0, |w| end.saturating_sub(w)), end)
}

/// Queries and attention weights are rounded to f16 before meeting the f16
/// cache, as llama.cpp's attention does: SmolLM2 amplifies such rounding
/// differences into tenths of a logit.
fn to_f16_precision(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Tokens a tile of [`attention_by_groups`] takes at most: each cache row
/// it widens to f32 serves that many tokens' queries. Products cost the same
/// in any tile (each four queries meet only their own positions); at 32,
/// widening takes some 4% of SmolLM2's prefill attention (10% at 16).
const TILE: usize = 32;

/// The most scores a tile holds (1 MiB): long spans (Gemma 3's 32K context,
/// four heads a group) get tiles of fewer tokens, down to one.
const TILE_SCORES: usize = 1 << 18;

/// Cache rows widened at a time: the chunk's keys, transposed (8 KiB at
/// head size 64, 32 KiB at 256), stay in L1 while every query of a tile
/// reads them, and each query's scores come 32 keys a pass.
const CHUNK: usize = 32;

/// Attention of a batch's rows at `pos..`, threads taking units of a tile
/// of consecutive tokens and one group of query heads sharing a key/value
/// head: each cache row is widened to f32 once for the tile's tokens and the
/// group's heads, a chunk at a time, and transposed for `ops::dot_keys`.
/// Every score is the same sum as [`one_token_attention`]'s, and every
/// output the same sum, in the same order, as one `ops::axpy` a position,
/// whatever the tiles and threads.
/// Units write their tiles' outputs to a buffer of their own, copied into
/// the result's rows afterwards (a token's row holds every group).
fn attention_by_groups(q: &Act, kv: &CacheView<'_>, pos: usize, span: usize, shape: &Attention) -> Act {
    let hd = shape.head_dim;
    let (n_kv, group) = (shape.n_head_kv, shape.n_head / shape.n_head_kv);
    let (tokens, unit, width) = (q.rows, group * hd, shape.n_head * hd);
    let mut tile = (TILE_SCORES / (group * span).max(1)).clamp(1, TILE);
    let threads = parallel::threads();
    if threads > 1 {
        // Enough units for every thread to take several.
        tile = tile.min(tokens * n_kv / (4 * threads)).max(1);
    }
    let staged_unit = tile * unit;
    let mut staged = vec![0.0; tokens.div_ceil(tile) * n_kv * staged_unit];
    // One unit's tokens `first..first + n` with group `g`'s heads, written
    // to `dst` (zeroed) token by token, `unit` values each.
    let attend = |first: usize, g: usize, scratch: &mut Vec<f32>, dst: &mut [f32]| {
        let n = tile.min(tokens - first);
        let range = |t: usize| attended(pos + first + t, shape.window);
        // The positions any of the tile's tokens attends to.
        let (lo, hi) = (range(0).0, range(n - 1).1);
        let (queries, len) = (n * group, hi - lo);
        scratch.resize(queries * hd + 2 * CHUNK * hd + queries * len, 0.0);
        let (qs, rest) = scratch.split_at_mut(queries * hd);
        let (rows, rest) = rest.split_at_mut(CHUNK * hd);
        let (keys, scores) = rest.split_at_mut(CHUNK * hd);
        for (t, qs) in qs.chunks_exact_mut(unit).enumerate() {
            qs.copy_from_slice(&q.row(first + t)[g * unit..(g + 1) * unit]);
        }
        ops::round_to_f16(qs);
        // Query `i` (token `i / group`) has a row of `len` scores, of which
        // it fills and reads those of its own positions.
        for c in (lo..hi).step_by(CHUNK) {
            let end = (c + CHUNK).min(hi);
            for (j, row) in (c..end).zip(rows.chunks_exact_mut(hd)) {
                ops::widen_f16(&kv.k(j)[g * hd..][..hd], row);
            }
            ops::transpose(&rows[..(end - c) * hd], hd, keys, CHUNK);
            for (i, q) in qs.chunks_exact(hd).enumerate() {
                let (start, stop) = range(i / group);
                let (from, to) = (start.max(c), stop.min(end));
                if from < to {
                    ops::dot_keys(q, &keys[from - c..], CHUNK, shape.scale, &mut scores[i * len..][from - lo..to - lo]);
                }
            }
        }
        for (i, s) in scores.chunks_exact_mut(len).take(queries).enumerate() {
            let (start, end) = range(i / group);
            let s = &mut s[start - lo..end - lo];
            ops::softmax(s);
            ops::round_to_f16(s);
        }
        for c in (lo..hi).step_by(CHUNK) {
            let end = (c + CHUNK).min(hi);
            for (j, row) in (c..end).zip(rows.chunks_exact_mut(hd)) {
                ops::widen_f16(&kv.v(j)[g * hd..][..hd], row);
            }
            for (i, out) in dst.chunks_exact_mut(hd).take(queries).enumerate() {
                let (start, stop) = range(i / group);
                let (from, to) = (start.max(c), stop.min(end));
                if from < to {
                    let p = &scores[i * len..][from - lo..to - lo];
                    ops::weighted_sum(p, &rows[(from - c) * hd..(to - c) * hd], out);
                }
            }
        }
    };
    let min_units = parallel::MIN_WORK / (2 * span * staged_unit).max(1);
    parallel::for_chunks(&mut staged, staged_unit, 1, min_units, |first, dst| {
        parallel::with_scratch(|scratch| {
            for (u, dst) in (first..).zip(dst.chunks_exact_mut(staged_unit)) {
                attend(u / n_kv * tile, u % n_kv, scratch, dst);
            }
        })
    });
    let mut out = Act::zeros(tokens, width);
    for (u, staged) in staged.chunks_exact(staged_unit).enumerate() {
        let (first, g) = (u / n_kv * tile, u % n_kv);
        for (row, src) in out.data[first * width..].chunks_exact_mut(width).zip(staged.chunks_exact(unit)) {
            row[g * unit..(g + 1) * unit].copy_from_slice(src);
        }
    }
    out
}

/// Positions a run of [`one_token_attention`]'s weighted sum of values takes.
const VALUE_RUN: usize = 32;

/// One token's attention (decode), split over threads by positions rather
/// than by groups of heads: a token has only `n_head_kv` groups (one in
/// Gemma 3, three in SmolLM2), too few to keep two threads equally busy.
/// Scores are [`attention_by_groups`]'s bit for bit. Values are summed over
/// fixed runs of [`VALUE_RUN`] positions, each run in order, and the runs'
/// sums added in order: a rounding different from one sum over every
/// position, but the same whoever took which run, so that the result does
/// not depend on the number of threads.
fn one_token_attention(q: &Act, kv: &CacheView<'_>, pos: usize, shape: &Attention) -> Act {
    let hd = shape.head_dim;
    let (n_head, n_kv, group) = (shape.n_head, shape.n_head_kv, shape.n_head / shape.n_head_kv);
    let width = n_head * hd;
    let (start, end) = attended(pos, shape.window);
    let seen = end - start;
    let qs: Vec<f32> = q.row(0).iter().map(|&x| to_f16_precision(x)).collect();
    // Scores as n_head rows of `seen`, threads taking runs of positions.
    let mut scores = vec![0.0; n_head * seen];
    parallel::for_blocks(&mut scores, seen, 1, 1, parallel::MIN_WORK / width.max(1), |first, mut block| {
        parallel::with_scratch(|scratch| {
            scratch.resize(2 * CHUNK * hd, 0.0);
            let (rows, keys) = scratch.split_at_mut(CHUNK * hd);
            let n = block.row(0).len();
            for c in (0..n).step_by(CHUNK) {
                let m = CHUNK.min(n - c);
                for g in 0..n_kv {
                    for (j, row) in rows.chunks_exact_mut(hd).take(m).enumerate() {
                        ops::widen_f16(&kv.k(start + first + c + j)[g * hd..][..hd], row);
                    }
                    ops::transpose(&rows[..m * hd], hd, keys, CHUNK);
                    for head in g * group..(g + 1) * group {
                        ops::dot_keys(&qs[head * hd..][..hd], keys, CHUNK, shape.scale, &mut block.row(head)[c..c + m]);
                    }
                }
            }
        })
    });
    for s in scores.chunks_exact_mut(seen) {
        ops::softmax(s);
        s.iter_mut().for_each(|p| *p = to_f16_precision(*p));
    }
    // Each run of positions sums its weighted values into an output of its own.
    let runs = seen.div_ceil(VALUE_RUN);
    let mut sums = vec![0.0; runs * width];
    parallel::for_chunks(&mut sums, width, 1, parallel::MIN_WORK / (VALUE_RUN * width).max(1), |first, dst| {
        parallel::with_scratch(|row| {
            row.resize(hd, 0.0);
            for (r, sum) in (first..).zip(dst.chunks_exact_mut(width)) {
                for j in r * VALUE_RUN..((r + 1) * VALUE_RUN).min(seen) {
                    for g in 0..n_kv {
                        ops::widen_f16(&kv.v(start + j)[g * hd..][..hd], row);
                        for head in g * group..(g + 1) * group {
                            ops::axpy(scores[head * seen + j], row, &mut sum[head * hd..][..hd]);
                        }
                    }
                }
            }
        })
    });
    let mut out = Act::zeros(1, width);
    for sum in sums.chunks_exact(width) {
        ops::axpy(1.0, sum, &mut out.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_that_cannot_fit_is_refused_saying_what_to_shrink() {
        let matrix = |rows: u64, cols: u64| TensorInfo {
            name: "w".into(),
            dims: vec![cols, rows],
            ty: GgmlType::Q4_0,
            offset: 0,
            size: GgmlType::Q4_0.bytes_for(rows * cols).unwrap(),
        };
        let norm = TensorInfo { name: "n".into(), dims: vec![4096], ty: GgmlType::F32, offset: 0, size: 4 * 4096 };
        let gib = 1u64 << 30;
        // 2 GiB of Q4_0 weights and a KV cache of 32 layers x 1024 wide x 2 x f16 = 128 KiB a position.
        let tensors = vec![matrix(65536, 65536), norm];
        let weights = tensors[0].size + 4 * 4096;
        let layers = vec![4096; 32];
        assert!(fits_in(4 * gib, &tensors, &layers, 1024).is_ok());
        let err = fits_in(4 * gib, &tensors, &vec![32768; 32], 1024).unwrap_err();
        let Error::OutOfMemory(m) = &err else { panic!("{err}") };
        assert!(m.contains("4096 MiB of KV cache for 32768 positions") && m.contains("smaller contextLength"), "{m}");
        // The room left after the weights, in positions: (4 GiB - weights - working) / 128 KiB.
        let room = (4 * gib - weights - WORKING_MEMORY) / (128 << 10);
        assert!(m.contains(&format!("at most about {room}")), "{m}");
        let err = fits_in(2 * gib, &tensors, &layers, 1024).unwrap_err();
        let Error::OutOfMemory(m) = &err else { panic!("{err}") };
        assert!(m.contains("smaller quantization") && m.contains("WebGPU"), "{m}");
        assert_eq!(err.code(), "OUT_OF_MEMORY");
    }

    fn weight(cpu: &mut Cpu, ty: GgmlType, rows: usize, cols: usize, seed: u32) -> Weight {
        let values: Vec<f32> =
            (0..rows * cols).map(|i| ((i as u32 * 2654435761 ^ seed) % 1000) as f32 / 250.0 - 2.0).collect();
        let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
        let mut data = vec![0u8; rows * row_bytes];
        for (src, dst) in values.chunks_exact(cols).zip(data.chunks_exact_mut(row_bytes)) {
            quant::quantize_row_ref(ty, src, dst);
        }
        let info = TensorInfo {
            name: "w".into(),
            dims: vec![cols as u64, rows as u64],
            ty,
            offset: 0,
            size: data.len() as u64,
        };
        cpu.upload(&info, &data).unwrap()
    }

    /// A matrix is reserved once at its size and filled in place, row group
    /// by row group: loading a 178 MB embedding must not take twice that.
    #[test]
    fn a_matrix_is_filled_in_place() {
        let mut cpu = Cpu::default();
        let data: Vec<u8> = (0..4 * 34).map(|i| i as u8).collect();
        let info =
            TensorInfo { name: "w".into(), dims: vec![32, 4], ty: GgmlType::Q8_0, offset: 0, size: data.len() as u64 };
        let mut w = cpu.alloc(&info).unwrap();
        let Weight::Matrix { data: kept, .. } = &w else { panic!("a matrix") };
        let (at, capacity) = (kept.as_ptr(), kept.capacity());
        assert_eq!(capacity, data.len());
        cpu.fill(&mut w, &info, 0, &data[..34]).unwrap();
        cpu.fill(&mut w, &info, 1, &data[34..]).unwrap();
        let Weight::Matrix { data: kept, .. } = &w else { panic!("a matrix") };
        assert_eq!((kept.as_ptr(), kept.capacity()), (at, capacity));
        assert_eq!(kept, &data);
    }

    /// Several weights at once give each weight's own product, bit for bit,
    /// across row counts that cut the kernel's tiles, and with activation
    /// types that differ (Q4_1 takes Q8_1 activations, Q8_0 Q8_0).
    #[test]
    fn matmuls_equal_one_matmul_each() {
        let mut cpu = Cpu::default();
        let cols = 64;
        for tokens in [1, 5] {
            let x = Act { rows: tokens, cols, data: (0..tokens * cols).map(|i| (i % 17) as f32 - 8.0).collect() };
            let (a, b, c) = (
                weight(&mut cpu, GgmlType::Q4_1, 13, cols, 1),
                weight(&mut cpu, GgmlType::Q4_1, 6, cols, 2),
                weight(&mut cpu, GgmlType::Q8_0, 9, cols, 3),
            );
            for ws in [[&a, &b, &a], [&a, &b, &c]] {
                let together = cpu.matmuls(&x, ws);
                for (w, got) in ws.iter().zip(&together) {
                    let alone = cpu.matmul(&x, w);
                    assert_eq!((got.rows, got.cols), (alone.rows, alone.cols));
                    assert!(
                        got.data.iter().zip(&alone.data).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{tokens} tokens"
                    );
                }
            }
        }
    }

    /// The GELU gate against GELU in f64: within the two f16 roundings
    /// (the gate's and the result's); ggml's cut-offs at ±10 exactly; every
    /// result below 10 an f16 value times `up`.
    #[test]
    fn geglu_is_ggml_gelu_through_f16() {
        let mut cpu = Cpu::default();
        let gate: Vec<f32> = (0..4001).map(|i| i as f32 * 0.006 - 12.0).chain([-10.0, 10.0, 0.0, 1e-8]).collect();
        let up: Vec<f32> = (0..gate.len()).map(|i| 1.0 + (i % 7) as f32 * 0.5).collect();
        let n = gate.len();
        let y = cpu.geglu(&Act { rows: 1, cols: n, data: gate.clone() }, &Act { rows: 1, cols: n, data: up.clone() });
        for ((&g, &u), &got) in gate.iter().zip(&up).zip(&y.data) {
            let x = g as f64;
            let want = 0.5 * x * (1.0 + (0.7978845608028654 * x * (1.0 + 0.044715 * x * x)).tanh()) * u as f64;
            if g <= -10.0 {
                assert_eq!(got, 0.0, "gate {g}");
            } else if g >= 10.0 {
                assert_eq!(got, g * u, "gate {g}");
            } else {
                let a = got / u;
                assert_eq!(f16::from_f32(a).to_f32(), a, "gate {g}: not an f16 value");
                let budget = 2f64.powi(-10) * (want.abs() + 1.2 * x.abs() * u as f64) + 1e-7;
                assert!((got as f64 - want).abs() <= budget, "gate {g}: {got} vs {want}");
            }
        }
    }

    /// `n` values spread over about `-max..max`, different for each `seed`.
    fn pattern(n: usize, seed: usize, max: f32) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104729) % 2003) as f32 / (1000.0 / max) - max).collect()
    }

    /// Windowed attention at a position equals full attention over a cache
    /// holding only the window's positions, bit for bit; and the window
    /// changes the result once positions fall out of it.
    #[test]
    fn a_sliding_window_attends_to_the_last_positions_only() {
        let mut cpu = Cpu::default();
        let (n_head, n_head_kv, hd, window) = (4, 2, 8, 5);
        let kv_dim = n_head_kv * hd;
        let shape = Attention { n_head, n_head_kv, head_dim: hd, scale: 0.3, window: Some(window) };
        let full = Attention { window: None, ..shape.clone() };
        let values = |n: usize, seed: usize| pattern(n, seed, 2.0);
        let act = |rows: usize, cols: usize, seed: usize| Act { rows, cols, data: values(rows * cols, seed) };
        let (q, k, v) = (act(12, n_head * hd, 1), act(12, kv_dim, 2), act(12, kv_dim, 3));
        let mut cache = cpu.new_cache(&[16], kv_dim).unwrap();
        // Three in one batch, then the rest: batches and single tokens both windowed.
        let first = cpu.attention(&q.slice(0, 3), &k.slice(0, 3), &v.slice(0, 3), &mut cache, 0, 0, &shape);
        let rest = cpu.attention(&q.slice(3, 12), &k.slice(3, 12), &v.slice(3, 12), &mut cache, 0, 3, &shape);
        let got: Vec<f32> = first.data.iter().chain(&rest.data).copied().collect();
        for p in 0..12usize {
            let start = (p + 1).saturating_sub(window);
            let mut alone = cpu.new_cache(&[16], kv_dim).unwrap();
            let n = p + 1 - start;
            if n > 1 {
                cpu.attention(&q.slice(start, p), &k.slice(start, p), &v.slice(start, p), &mut alone, 0, 0, &full);
            }
            let want =
                cpu.attention(&q.slice(p, p + 1), &k.slice(p, p + 1), &v.slice(p, p + 1), &mut alone, 0, n - 1, &full);
            let row = &got[p * n_head * hd..(p + 1) * n_head * hd];
            assert!(row.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits()), "position {p}");
        }
        let mut unwindowed = cpu.new_cache(&[16], kv_dim).unwrap();
        let all = cpu.attention(&q, &k, &v, &mut unwindowed, 0, 0, &full);
        assert_eq!(all.data[..window * n_head * hd], got[..window * n_head * hd]);
        assert_ne!(all.data[window * n_head * hd..], got[window * n_head * hd..]);
    }

    /// A windowed layer's cache as a ring of `window + batch - 1` positions
    /// (window 5, batches of at most 3: 7 slots), fed batches and single
    /// tokens past several wraps, attends exactly as a cache of every
    /// position does, bit for bit.
    #[test]
    fn a_ring_of_window_plus_batch_positions_equals_a_full_cache() {
        let mut cpu = Cpu::default();
        let (n_head, n_head_kv, hd, window, batch) = (4, 2, 8, 5, 3);
        let kv_dim = n_head_kv * hd;
        let shape = Attention { n_head, n_head_kv, head_dim: hd, scale: 0.3, window: Some(window) };
        let values = |n: usize, seed: usize| pattern(n, seed, 2.0);
        let n = 50;
        let q = Act { rows: n, cols: n_head * hd, data: values(n * n_head * hd, 1) };
        let (k, v) = (
            Act { rows: n, cols: kv_dim, data: values(n * kv_dim, 2) },
            Act { rows: n, cols: kv_dim, data: values(n * kv_dim, 3) },
        );
        let mut ring = cpu.new_cache(&[window + batch - 1], kv_dim).unwrap();
        let mut full = cpu.new_cache(&[n], kv_dim).unwrap();
        let mut pos = 0;
        for size in [3, 1, 2, 3, 1, 1, 3, 2, 2, 1].into_iter().cycle() {
            let end = (pos + size).min(n);
            let (q, k, v) = (q.slice(pos, end), k.slice(pos, end), v.slice(pos, end));
            let got = cpu.attention(&q, &k, &v, &mut ring, 0, pos, &shape);
            let want = cpu.attention(&q, &k, &v, &mut full, 0, pos, &shape);
            assert!(got.data.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits()), "batch at {pos}");
            pos = end;
            if pos == n {
                break;
            }
        }
    }

    /// One token's attention split by positions equals the split by groups
    /// of heads, with and without a window, in a ring past its wrap, for one
    /// group (Gemma 3) and several (SmolLM2): within the rounding of summing
    /// the values in runs, at most `seen` roundings of the largest value.
    #[test]
    fn one_token_attention_equals_attention_by_groups() {
        let values = |n: usize, seed: usize| pattern(n, seed, 10.0);
        for (n_head, n_head_kv, hd, window, ring) in
            [(4, 1, 256, Some(40), 60), (9, 3, 64, None, 300), (2, 2, 12, Some(3), 5)]
        {
            let kv_dim = n_head_kv * hd;
            let shape = Attention { n_head, n_head_kv, head_dim: hd, scale: 0.125, window };
            // A ring of 300 spans two pages.
            let paged = |seed: usize| -> Vec<Vec<f16>> {
                let flat: Vec<f16> = values(ring * kv_dim, seed).into_iter().map(f16::from_f32).collect();
                flat.chunks(PAGE * kv_dim).map(<[f16]>::to_vec).collect()
            };
            let (k, v) = (paged(2), paged(3));
            let kv = CacheView { k: &k, v: &v, ring, kv_dim };
            for pos in [0, 1, 7, ring / 2, ring - 1, ring + 17] {
                if window.is_none() && pos >= ring {
                    continue;
                }
                let q = Act { rows: 1, cols: n_head * hd, data: values(n_head * hd, pos + 1) };
                let span = model::attention_span(pos, 1, window);
                let want = attention_by_groups(&q, &kv, pos, span, &shape);
                let got = one_token_attention(&q, &kv, pos, &shape);
                let budget = span as f32 * f32::EPSILON * 10.0;
                for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
                    assert!(
                        (a - b).abs() <= budget,
                        "{n_head} heads, {n_head_kv} kv heads at {pos}, [{i}]: {a} vs {b}"
                    );
                }
                if span <= VALUE_RUN {
                    assert_eq!(got.data, want.data, "one run is one sum");
                }
            }
        }
    }

    /// The per-unit attention the tiles replaced: each token's group of
    /// heads widens every cache row it reads for itself, one `ops::dot_keys`
    /// a score, one `ops::axpy` a position.
    fn attention_by_units(q: &Act, kv: &CacheView<'_>, pos: usize, shape: &Attention) -> Act {
        let hd = shape.head_dim;
        let (n_kv, group) = (shape.n_head_kv, shape.n_head / shape.n_head_kv);
        let unit = group * hd;
        let mut out = Act::zeros(q.rows, shape.n_head * hd);
        let mut row = vec![0.0; hd];
        for (u, dst) in out.data.chunks_exact_mut(unit).enumerate() {
            let (i, g) = (u / n_kv, u % n_kv);
            let (start, end) = attended(pos + i, shape.window);
            let qs: Vec<f32> = q.row(i)[g * unit..(g + 1) * unit].iter().map(|&x| to_f16_precision(x)).collect();
            let mut scores = vec![vec![0.0; end - start]; group];
            for j in start..end {
                ops::widen_f16(&kv.k(j)[g * hd..][..hd], &mut row);
                for (s, qh) in scores.iter_mut().zip(qs.chunks_exact(hd)) {
                    ops::dot_keys(qh, &row, 1, shape.scale, core::slice::from_mut(&mut s[j - start]));
                }
            }
            scores.iter_mut().for_each(|s| ops::softmax(s));
            for j in start..end {
                ops::widen_f16(&kv.v(j)[g * hd..][..hd], &mut row);
                for (s, dh) in scores.iter().zip(dst.chunks_exact_mut(hd)) {
                    ops::axpy(to_f16_precision(s[j - start]), &row, dh);
                }
            }
        }
        out
    }

    /// Tiled attention equals the per-unit loop bit for bit: batches that
    /// fill tiles and cut them, groups of one, three and four heads, head
    /// sizes of whole and cut SIMD chunks, causal and windowed, in a full
    /// cache and in a ring past its wrap, and a span long enough to shrink
    /// the tiles.
    #[test]
    fn tiled_attention_equals_the_per_unit_loop() {
        let values = |n: usize, seed: usize| pattern(n, seed, 3.0);
        // (n_head, n_head_kv, head_dim)
        let shapes = [(2, 2, 36), (9, 3, 64), (4, 1, 256), (8, 2, 36), (3, 1, 12)];
        // (window, ring or None for a full cache, positions)
        let caches: [(Option<usize>, Option<usize>, &[usize]); 4] = [
            (None, None, &[0, 1, 9, 70]),
            (Some(7), None, &[0, 3, 70]),
            (Some(7), Some(7 + 40 - 1), &[0, 50, 123]),
            (Some(40), Some(40 + 40 - 1), &[10, 101]),
        ];
        for (n_head, n_head_kv, hd) in shapes {
            let kv_dim = n_head_kv * hd;
            for (window, ring, positions) in caches {
                let shape = Attention { n_head, n_head_kv, head_dim: hd, scale: 0.2, window };
                for &pos in positions {
                    for n in [1, 2, 3, 5, 15, 16, 17, 33, 40] {
                        let ring = ring.unwrap_or(pos + n);
                        let paged = |seed: usize| -> Vec<Vec<f16>> {
                            let flat: Vec<f16> = values(ring * kv_dim, seed).into_iter().map(f16::from_f32).collect();
                            flat.chunks(PAGE * kv_dim).map(<[f16]>::to_vec).collect()
                        };
                        let (k, v) = (paged(pos + 2), paged(n + 3));
                        let kv = CacheView { k: &k, v: &v, ring, kv_dim };
                        let q = Act { rows: n, cols: n_head * hd, data: values(n * n_head * hd, pos + n) };
                        let span = model::attention_span(pos, n, window);
                        let got = attention_by_groups(&q, &kv, pos, span, &shape);
                        let want = attention_by_units(&q, &kv, pos, &shape);
                        assert!(
                            got.data.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{n_head} heads, {n_head_kv} kv, hd {hd}, window {window:?}, ring {ring}: {n} at {pos}"
                        );
                    }
                }
            }
        }
        // 4 heads a group over 20000 positions: tiles of three tokens.
        let (shape, pos, n) =
            (Attention { n_head: 8, n_head_kv: 2, head_dim: 36, scale: 0.2, window: None }, 20_000, 7);
        let kv_dim = 72;
        let paged = |seed: usize| -> Vec<Vec<f16>> {
            let flat: Vec<f16> = values((pos + n) * kv_dim, seed).into_iter().map(f16::from_f32).collect();
            flat.chunks(PAGE * kv_dim).map(<[f16]>::to_vec).collect()
        };
        let (k, v) = (paged(1), paged(2));
        let kv = CacheView { k: &k, v: &v, ring: pos + n, kv_dim };
        assert_eq!(TILE_SCORES / (4 * (pos + n)), 3);
        let q = Act { rows: n, cols: 8 * 36, data: values(n * 8 * 36, 3) };
        let got = attention_by_groups(&q, &kv, pos, pos + n, &shape);
        let want = attention_by_units(&q, &kv, pos, &shape);
        assert!(got.data.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits()), "a long span");
    }

    /// A batch longer than a ring holds stops instead of overwriting keys
    /// its own first rows read.
    #[test]
    #[should_panic(expected = "reads more positions")]
    fn a_batch_longer_than_the_ring_stops() {
        let mut cpu = Cpu::default();
        let shape = Attention { n_head: 1, n_head_kv: 1, head_dim: 2, scale: 1.0, window: Some(5) };
        let mut ring = cpu.new_cache(&[7], 2).unwrap();
        let x = |rows: usize| Act::zeros(rows, 2);
        cpu.attention(&x(3), &x(3), &x(3), &mut ring, 0, 3, &shape);
        // Positions 6..10 go to slots 6, 0, 1, 2: 9 overwrites 2, which 6 reads.
        cpu.attention(&x(4), &x(4), &x(4), &mut ring, 0, 6, &shape);
    }

    #[test]
    fn scale_and_reshape() {
        let mut cpu = Cpu::default();
        let mut x = Act { rows: 2, cols: 6, data: (0..12).map(|i| i as f32).collect() };
        cpu.scale(&mut x, 0.5);
        let y = cpu.reshape(x, 4, 3);
        assert_eq!((y.rows, y.cols), (4, 3));
        assert_eq!(y.row(3), [4.5, 5.0, 5.5]);
    }
}
