//! The gpt2 architecture: GPT-2 and DistilGPT-2.
//!
//! As llama.cpp's `src/models/gpt2.cpp`: token plus learned position
//! embeddings (so no context past `context_length`, and no RoPE), then
//! llama's layer with other parts: LayerNorm → attention with one fused, biased `attn_qkv` → biased output
//! projection → residual; LayerNorm → GELU between two biased linear
//! layers → residual; a final LayerNorm and the output matrix (tied to the
//! embeddings where the file has none).

use super::blocks::{Bias, Ffn, Fused, Head, Linear, Norm, SelfAttention};
use super::llama::Layer;
use super::{Attention, Backend, Hparams, Keys, Logits, WeightSlots};
use crate::gguf::Header;
use crate::Result;

pub struct Gpt2 {
    pub hparams: Hparams,
    attn: Attention,
    embd: usize,
    positions: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Gpt2 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "gpt2");
        let mut hparams = keys.decoder(header, "attention.layer_norm_epsilon", 1e-5)?;
        hparams.context_length = keys.usize("context_length")?;
        hparams.max_context = Some(hparams.context_length);
        let (e, v, f) = (hparams.n_embd, hparams.n_vocab, hparams.n_ff);
        let (q, kv) = (hparams.n_head * hparams.head_dim, hparams.n_head_kv * hparams.head_dim);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let positions = slots.want(header, "position_embd.weight", &[e, hparams.context_length])?;
        let norm = Norm::layer(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::No)?;
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let n = |name: &str| format!("blk.{i}.{name}");
            layers.push(Layer {
                attn_norm: Norm::layer(slots, header, &n("attn_norm"), e)?,
                attn: SelfAttention {
                    qkv: Fused::want_fused(slots, header, &n("attn_qkv"), e, [q, kv, kv], Bias::Required)?,
                    qk_norm: None,
                    q_scale: None,
                    wo: Linear::want(slots, header, &n("attn_output"), q, e, Bias::Required)?,
                },
                ffn_norm: Norm::layer(slots, header, &n("ffn_norm"), e)?,
                ffn: Ffn::Gelu {
                    up: Linear::want(slots, header, &n("ffn_up"), e, f, Bias::Required)?,
                    down: Linear::want(slots, header, &n("ffn_down"), f, e, Bias::Required)?,
                },
            });
        }
        let attn = Attention::new(&hparams, None);
        Ok(Gpt2 { hparams, attn, embd, positions, head, layers })
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
        let at: Vec<u32> = (pos..pos + tokens.len()).map(|p| p as u32).collect();
        let p = b.embed(&w[self.positions], &at);
        b.add(&mut x, &p);
        for (i, l) in self.layers.iter().enumerate() {
            l.forward(b, w, &mut x, cache, i, pos, None, &self.attn, eps);
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}
