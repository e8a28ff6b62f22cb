//! The qwen3 architecture: Qwen 3 dense models (0.6B to 32B), text only.
//!
//! As llama.cpp's `src/models/qwen3.cpp`: llama's layer without biases,
//! with a per-head RMSNorm of q and k before NeoX RoPE; heads may be wider
//! than `n_embd / n_head` (`attention.key_length`).

use super::blocks::Bias;
use super::llama::{Decoder, Layer};
use super::{Backend, Hparams, Keys, Logits, WeightSlots};
use crate::gguf::Header;
use crate::Result;

pub struct Qwen3(Decoder);

impl Qwen3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "qwen3");
        let h = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(h.head_dim, 10_000.0, true)?;
        let layer = |slots: &mut WeightSlots<W>, i| {
            let mut l = Layer::want(slots, header, i, &h)?;
            let q = slots.want(header, &format!("blk.{i}.attn_q_norm.weight"), &[h.head_dim])?;
            let k = slots.want(header, &format!("blk.{i}.attn_k_norm.weight"), &[h.head_dim])?;
            l.attn.qk_norm = Some([q, k]);
            Ok(l)
        };
        Ok(Qwen3(Decoder::new(header, slots, h.clone(), rope, Bias::No, layer)?))
    }

    pub fn hparams(&self) -> &Hparams {
        &self.0.hparams
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
