//! The phi3 architecture: Phi-3 / Phi-3.5-mini, Phi-4-mini (dense).
//!
//! As llama.cpp's `src/models/phi3.cpp`: RMSNorm → attention with q, k, v
//! usually fused in one `attn_qkv`, NeoX RoPE over `rope.dimension_count`
//! dimensions, q scaled by 1/sqrt(head_dim) → residual; RMSNorm → SwiGLU
//! whose gate and up are one `ffn_up` of twice the width → residual.
//! LongRoPE: the per-frequency divisors `rope_factors_short` or, for a
//! context past `rope.scaling.original_context_length`,
//! `rope_factors_long`, and cos/sin scaled by `rope.scaling.attn_factor`.
//! The sliding window some files declare is not applied, as llama.cpp
//! disables it for Phi-3.

use super::blocks::{self, Bias, Ffn, Fused, Gate, Head, Linear, Norm, SelfAttention};
use super::llama::Layer;
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::{Header, TensorInfo};
use crate::quant::GgmlType;
use crate::{Error, Result};

const FACTORS_SHORT: &str = "rope_factors_short.weight";
const FACTORS_LONG: &str = "rope_factors_long.weight";

pub fn is_rope_factors(name: &str) -> bool {
    name == FACTORS_SHORT || name == FACTORS_LONG
}

pub struct Phi3 {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
    /// LongRoPE's context of the short factors, and both sets as they stream by.
    original_context: usize,
    factors: [Option<Vec<f32>>; 2],
}

impl Phi3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "phi3");
        keys.dense()?;
        let hparams = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-5)?;
        let rope = keys.rope(hparams.head_dim, 10_000.0, true)?;
        for name in [FACTORS_SHORT, FACTORS_LONG] {
            if let Some(t) = header.tensor(name) {
                if t.ty != GgmlType::F32 || t.dims != [rope.dims as u64 / 2] {
                    return Err(Error::BadModel(format!("tensor `{name}` should be F32 [{}]", rope.dims / 2)));
                }
            }
        }
        let original_context =
            keys.opt_usize("rope.scaling.original_context_length")?.unwrap_or(hparams.context_length);
        let (e, v, f) = (hparams.n_embd, hparams.n_vocab, hparams.n_ff);
        let (q, kv) = (hparams.n_head * hparams.head_dim, hparams.n_head_kv * hparams.head_dim);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::No)?;
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let n = |name: &str| format!("blk.{i}.{name}");
            layers.push(Layer {
                attn_norm: Norm::rms(slots, header, &n("attn_norm"), e)?,
                attn: SelfAttention {
                    qkv: blocks::qkv(slots, header, i, e, [q, kv, kv], Bias::Optional)?,
                    qk_norm: None,
                    q_scale: Some(1.0 / (hparams.head_dim as f32).sqrt()),
                    wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::Optional)?,
                },
                ffn_norm: Norm::rms(slots, header, &n("ffn_norm"), e)?,
                ffn: Ffn::Gated {
                    gate_up: Fused::want_fused(slots, header, &n("ffn_up"), e, [f, f], Bias::No)?,
                    act: Gate::Silu,
                    down: Linear::want(slots, header, &n("ffn_down"), f, e, Bias::No)?,
                },
            });
        }
        let attn = Attention { scale: 1.0, ..Attention::new(&hparams, None) };
        Ok(Phi3 { hparams, rope, attn, embd, head, layers, original_context, factors: [None, None] })
    }

    /// Keeps a set of LongRoPE factors (checked F32 of `dims / 2` above).
    pub(crate) fn rope_factors(&mut self, info: &TensorInfo, data: &[u8]) -> Result<()> {
        let factors = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        self.factors[(info.name == FACTORS_LONG) as usize] = Some(factors);
        Ok(())
    }

    /// Picks the factors for sessions of `context` positions, as llama.cpp
    /// does: the long ones past the original context.
    pub(crate) fn for_context(&mut self, context: usize) -> Result<()> {
        let long = context > self.original_context;
        self.rope.factors = self.factors[long as usize].take();
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
        let eps = self.hparams.norm_eps;
        let mut x = b.embed(&w[self.embd], tokens);
        for (i, l) in self.layers.iter().enumerate() {
            l.forward(b, w, &mut x, cache, i, pos, Some(&self.rope), &self.attn, eps);
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}
