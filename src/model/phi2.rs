//! The phi2 architecture: Phi-1.5 and Phi-2.
//!
//! As llama.cpp's `src/models/phi2.cpp`: one LayerNorm feeds attention and
//! the feed-forward side by side, and both outputs join the residual
//! stream together. Attention: q, k, v with biases (fused or not), NeoX
//! RoPE over the first `rope.dimension_count` dimensions of each head, q
//! scaled by 1/sqrt(head_dim); the feed-forward is GELU between two biased
//! linear layers; the output matrix has a bias.

use super::blocks::{self, Bias, Ffn, Head, Linear, Norm, SelfAttention};
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::Result;

struct Layer {
    norm: Norm,
    attn: SelfAttention,
    ffn: Ffn,
}

pub struct Phi2 {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Phi2 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "phi2");
        let hparams = keys.decoder(header, "attention.layer_norm_epsilon", 1e-5)?;
        let rope = keys.rope(hparams.head_dim, 10_000.0, true)?;
        let (e, v, f) = (hparams.n_embd, hparams.n_vocab, hparams.n_ff);
        let (q, kv) = (hparams.n_head * hparams.head_dim, hparams.n_head_kv * hparams.head_dim);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::layer(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::Required)?;
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let n = |name: &str| format!("blk.{i}.{name}");
            layers.push(Layer {
                norm: Norm::layer(slots, header, &n("attn_norm"), e)?,
                attn: SelfAttention {
                    qkv: blocks::qkv(slots, header, i, e, [q, kv, kv], Bias::Optional)?,
                    qk_norm: None,
                    q_scale: Some(1.0 / (hparams.head_dim as f32).sqrt()),
                    wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::Required)?,
                },
                ffn: Ffn::Gelu {
                    up: Linear::want(slots, header, &n("ffn_up"), e, f, Bias::Required)?,
                    down: Linear::want(slots, header, &n("ffn_down"), f, e, Bias::Required)?,
                },
            });
        }
        let attn = Attention { scale: 1.0, ..Attention::new(&hparams, None) };
        Ok(Phi2 { hparams, rope, attn, embd, head, layers })
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
        let eps = self.hparams.norm_eps;
        let mut x = b.embed(&w[self.embd], tokens);
        for (i, l) in self.layers.iter().enumerate() {
            let xn = l.norm.forward(b, w, &x, eps);
            let mut y = l.attn.forward(b, w, &xn, cache, i, pos, Some(&self.rope), &self.attn, eps);
            let f = l.ffn.forward(b, w, &xn);
            // (attention + feed-forward) + residual, in llama.cpp's order.
            b.add(&mut y, &f);
            b.add(&mut y, &x);
            x = y;
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}
