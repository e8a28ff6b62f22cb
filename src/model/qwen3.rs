//! The qwen3 architecture: Qwen 3 dense models (0.6B to 32B), text only.
//!
//! As llama.cpp's `src/models/qwen3.cpp`: llama's layer without biases,
//! with a per-head RMSNorm of q and k before NeoX RoPE; heads may be wider
//! than `n_embd / n_head` (`attention.key_length`).

use super::blocks::{Bias, Head, Norm};
use super::llama::Layer;
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::Result;

pub struct Qwen3 {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Qwen3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "qwen3");
        let hparams = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(hparams.head_dim, 10_000.0, true)?;
        let (e, v, hd) = (hparams.n_embd, hparams.n_vocab, hparams.head_dim);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::No)?;
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let mut l = Layer::want(slots, header, i, &hparams)?;
            let q = slots.want(header, &format!("blk.{i}.attn_q_norm.weight"), &[hd])?;
            let k = slots.want(header, &format!("blk.{i}.attn_k_norm.weight"), &[hd])?;
            l.attn.qk_norm = Some([q, k]);
            layers.push(l);
        }
        let attn = Attention::new(&hparams, None);
        Ok(Qwen3 { hparams, rope, attn, embd, head, layers })
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
