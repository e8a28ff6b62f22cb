//! The llama architecture: SmolLM, TinyLlama, Llama 2/3.x, Mistral.
//!
//! Pre-norm decoder: RMSNorm → attention with RoPE and grouped-query heads →
//! residual; RMSNorm → SwiGLU feed-forward → residual; final RMSNorm and the
//! output matrix (tied to the embeddings when the file has no `output.weight`).

use super::blocks::{self, Bias, Ffn, Fused, Gate, Head, Linear, Norm, SelfAttention};
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::{Header, TensorInfo};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Llama 3.x's long-context RoPE divisors, read as the tensor streams by.
pub const ROPE_FREQS: &str = "rope_freqs.weight";

pub(crate) struct Layer {
    pub attn_norm: Norm,
    pub attn: SelfAttention,
    pub ffn_norm: Norm,
    pub ffn: Ffn,
}

impl Layer {
    /// Layer `i` as llama, and the architectures built like it, name its
    /// tensors: separate (or fused) q, k, v with optional biases, RMSNorms,
    /// a SwiGLU feed-forward.
    pub(crate) fn want<W>(slots: &mut WeightSlots<W>, header: &Header, i: usize, h: &Hparams) -> Result<Layer> {
        let (e, q, kv) = (h.n_embd, h.n_head * h.head_dim, h.n_head_kv * h.head_dim);
        let n = |name: &str| format!("blk.{i}.{name}");
        Ok(Layer {
            attn_norm: Norm::rms(slots, header, &n("attn_norm"), e)?,
            attn: SelfAttention {
                qkv: blocks::qkv(slots, header, i, e, [q, kv, kv], Bias::Optional)?,
                qk_norm: None,
                q_scale: None,
                wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::Optional)?,
            },
            ffn_norm: Norm::rms(slots, header, &n("ffn_norm"), e)?,
            ffn: Ffn::Gated {
                gate_up: Fused::want(slots, header, [&n("ffn_gate"), &n("ffn_up")], e, [h.n_ff; 2], Bias::No)?,
                act: Gate::Silu,
                down: Linear::want(slots, header, &n("ffn_down"), h.n_ff, e, Bias::No)?,
            },
        })
    }

    /// The residual stream `x` of a batch at `pos` through layer `i`:
    /// RMSNorm → attention (its q and k rotated by `rope` where given) →
    /// residual; RMSNorm → feed-forward → residual.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward<B: Backend>(
        &self,
        b: &mut B,
        w: &[B::Weight],
        x: &mut B::Act,
        cache: &mut B::Cache,
        i: usize,
        pos: usize,
        rope: Option<&Rope>,
        attn: &Attention,
        eps: f32,
    ) {
        let xn = self.attn_norm.forward(b, w, x, eps);
        let a = self.attn.forward(b, w, &xn, cache, i, pos, rope, attn, eps);
        b.add(x, &a);
        let xn = self.ffn_norm.forward(b, w, x, eps);
        let f = self.ffn.forward(b, w, &xn);
        b.add(x, &f);
    }
}

/// Llama's decoder: the embeddings, a stack of llama layers and the head.
/// qwen2, qwen3, smollm3 and phi3 are this too, with layers of their own
/// making or other rotations.
pub(crate) struct Decoder {
    pub hparams: Hparams,
    pub rope: Rope,
    pub attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Decoder {
    /// The decoder of `hparams` with `layer(slots, i)` for its layers, an
    /// RMSNorm before the head and the output bias as `output_bias` says.
    pub(crate) fn new<W>(
        header: &Header,
        slots: &mut WeightSlots<W>,
        hparams: Hparams,
        rope: Rope,
        output_bias: Bias,
        mut layer: impl FnMut(&mut WeightSlots<W>, usize) -> Result<Layer>,
    ) -> Result<Decoder> {
        let (e, v) = (hparams.n_embd, hparams.n_vocab);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, output_bias)?;
        let layers = (0..hparams.n_layer).map(|i| layer(slots, i)).collect::<Result<_>>()?;
        let attn = Attention::new(&hparams, None);
        Ok(Decoder { hparams, rope, attn, embd, head, layers })
    }

    /// The forward pass, layer `i`'s q and k rotated where `rotates(i)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward<B: Backend>(
        &self,
        b: &mut B,
        w: &[B::Weight],
        cache: &mut B::Cache,
        tokens: &[u32],
        pos: usize,
        logits: Logits,
        rotates: impl Fn(usize) -> bool,
    ) -> B::Act {
        let eps = self.hparams.norm_eps;
        let mut x = b.embed(&w[self.embd], tokens);
        for (i, l) in self.layers.iter().enumerate() {
            let rope = rotates(i).then_some(&self.rope);
            l.forward(b, w, &mut x, cache, i, pos, rope, &self.attn, eps);
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}

pub struct Llama(Decoder);

impl Llama {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "llama");
        keys.dense()?;
        let h = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-5)?;
        let rope = keys.rope(h.head_dim, 10_000.0, false)?;
        check_f32_vector(header, ROPE_FREQS, rope.dims / 2)?;
        let layer = |slots: &mut WeightSlots<W>, i| Layer::want(slots, header, i, &h);
        Ok(Llama(Decoder::new(header, slots, h.clone(), rope, Bias::No, layer)?))
    }

    pub fn hparams(&self) -> &Hparams {
        &self.0.hparams
    }

    /// Keeps `rope_freqs.weight` (checked above).
    pub(crate) fn rope_freqs(&mut self, _info: &TensorInfo, data: &[u8]) -> Result<()> {
        self.0.rope.factors = Some(f32s(data));
        Ok(())
    }

    pub fn forward<B: Backend>(
        &self,
        b: &mut B,
        w: &[B::Weight],
        cache: &mut B::Cache,
        tokens: &[u32],
        pos: usize,
        logits: Logits,
    ) -> B::Act {
        self.0.forward(b, w, cache, tokens, pos, logits, |_| true)
    }
}

/// Checks that tensor `name`, where the file has it, is F32 of `n` values
/// (RoPE's per-frequency divisors, read by the architecture itself).
pub(crate) fn check_f32_vector(header: &Header, name: &str, n: usize) -> Result<()> {
    match header.tensor(name) {
        Some(t) if t.ty != GgmlType::F32 || t.dims != [n as u64] => {
            Err(Error::BadModel(format!("tensor `{name}` should be F32 [{n}], is {} {:?}", t.ty.name(), t.dims)))
        }
        _ => Ok(()),
    }
}

/// Little-endian f32s.
pub(crate) fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("four bytes"))).collect()
}
