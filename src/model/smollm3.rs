//! The smollm3 architecture: SmolLM3 (3B).
//!
//! Llama's layer, as llama.cpp's `src/models/smollm3.cpp` runs it, except
//! that every fourth layer (3, 7, 11, ...) leaves q and k unrotated
//! (llama.cpp's `n_no_rope_layer_step`, fixed at 4 for this architecture:
//! the GGUF does not say).

use super::blocks::Bias;
use super::llama::{Decoder, Layer};
use super::{Backend, Hparams, Keys, Logits, WeightSlots};
use crate::gguf::Header;
use crate::Result;

/// Layer `i` is rotated unless `(i + 1) % NO_ROPE_LAYER_STEP == 0`.
const NO_ROPE_LAYER_STEP: usize = 4;

pub struct Smollm3(Decoder);

impl Smollm3 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "smollm3");
        let h = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(h.head_dim, 10_000.0, false)?;
        let layer = |slots: &mut WeightSlots<W>, i| Layer::want(slots, header, i, &h);
        Ok(Smollm3(Decoder::new(header, slots, h.clone(), rope, Bias::No, layer)?))
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
        self.0.forward(b, w, cache, tokens, pos, logits, |i| (i + 1) % NO_ROPE_LAYER_STEP != 0)
    }
}
