//! Model architectures as data plus one forward pass over a small set of ops.
//!
//! An architecture reads its hyper-parameters from GGUF metadata, collects its
//! weights as the loader streams them in, and describes its forward pass with
//! the [`Backend`] ops. A backend (the CPU today, the GPU later) implements
//! those ops once for every architecture; a new architecture is one new file
//! here plus one line in [`Architecture::for_header`].

mod blocks;
pub mod gemma3;
pub mod gpt2;
pub mod llama;
pub mod phi2;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod smollm3;

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
    /// Per-frequency divisors (`rope_freqs.weight`, Llama 3.x; Phi-3's
    /// LongRoPE `rope_factors_short/long`), `dims / 2` of them.
    pub factors: Option<Vec<f32>>,
    /// Multiplies cos and sin (`rope.scaling.attn_factor`: LongRoPE's
    /// magnitude correction, which llama.cpp folds into the rotation).
    pub attn_factor: f32,
}

impl Rope {
    /// The rotation (cos, sin) of each dimension pair at position `pos`:
    /// computed once a position and shared by every head, on either backend.
    pub fn angles(&self, pos: usize, out: &mut Vec<(f32, f32)>) {
        let half = self.dims / 2;
        let p = pos as f32 * self.freq_scale;
        out.clear();
        out.extend((0..half).map(|i| {
            let mut theta = p * self.freq_base.powf(-2.0 * i as f32 / self.dims as f32);
            if let Some(f) = &self.factors {
                theta /= f[i];
            }
            let (sin, cos) = theta.sin_cos();
            (cos * self.attn_factor, sin * self.attn_factor)
        }));
    }
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

impl Attention {
    /// The attention of a model's layers: its heads, scores scaled by
    /// 1/sqrt(head_dim), over `window` positions or all.
    pub fn new(h: &Hparams, window: Option<usize>) -> Attention {
        Attention {
            n_head: h.n_head,
            n_head_kv: h.n_head_kv,
            head_dim: h.head_dim,
            scale: 1.0 / (h.head_dim as f32).sqrt(),
            window,
        }
    }
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
    /// An empty weight for `info`, which [`Backend::fill`] then fills in row
    /// order as the file streams in: the bytes go straight to where the
    /// weight lives (the heap, a GPU buffer) and are never gathered whole on
    /// the way.
    fn alloc(&mut self, info: &TensorInfo) -> Result<Self::Weight>;
    /// Writes rows `first..` of `w` ([`TensorInfo::row_bytes`] each; the
    /// rows before `first` are written already).
    fn fill(&mut self, w: &mut Self::Weight, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()>;
    /// A weight from all of its bytes at once.
    fn upload(&mut self, info: &TensorInfo, data: &[u8]) -> Result<Self::Weight> {
        let mut w = self.alloc(info)?;
        self.fill(&mut w, info, 0, data)?;
        Ok(w)
    }
    /// Allocates a cache of `positions[i]` positions of `kv_dim` values for
    /// each layer `i` (see [`Hparams::cache_positions`]). Each layer is a
    /// ring: position `j` lives in slot `j % positions[i]`.
    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Self::Cache>;

    /// The number of rows of `x`.
    fn rows(&self, x: &Self::Act) -> usize;
    /// Rows of an embedding table.
    fn embed(&mut self, table: &Self::Weight, tokens: &[u32]) -> Self::Act;
    /// RMS-normalizes every row and multiplies by `weight`.
    fn rms_norm(&mut self, x: &Self::Act, weight: &Self::Weight, eps: f32) -> Self::Act;
    /// LayerNorm: every row less its mean, divided by its standard
    /// deviation, times `weight` plus `bias`.
    fn layer_norm(&mut self, x: &Self::Act, weight: &Self::Weight, bias: &Self::Weight, eps: f32) -> Self::Act;
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
    /// GELU of every element, as [`Backend::geglu`] evaluates it.
    fn gelu(&mut self, x: &Self::Act) -> Self::Act;
    /// `x *= s`, element-wise.
    fn scale(&mut self, x: &mut Self::Act, s: f32);
    /// The same row-major values seen as `rows × cols` (per-head norms view
    /// a batch of heads as one head a row): no data moves.
    fn reshape(&mut self, x: Self::Act, rows: usize, cols: usize) -> Self::Act;
    /// `x += y`, element-wise.
    fn add(&mut self, x: &mut Self::Act, y: &Self::Act);
    /// `x += bias` on every row (a vector as long as a row).
    fn add_bias(&mut self, x: &mut Self::Act, bias: &Self::Weight);
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
    /// Epsilon of the model's norms (RMSNorm or LayerNorm).
    pub norm_eps: f32,
    /// The context the model was trained for.
    pub context_length: usize,
    /// A context no session may pass: the rows of a learned position
    /// embedding (GPT-2); `None` where positions are rotary.
    pub max_context: Option<usize>,
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
            // LongRoPE's factors are tensors (Phi-3, which reads them).
            Some("linear" | "longrope") => self.opt_f32("rope.scaling.factor")?.unwrap_or(1.0),
            Some(other) => return Err(Error::UnsupportedArch(format!("{} with `{other}` RoPE scaling", self.arch))),
        };
        let attn_factor = self.opt_f32("rope.scaling.attn_factor")?.unwrap_or(1.0);
        if !(factor > 0.0 && factor.is_finite() && attn_factor.is_finite()) {
            return Err(Error::BadModel(format!("RoPE scaling factor {factor}, attention factor {attn_factor}")));
        }
        Ok(Rope {
            dims,
            freq_base: self.opt_f32("rope.freq_base")?.unwrap_or(default_base),
            freq_scale: 1.0 / factor,
            neox,
            factors: None,
            attn_factor,
        })
    }

    /// The hyper-parameters decoders read alike: widths, heads (query heads
    /// in equal groups over the key/value heads), layers, the vocabulary
    /// (from `token_embd.weight`), the norms' epsilon from `eps_key`
    /// (else `default_eps`); every layer global.
    pub fn decoder(&self, header: &Header, eps_key: &str, default_eps: f32) -> Result<Hparams> {
        let n_embd = self.usize("embedding_length")?;
        let n_head = self.usize("attention.head_count")?;
        let n_head_kv = self.opt_usize("attention.head_count_kv")?.unwrap_or(n_head);
        if n_embd == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::BadModel(format!("{n_head} attention heads cannot share {n_head_kv} key/value heads")));
        }
        let head_dim = self.opt_usize("attention.key_length")?.unwrap_or(n_embd / n_head);
        if head_dim == 0 || self.opt_usize("attention.value_length")?.is_some_and(|v| v != head_dim) {
            return Err(Error::BadModel(format!("heads of {head_dim} keys and another number of values")));
        }
        let n_vocab = match header.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            _ => return Err(Error::BadModel("tensor `token_embd.weight` is missing".into())),
        };
        let n_layer = self.usize("block_count")?;
        Ok(Hparams {
            arch: self.arch.to_string(),
            n_vocab,
            n_embd,
            n_layer,
            n_ff: self.usize("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            norm_eps: self.opt_f32(eps_key)?.unwrap_or(default_eps),
            context_length: self.opt_usize("context_length")?.unwrap_or(2048),
            max_context: None,
            windows: vec![None; n_layer],
        })
    }

    /// Refuses mixture-of-experts files of an architecture that has them.
    pub fn dense(&self) -> Result<()> {
        if self.opt_usize("expert_count")?.unwrap_or(0) > 0 {
            return Err(Error::UnsupportedArch(format!("{} with mixture-of-experts layers", self.arch)));
        }
        Ok(())
    }
}

/// Where a weight comes from: a whole tensor, or rows `first..first + n` of
/// one (a fused tensor split at load: `attn_qkv` into q, k and v; a 1-D
/// tensor's rows are its elements).
struct Source {
    /// The tensor in the file.
    tensor: String,
    /// The weight: the tensor, or a part of its rows.
    info: TensorInfo,
    /// Where the weight's bytes start within the tensor's.
    start: u64,
}

/// Collects the weights an architecture asked for as the loader streams them.
pub(crate) struct WeightSlots<W> {
    sources: Vec<Source>,
    slots: Vec<Option<W>>,
}

impl<W> WeightSlots<W> {
    pub fn new() -> Self {
        WeightSlots { sources: Vec::new(), slots: Vec::new() }
    }

    /// Registers a tensor the model needs, checking its shape now so that a bad
    /// file fails before its weights are read.
    pub fn want(&mut self, header: &Header, name: &str, dims: &[usize]) -> Result<usize> {
        let info = Self::check(header, name, dims)?.clone();
        Ok(self.push(Source { tensor: name.to_string(), info, start: 0 }))
    }

    /// Registers a tensor that may be absent; `None` if it is.
    pub fn want_opt(&mut self, header: &Header, name: &str, dims: &[usize]) -> Result<Option<usize>> {
        header.tensor(name).map(|_| self.want(header, name, dims)).transpose()
    }

    /// Registers a fused tensor of `dims` whose rows (the last dimension)
    /// hold `parts` weights one after another, each its own slot.
    pub fn want_parts(&mut self, header: &Header, name: &str, dims: &[usize], parts: &[usize]) -> Result<Vec<usize>> {
        let info = Self::check(header, name, dims)?;
        if parts.iter().sum::<usize>() != dims[dims.len() - 1] {
            return Err(Error::BadModel(format!("tensor `{name}` does not split into {parts:?}")));
        }
        let row = if dims.len() == 1 { 1 } else { dims[0] as u64 };
        let mut first = 0;
        let mut slots = Vec::with_capacity(parts.len());
        for &n in parts {
            if info.ty.bytes_for(first as u64 * row).is_none() {
                return Err(Error::BadModel(format!(
                    "tensor `{name}` cannot be split at row {first} in {}",
                    info.ty.name()
                )));
            }
            let at = |r: usize| info.ty.bytes_for(r as u64 * row).expect("checked above");
            let mut dims = info.dims.clone();
            *dims.last_mut().expect("a tensor has dimensions") = n as u64;
            let part = TensorInfo {
                name: format!("{name}[{first}..{}]", first + n),
                dims,
                ty: info.ty,
                offset: info.offset + at(first),
                size: at(n),
            };
            slots.push(self.push(Source { tensor: name.to_string(), info: part, start: at(first) }));
            first += n;
        }
        Ok(slots)
    }

    fn check<'h>(header: &'h Header, name: &str, dims: &[usize]) -> Result<&'h TensorInfo> {
        let info = header.tensor(name).ok_or_else(|| Error::BadModel(format!("tensor `{name}` is missing")))?;
        let expected: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        if info.dims != expected {
            return Err(Error::BadModel(format!("tensor `{name}` has shape {:?}, expected {:?}", info.dims, expected)));
        }
        if !info.ty.is_supported() {
            return Err(Error::UnsupportedQuant { tensor: name.to_string(), ty: info.ty.name() });
        }
        Ok(info)
    }

    fn push(&mut self, source: Source) -> usize {
        self.sources.push(source);
        self.slots.push(None);
        self.slots.len() - 1
    }

    /// Hands streamed rows of a tensor to the backend, for every slot whose
    /// bytes they hold; tensors the model does not use are dropped.
    pub fn offer<B: Backend<Weight = W>>(
        &mut self,
        backend: &mut B,
        info: &TensorInfo,
        first: u64,
        data: &[u8],
    ) -> Result<()> {
        let from = first * info.row_bytes();
        let to = from + data.len() as u64;
        for (source, slot) in self.sources.iter().zip(&mut self.slots) {
            if source.tensor != info.name {
                continue;
            }
            let (start, end) = (source.start, source.start + source.info.size);
            let (lo, hi) = (from.max(start), to.min(end));
            if lo >= hi && source.info.size > 0 {
                continue;
            }
            let weight = match slot {
                Some(w) => w,
                None => slot.insert(backend.alloc(&source.info)?),
            };
            let bytes = &data[(lo - from) as usize..(hi - from) as usize];
            backend.fill(weight, &source.info, (lo - start) / source.info.row_bytes(), bytes)?;
        }
        Ok(())
    }

    /// Takes every weight out, in registration order; fails if one never came.
    pub fn into_weights(self) -> Result<Vec<W>> {
        self.sources
            .into_iter()
            .zip(self.slots)
            .map(|(s, w)| w.ok_or_else(|| Error::BadModel(format!("tensor `{}` has no data", s.info.name))))
            .collect()
    }
}

/// An architecture as data: its hyper-parameters, where each of its weights
/// sits among the loaded ones, and its forward pass (in its own file).
pub enum Spec {
    Llama(llama::Llama),
    Gemma3(gemma3::Gemma3),
    Qwen2(qwen2::Qwen2),
    Qwen3(qwen3::Qwen3),
    Smollm3(smollm3::Smollm3),
    Phi3(phi3::Phi3),
    Phi2(phi2::Phi2),
    Gpt2(gpt2::Gpt2),
}

/// Calls the same method on whichever architecture a [`Spec`] holds.
macro_rules! each_arch {
    ($spec:expr, $m:ident => $body:expr) => {
        match $spec {
            Spec::Llama($m) => $body,
            Spec::Gemma3($m) => $body,
            Spec::Qwen2($m) => $body,
            Spec::Qwen3($m) => $body,
            Spec::Smollm3($m) => $body,
            Spec::Phi3($m) => $body,
            Spec::Phi2($m) => $body,
            Spec::Gpt2($m) => $body,
        }
    };
}

impl Spec {
    fn hparams(&self) -> &Hparams {
        each_arch!(self, m => m.hparams())
    }
}

/// A model under construction: it knows the tensors it needs and takes them as
/// they stream in.
pub struct Builder<B: Backend> {
    spec: Spec,
    slots: WeightSlots<B::Weight>,
}

impl<B: Backend> Builder<B> {
    /// Chooses the architecture named by the header and checks that every
    /// tensor it needs is present with the right shape and a supported type.
    pub fn for_header(header: &Header) -> Result<Self> {
        let arch = header
            .metadata
            .architecture()
            .ok_or_else(|| Error::BadModel("metadata `general.architecture` is missing".into()))?;
        let mut slots = WeightSlots::new();
        let s = &mut slots;
        let spec = match arch {
            "llama" => Spec::Llama(llama::Llama::new(header, s)?),
            "gemma3" => Spec::Gemma3(gemma3::Gemma3::new(header, s)?),
            "qwen2" => Spec::Qwen2(qwen2::Qwen2::new(header, s)?),
            "qwen3" => Spec::Qwen3(qwen3::Qwen3::new(header, s)?),
            "smollm3" => Spec::Smollm3(smollm3::Smollm3::new(header, s)?),
            "phi3" => Spec::Phi3(phi3::Phi3::new(header, s)?),
            "phi2" => Spec::Phi2(phi2::Phi2::new(header, s)?),
            "gpt2" => Spec::Gpt2(gpt2::Gpt2::new(header, s)?),
            other => return Err(Error::UnsupportedArch(other.to_string())),
        };
        Ok(Builder { spec, slots })
    }

    pub fn hparams(&self) -> &Hparams {
        self.spec.hparams()
    }

    /// Offers streamed rows of a tensor (see [`GgufSink::rows`]); tensors
    /// the model does not use are dropped.
    ///
    /// [`GgufSink::rows`]: crate::gguf::GgufSink::rows
    pub fn rows(&mut self, backend: &mut B, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()> {
        match &mut self.spec {
            // Vectors, which arrive whole (one row).
            Spec::Llama(m) if info.name == llama::ROPE_FREQS => m.rope_freqs(info, data),
            Spec::Phi3(m) if phi3::is_rope_factors(&info.name) => m.rope_factors(info, data),
            _ => self.slots.offer(backend, info, first, data),
        }
    }

    /// The model, for sessions of `context` positions (Phi-3's LongRoPE
    /// picks its factors by it).
    pub fn finish(mut self, context: usize) -> Result<Architecture<B>> {
        if let Spec::Phi3(m) = &mut self.spec {
            m.for_context(context)?;
        }
        Ok(Architecture { spec: self.spec, weights: self.slots.into_weights()? })
    }
}

/// A loaded model of one of the supported architectures.
pub struct Architecture<B: Backend> {
    spec: Spec,
    weights: Vec<B::Weight>,
}

impl<B: Backend> Architecture<B> {
    pub fn hparams(&self) -> &Hparams {
        self.spec.hparams()
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
        let w = &self.weights;
        each_arch!(&self.spec, m => m.forward(backend, w, cache, tokens, pos, logits))
    }
}
