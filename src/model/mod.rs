//! Model architectures as data plus one forward pass over a small set of ops.
//!
//! An architecture reads its hyper-parameters from GGUF metadata, collects its
//! weights as the loader streams them in, and describes its forward pass with
//! the [`Backend`] ops. A backend (the CPU today, the GPU later) implements
//! those ops once for every architecture; a new architecture is one new file
//! here plus one line in [`Architecture::for_header`].

pub mod gemma3;
pub mod llama;

use std::borrow::Cow;

use crate::gguf::{Header, Metadata, TensorInfo};
use crate::{Error, Result};

/// Rotary position embedding parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Number of leading dimensions of each head that are rotated.
    pub dims: usize,
    pub freq_base: f32,
    /// Positions are multiplied by this (linear scaling: 1 / factor).
    pub freq_scale: f32,
    /// NeoX rotates (i, i + dims/2) pairs; the normal order rotates (2i, 2i+1).
    pub neox: bool,
    /// Per-frequency divisors (`rope_freqs.weight`, Llama 3.x), `dims / 2` of them.
    pub factors: Option<Vec<f32>>,
}

/// Shape of one attention call.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Multiplier of q·k before the softmax.
    pub scale: f32,
    /// Sliding-window attention: the query at position `p` sees the keys at
    /// `p - window < j <= p` only (llama.cpp masks `p - j >= window`).
    pub window: Option<usize>,
}

/// Which positions of a batch need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (generation).
    Last,
    /// The batch's rows from this one on (scoring: the positions whose next
    /// token is scored). The output matrix is the largest product of a
    /// forward pass, and a 262k vocabulary's logits take 1 MiB a row: rows
    /// nobody reads are neither computed nor kept.
    From(usize),
}

impl Logits {
    /// The first of a batch of `rows` rows that gets logits.
    pub fn first_row(self, rows: usize) -> usize {
        match self {
            Logits::Last => rows - 1,
            Logits::From(row) => row.min(rows - 1),
        }
    }
}

/// The ops a forward pass is written in. Activations are row-major matrices
/// with one row per token of the batch.
pub trait Backend {
    /// A weight tensor as the backend keeps it (quantized, on its device).
    type Weight;
    /// An activation matrix.
    type Act;
    /// The key/value cache of every layer.
    type Cache;

    /// Checks, from the header before any weight arrives, that this backend
    /// can hold the model: every tensor, and a cache of `positions[i]`
    /// positions of `kv_dim` values for each layer `i`. The error names what
    /// does not fit (`UnsupportedQuant`, `OutOfMemory`), so that a caller
    /// may choose another backend before anything was uploaded.
    fn check_fits(&self, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
        let _ = (tensors, positions, kv_dim);
        Ok(())
    }
    /// Takes one tensor's bytes as the loader streams it in; owned bytes may
    /// be kept as they are instead of copied.
    fn upload(&mut self, info: &TensorInfo, data: Cow<'_, [u8]>) -> Result<Self::Weight>;
    /// Allocates a cache of `positions[i]` positions of `kv_dim` values for
    /// each layer `i` (see [`Hparams::cache_positions`]). Each layer is a
    /// ring: position `j` lives in slot `j % positions[i]`.
    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Self::Cache>;

    /// Rows of an embedding table.
    fn embed(&mut self, table: &Self::Weight, tokens: &[u32]) -> Self::Act;
    /// RMS-normalizes every row and multiplies by `weight`.
    fn rms_norm(&mut self, x: &Self::Act, weight: &Self::Weight, eps: f32) -> Self::Act;
    /// `x · wᵀ`: `x` has `k` columns, `w` has `m` rows of `k`; the result `m` columns.
    fn matmul(&mut self, x: &Self::Act, w: &Self::Weight) -> Self::Act;
    /// [`Backend::matmul`] of one `x` by several weights (q, k and v; gate
    /// and up), so that a backend may prepare `x` once and split the work
    /// over its threads once.
    fn matmuls<const N: usize>(&mut self, x: &Self::Act, ws: [&Self::Weight; N]) -> [Self::Act; N] {
        ws.map(|w| self.matmul(x, w))
    }
    /// Rotates every head of every row; row `i` is at position `pos + i`.
    fn rope(&mut self, x: &mut Self::Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope);
    /// Causal attention of the batch's queries over the cache, after writing the
    /// batch's keys and values into `layer` of the cache at `pos..`. The
    /// layer must hold the batch's [`attention_span`] (a backend panics
    /// otherwise: the session's batches fit by construction).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        q: &Self::Act,
        k: &Self::Act,
        v: &Self::Act,
        cache: &mut Self::Cache,
        layer: usize,
        pos: usize,
        shape: &Attention,
    ) -> Self::Act;
    /// `silu(gate) * up`, element-wise.
    fn swiglu(&mut self, gate: &Self::Act, up: &Self::Act) -> Self::Act;
    /// `gelu(gate) * up`, element-wise, with GELU's tanh approximation
    /// evaluated as ggml's CPU does: on `gate` rounded to f16, the result
    /// rounded to f16 (its lookup table), `gate` at or past ±10 taken as is.
    fn geglu(&mut self, gate: &Self::Act, up: &Self::Act) -> Self::Act;
    /// `x *= s`, element-wise.
    fn scale(&mut self, x: &mut Self::Act, s: f32);
    /// The same row-major values seen as `rows × cols` (per-head norms view
    /// a batch of heads as one head a row): no data moves.
    fn reshape(&mut self, x: Self::Act, rows: usize, cols: usize) -> Self::Act;
    /// `x += y`, element-wise.
    fn add(&mut self, x: &mut Self::Act, y: &Self::Act);
    /// Rows `first..` of `x`.
    fn rows_from(&mut self, x: &Self::Act, first: usize) -> Self::Act;
    /// Copies activations back to the host (logits).
    fn read(&mut self, x: &Self::Act) -> Readback<Vec<f32>>;
    /// The greedy token of one row of logits (see [`crate::sampler::greedy`]),
    /// so that a GPU hands back four bytes instead of the vocabulary's logits.
    fn argmax(&mut self, x: &Self::Act) -> Readback<u32> {
        self.read(x).map(|logits| crate::sampler::greedy(&logits))
    }
}

/// A result on its way back from a backend: ready at once from the CPU and
/// from a native GPU; later from a browser's GPU, which hands results back
/// only through the event loop.
pub enum Readback<T> {
    Ready(T),
    Pending(std::pin::Pin<Box<dyn std::future::Future<Output = T>>>),
}

impl<T: 'static> Readback<T> {
    pub async fn get(self) -> T {
        match self {
            Readback::Ready(v) => v,
            Readback::Pending(f) => f.await,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U + 'static) -> Readback<U> {
        match self {
            Readback::Ready(v) => Readback::Ready(f(v)),
            Readback::Pending(p) => Readback::Pending(Box::pin(async move { f(p.await) })),
        }
    }
}

/// Hyper-parameters common to the transformer decoders this crate runs.
#[derive(Clone, Debug)]
pub struct Hparams {
    pub arch: String,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rms_eps: f32,
    /// The context the model was trained for.
    pub context_length: usize,
    /// Each layer's sliding window (`None`: it attends to every position).
    pub windows: Vec<Option<usize>>,
}

impl Hparams {
    /// Positions each layer's cache holds, for a `context` and forward
    /// batches of at most `batch` tokens: the context; on a layer with a
    /// sliding window of `w`, a ring of `w + batch - 1` positions (as
    /// llama.cpp's SWA cache, `n_swa + n_ubatch`) where that is smaller,
    /// the most one batch reads ([`attention_span`]).
    pub fn cache_positions(&self, context: usize, batch: usize) -> Vec<usize> {
        let ring = |w: usize| w.saturating_add(batch.max(1) - 1).min(context);
        self.windows.iter().map(|w| w.map_or(context, ring)).collect()
    }

    /// How many positions a cache of [`Hparams::cache_positions`] may drop
    /// from its end and still hold the keys the next position reads: a ring
    /// of `r` over a window of `w` (`r` less than the context) has
    /// overwritten them further back than `r - w + 1`, the batch limit.
    /// Without rings, any number.
    pub fn cache_rewind(&self, context: usize, batch: usize) -> usize {
        let rings = self.windows.iter().zip(self.cache_positions(context, batch));
        rings.filter_map(|(w, r)| w.filter(|_| r < context).map(|w| r + 1 - w)).min().unwrap_or(usize::MAX)
    }
}

/// Bytes of a cache of `positions[i]` positions for each layer `i`, keys and
/// values of `kv_dim` f16 each; `None` past `usize`.
pub fn cache_bytes(positions: &[usize], kv_dim: usize) -> Option<usize> {
    let row = kv_dim.checked_mul(2 * std::mem::size_of::<half::f16>())?;
    positions.iter().try_fold(0usize, |sum, &p| sum.checked_add(p.checked_mul(row)?))
}

/// Positions of a layer's cache that the attention of a batch of `n` tokens
/// at `pos` reads, its own included: from the first key in the window of
/// the batch's first row, `pos + 1 - window`, to its last row, `pos + n - 1`.
/// A ring of at least this many slots holds them all at once, so writing
/// the batch before attending never overwrites a key an earlier row of the
/// same batch still reads: what the batch overwrites is older than that.
pub fn attention_span(pos: usize, n: usize, window: Option<usize>) -> usize {
    let all = pos + n;
    window.map_or(all, |w| all.min(w.saturating_add(n).saturating_sub(1)))
}

/// A typed view of an architecture's metadata keys.
pub(crate) struct Keys<'a> {
    md: &'a Metadata,
    arch: &'a str,
}

impl<'a> Keys<'a> {
    pub fn new(md: &'a Metadata, arch: &'a str) -> Self {
        Keys { md, arch }
    }

    fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.arch)
    }

    pub fn usize(&self, name: &str) -> Result<usize> {
        self.opt_usize(name)?.ok_or_else(|| Error::BadModel(format!("metadata `{}` is missing", self.key(name))))
    }

    pub fn opt_usize(&self, name: &str) -> Result<Option<usize>> {
        let key = self.key(name);
        match self.md.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v <= 1 << 30)
                .map(Some)
                .ok_or_else(|| Error::BadModel(format!("metadata `{key}` = {v:?} is not a size"))),
        }
    }

    pub fn opt_f32(&self, name: &str) -> Result<Option<f32>> {
        let key = self.key(name);
        match self.md.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|v| Some(v as f32))
                .ok_or_else(|| Error::BadModel(format!("metadata `{key}` = {v:?} is not a number"))),
        }
    }

    pub fn opt_str(&self, name: &str) -> Option<&'a str> {
        self.md.get(&self.key(name)).and_then(|v| v.as_str())
    }

    /// The RoPE the file asks for: `rope.dimension_count` of a head's
    /// dimensions (all by default), `rope.freq_base` (else `default_base`),
    /// and linear scaling by `rope.scaling.factor` or the older
    /// `rope.scale_linear`, as llama.cpp reads them for every architecture.
    pub fn rope(&self, head_dim: usize, default_base: f32, neox: bool) -> Result<Rope> {
        let dims = self.opt_usize("rope.dimension_count")?.unwrap_or(head_dim);
        if dims == 0 || dims % 2 != 0 || dims > head_dim {
            return Err(Error::BadModel(format!("RoPE over {dims} of {head_dim} head dimensions")));
        }
        let factor = match self.opt_str("rope.scaling.type") {
            None | Some("none") => self.opt_f32("rope.scale_linear")?.unwrap_or(1.0),
            Some("linear") => self.opt_f32("rope.scaling.factor")?.unwrap_or(1.0),
            Some(other) => return Err(Error::UnsupportedArch(format!("{} with `{other}` RoPE scaling", self.arch))),
        };
        if !(factor > 0.0 && factor.is_finite()) {
            return Err(Error::BadModel(format!("RoPE scaling factor {factor}")));
        }
        Ok(Rope {
            dims,
            freq_base: self.opt_f32("rope.freq_base")?.unwrap_or(default_base),
            freq_scale: 1.0 / factor,
            neox,
            factors: None,
        })
    }
}

/// Collects the weights an architecture asked for as the loader streams them.
pub(crate) struct WeightSlots<W> {
    names: Vec<String>,
    slots: Vec<Option<W>>,
}

impl<W> WeightSlots<W> {
    pub fn new() -> Self {
        WeightSlots { names: Vec::new(), slots: Vec::new() }
    }

    /// Registers a tensor the model needs, checking its shape now so that a bad
    /// file fails before its weights are read.
    pub fn want(&mut self, header: &Header, name: &str, dims: &[usize]) -> Result<usize> {
        let info = header.tensor(name).ok_or_else(|| Error::BadModel(format!("tensor `{name}` is missing")))?;
        let expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        if info.dims != expected {
            return Err(Error::BadModel(format!("tensor `{name}` has shape {:?}, expected {:?}", info.dims, expected)));
        }
        if !info.ty.is_supported() {
            return Err(Error::UnsupportedQuant { tensor: name.to_string(), ty: info.ty.name() });
        }
        self.names.push(name.to_string());
        self.slots.push(None);
        Ok(self.slots.len() - 1)
    }

    /// The slot a streamed tensor fills, if the model wants it.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn fill(&mut self, slot: usize, weight: W) {
        self.slots[slot] = Some(weight);
    }

    /// Takes every weight out, in registration order; fails if one never came.
    pub fn into_weights(self) -> Result<Vec<W>> {
        self.names
            .into_iter()
            .zip(self.slots)
            .map(|(name, w)| w.ok_or_else(|| Error::BadModel(format!("tensor `{name}` has no data"))))
            .collect()
    }
}

/// A loaded model of one of the supported architectures.
pub enum Architecture<B: Backend> {
    Llama(llama::Llama<B>),
    Gemma3(gemma3::Gemma3<B>),
}

/// A model under construction: it knows the tensors it needs and takes them as
/// they stream in.
pub enum Builder<B: Backend> {
    Llama(llama::Builder<B>),
    Gemma3(gemma3::Builder<B>),
}

impl<B: Backend> Builder<B> {
    /// Chooses the architecture named by the header and checks that every
    /// tensor it needs is present with the right shape and a supported type.
    pub fn for_header(header: &Header) -> Result<Self> {
        let arch = header
            .metadata
            .architecture()
            .ok_or_else(|| Error::BadModel("metadata `general.architecture` is missing".into()))?;
        match arch {
            "llama" => Ok(Builder::Llama(llama::Builder::new(header)?)),
            "gemma3" => Ok(Builder::Gemma3(gemma3::Builder::new(header)?)),
            other => Err(Error::UnsupportedArch(other.to_string())),
        }
    }

    pub fn hparams(&self) -> &Hparams {
        match self {
            Builder::Llama(b) => b.hparams(),
            Builder::Gemma3(b) => b.hparams(),
        }
    }

    /// Offers a streamed tensor; tensors the model does not use are dropped.
    pub fn tensor(&mut self, backend: &mut B, info: &TensorInfo, data: Cow<'_, [u8]>) -> Result<()> {
        match self {
            Builder::Llama(b) => b.tensor(backend, info, data),
            Builder::Gemma3(b) => b.tensor(backend, info, data),
        }
    }

    pub fn finish(self) -> Result<Architecture<B>> {
        match self {
            Builder::Llama(b) => Ok(Architecture::Llama(b.finish()?)),
            Builder::Gemma3(b) => Ok(Architecture::Gemma3(b.finish()?)),
        }
    }
}

impl<B: Backend> Architecture<B> {
    pub fn hparams(&self) -> &Hparams {
        match self {
            Architecture::Llama(m) => &m.hparams,
            Architecture::Gemma3(m) => &m.hparams,
        }
    }

    /// Width of one layer's cache rows.
    pub fn kv_dim(&self) -> usize {
        let h = self.hparams();
        h.n_head_kv * h.head_dim
    }

    /// Runs `tokens` at positions `pos..` through the model, filling the cache,
    /// and returns the logits of the positions asked for, one row each, where
    /// the backend keeps them.
    pub fn forward(&self, backend: &mut B, cache: &mut B::Cache, tokens: &[u32], pos: usize, logits: Logits) -> B::Act {
        match self {
            Architecture::Llama(m) => m.forward(backend, cache, tokens, pos, logits),
            Architecture::Gemma3(m) => m.forward(backend, cache, tokens, pos, logits),
        }
    }
}
