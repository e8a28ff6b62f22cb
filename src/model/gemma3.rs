//! The gemma3 architecture: Gemma 3 (270M to 27B), text only.
//!
//! As llama.cpp's `llm_build_gemma3_iswa` runs it: embeddings scaled by
//! `sqrt(n_embd)`; RMSNorm → q, k, v with a per-head RMSNorm of q and k,
//! NeoX RoPE → attention → RMSNorm → residual; RMSNorm → GELU-gated
//! feed-forward → RMSNorm → residual; final RMSNorm and the output matrix
//! tied to the embeddings. Five layers in six attend over a sliding window
//! with their own RoPE base; every sixth is global. The GGUF's norm weights
//! already hold Gemma's `1 + w` (`convert_hf_to_gguf.py` adds the 1), and
//! Gemma 3 has no logit soft-capping.

use super::blocks::{self, Bias, Ffn, Fused, Gate, Head, Linear, Norm, SelfAttention};
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::{Error, Result};

/// llama.cpp's `set_swa_pattern(6)`: layer `i` is local unless `i % 6 == 5`
/// (the GGUF carries no pattern).
const SWA_PATTERN: usize = 6;

/// Whether layer `i` attends over the sliding window.
fn is_local(i: usize) -> bool {
    i % SWA_PATTERN < SWA_PATTERN - 1
}
/// RoPE base of the local layers (llama.cpp's `rope_freq_base_train_swa`).
const LOCAL_FREQ_BASE: f32 = 10_000.0;

struct Layer {
    attn_norm: Norm,
    attn: SelfAttention,
    post_attn_norm: Norm,
    ffn_norm: Norm,
    ffn: Ffn,
    post_ffn_norm: Norm,
    local: bool,
}

/// RoPE and attention of one kind of layer (local or global).
struct Kind {
    rope: Rope,
    attn: Attention,
}

pub struct Gemma3 {
    pub hparams: Hparams,
    local: Kind,
    global: Kind,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Gemma3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "gemma3");
        if keys.opt_usize("attention.key_length")?.is_none() {
            return Err(Error::BadModel("metadata `gemma3.attention.key_length` is missing".into()));
        }
        let mut hparams = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        hparams.context_length = keys.opt_usize("context_length")?.unwrap_or(131_072);
        let window = keys.usize("attention.sliding_window")?;
        if window == 0 {
            return Err(Error::BadModel("a sliding window of 0 positions".into()));
        }
        let (e, v, hd, f) = (hparams.n_embd, hparams.n_vocab, hparams.head_dim, hparams.n_ff);
        let global_rope = keys.rope(hd, 1_000_000.0, true)?;
        let local_rope = Rope { freq_base: LOCAL_FREQ_BASE, freq_scale: 1.0, ..global_rope.clone() };
        // llama.cpp's `f_attention_scale`, applied to q before attention:
        // 1/sqrt(n_embd / n_head) for the 27B (62 layers), else 1/sqrt(head_dim).
        let scale_dim = if hparams.n_layer == 62 { e / hparams.n_head } else { hd };
        let attn = Attention { scale: 1.0 / (scale_dim as f32).sqrt(), ..Attention::new(&hparams, None) };
        let local = Kind { rope: local_rope, attn: Attention { window: Some(window), ..attn.clone() } };
        let global = Kind { rope: global_rope, attn };

        let (q, kv) = (hparams.n_head * hd, hparams.n_head_kv * hd);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::No)?;
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let n = |name: &str| format!("blk.{i}.{name}");
            let mut norm = |name: &str, len: usize| Norm::rms(slots, header, &n(name), len);
            let (attn_norm, post_attn_norm) = (norm("attn_norm", e)?, norm("post_attention_norm", e)?);
            let (ffn_norm, post_ffn_norm) = (norm("ffn_norm", e)?, norm("post_ffw_norm", e)?);
            let (Norm::Rms(q_norm), Norm::Rms(k_norm)) = (norm("attn_q_norm", hd)?, norm("attn_k_norm", hd)?) else {
                unreachable!("RMSNorms")
            };
            layers.push(Layer {
                attn_norm,
                attn: SelfAttention {
                    qkv: blocks::qkv(slots, header, i, e, [q, kv, kv], Bias::No)?,
                    qk_norm: Some([q_norm, k_norm]),
                    q_scale: None,
                    wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::No)?,
                },
                post_attn_norm,
                ffn_norm,
                ffn: Ffn::Gated {
                    gate_up: Fused::want(slots, header, [&n("ffn_gate"), &n("ffn_up")], e, [f, f], Bias::No)?,
                    act: Gate::Gelu,
                    down: Linear::want(slots, header, &n("ffn_down"), f, e, Bias::No)?,
                },
                post_ffn_norm,
                local: is_local(i),
            });
        }
        hparams.windows = layers.iter().map(|l| l.local.then_some(window)).collect();
        Ok(Gemma3 { hparams, local, global, embd, head, layers })
    }

    pub fn hparams(&self) -> &Hparams {
        &self.hparams
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
        let h = &self.hparams;
        let eps = h.norm_eps;
        let mut x = b.embed(&w[self.embd], tokens);
        b.scale(&mut x, (h.n_embd as f32).sqrt());
        for (i, l) in self.layers.iter().enumerate() {
            let kind = if l.local { &self.local } else { &self.global };
            let xn = l.attn_norm.forward(b, w, &x, eps);
            // llama.cpp scales q by `f_attention_scale` before attention;
            // the attention's own scale does the same (exactly so for the
            // powers of two of 1/sqrt(head_dim) with heads of 256 or 64).
            let a = l.attn.forward(b, w, &xn, cache, i, pos, Some(&kind.rope), &kind.attn, eps);
            let a = l.post_attn_norm.forward(b, w, &a, eps);
            b.add(&mut x, &a);

            let xn = l.ffn_norm.forward(b, w, &x, eps);
            let f = l.ffn.forward(b, w, &xn);
            let f = l.post_ffn_norm.forward(b, w, &f, eps);
            b.add(&mut x, &f);
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}

#[cfg(test)]
mod tests {
    /// gemma-3-270m's 18 layers: 5, 11 and 17 are global, as llama.cpp has them.
    #[test]
    fn every_sixth_layer_is_global() {
        let global: Vec<usize> = (0..18).filter(|&i| !super::is_local(i)).collect();
        assert_eq!(global, [5, 11, 17]);
    }
}
