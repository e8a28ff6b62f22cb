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

use super::blocks::{self, Bias, Ffn, Fused, Gate, Linear, Norm, SelfAttention};
use super::llama::{check_f32_vector, f32s, Decoder, Layer};
use super::{Attention, Backend, Hparams, Keys, Logits, WeightSlots};
use crate::gguf::{Header, TensorInfo};
use crate::Result;

const FACTORS_SHORT: &str = "rope_factors_short.weight";
const FACTORS_LONG: &str = "rope_factors_long.weight";

pub fn is_rope_factors(name: &str) -> bool {
    name == FACTORS_SHORT || name == FACTORS_LONG
}

pub struct Phi3 {
    decoder: Decoder,
    /// LongRoPE's context of the short factors, and both sets as they stream by.
    original_context: usize,
    factors: [Option<Vec<f32>>; 2],
}

impl Phi3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "phi3");
        keys.dense()?;
        let h = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-5)?;
        let rope = keys.rope(h.head_dim, 10_000.0, true)?;
        for name in [FACTORS_SHORT, FACTORS_LONG] {
            check_f32_vector(header, name, rope.dims / 2)?;
        }
        let original_context = keys.opt_usize("rope.scaling.original_context_length")?.unwrap_or(h.context_length);
        let (e, f) = (h.n_embd, h.n_ff);
        let (q, kv) = (h.n_head * h.head_dim, h.n_head_kv * h.head_dim);
        let layer = |slots: &mut WeightSlots<W>, i| {
            let n = |name: &str| format!("blk.{i}.{name}");
            Ok(Layer {
                attn_norm: Norm::rms(slots, header, &n("attn_norm"), e)?,
                attn: SelfAttention {
                    qkv: blocks::qkv(slots, header, i, e, [q, kv, kv], Bias::Optional)?,
                    qk_norm: None,
                    q_scale: Some(1.0 / (h.head_dim as f32).sqrt()),
                    wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::Optional)?,
                },
                ffn_norm: Norm::rms(slots, header, &n("ffn_norm"), e)?,
                ffn: Ffn::Gated {
                    gate_up: Fused::want_fused(slots, header, &n("ffn_up"), e, [f, f], Bias::No)?,
                    act: Gate::Silu,
                    down: Linear::want(slots, header, &n("ffn_down"), f, e, Bias::No)?,
                },
            })
        };
        let mut decoder = Decoder::new(header, slots, h.clone(), rope, Bias::No, layer)?;
        decoder.attn = Attention { scale: 1.0, ..decoder.attn };
        Ok(Phi3 { decoder, original_context, factors: [None, None] })
    }

    pub fn hparams(&self) -> &Hparams {
        &self.decoder.hparams
    }

    /// Keeps a set of LongRoPE factors (checked above).
    pub(crate) fn rope_factors(&mut self, info: &TensorInfo, data: &[u8]) -> Result<()> {
        self.factors[(info.name == FACTORS_LONG) as usize] = Some(f32s(data));
        Ok(())
    }

    /// Picks the factors for sessions of `context` positions, as llama.cpp
    /// does: the long ones past the original context.
    pub(crate) fn for_context(&mut self, context: usize) -> Result<()> {
        let long = context > self.original_context;
        self.decoder.rope.factors = self.factors[long as usize].take();
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
        self.decoder.forward(b, w, cache, tokens, pos, logits, |_| true)
    }
}
