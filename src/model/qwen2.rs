//! The qwen2 architecture: Qwen 2 and 2.5 (0.5B to 72B), text only.
//!
//! Llama's layer, as llama.cpp's `src/models/qwen2.cpp` runs it, with
//! biases on the query, key and value projections, NeoX RoPE (base 1e6 in
//! the released models), and an `output.bias` where the file has one.

use super::blocks::Bias;
use super::llama::{Decoder, Layer};
use super::{Backend, Hparams, Keys, Logits, WeightSlots};
use crate::gguf::Header;
use crate::Result;

pub struct Qwen2(Decoder);

impl Qwen2 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "qwen2");
        let h = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(h.head_dim, 10_000.0, true)?;
        let layer = |slots: &mut WeightSlots<W>, i| Layer::want(slots, header, i, &h);
        Ok(Qwen2(Decoder::new(header, slots, h.clone(), rope, Bias::Optional, layer)?))
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
