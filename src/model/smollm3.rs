//! The smollm3 architecture: SmolLM3 (3B).
//!
//! Llama's layer, as llama.cpp's `src/models/smollm3.cpp` runs it, except
//! that every fourth layer (3, 7, 11, ...) leaves q and k unrotated
//! (llama.cpp's `n_no_rope_layer_step`, fixed at 4 for this architecture:
//! the GGUF does not say).

use super::blocks::{Bias, Head, Norm};
use super::llama::Layer;
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::Result;

/// Layer `i` is rotated unless `(i + 1) % NO_ROPE_LAYER_STEP == 0`.
const NO_ROPE_LAYER_STEP: usize = 4;

pub struct Smollm3 {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Smollm3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "smollm3");
        let hparams = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(hparams.head_dim, 10_000.0, false)?;
        let (e, v) = (hparams.n_embd, hparams.n_vocab);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::No)?;
        let layers = (0..hparams.n_layer).map(|i| Layer::want(slots, header, i, &hparams)).collect::<Result<_>>()?;
        let attn = Attention::new(&hparams, None);
        Ok(Smollm3 { hparams, rope, attn, embd, head, layers })
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
            let rope = ((i + 1) % NO_ROPE_LAYER_STEP != 0).then_some(&self.rope);
            l.forward(b, w, &mut x, cache, i, pos, rope, &self.attn, eps);
        }
        self.head.forward(b, w, x, tokens.len(), logits, eps)
    }
}
