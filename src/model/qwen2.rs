//! The qwen2 architecture: Qwen 2 and 2.5 (0.5B to 72B), text only.
//!
//! Llama's layer, as llama.cpp's `src/models/qwen2.cpp` runs it, with
//! biases on the query, key and value projections, NeoX RoPE (base 1e6 in
//! the released models), and an `output.bias` where the file has one.

use super::blocks::{Bias, Head, Norm};
use super::llama::Layer;
use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::Result;

pub struct Qwen2 {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    embd: usize,
    head: Head,
    layers: Vec<Layer>,
}

impl Qwen2 {
    pub(crate) fn new<W>(header: &Header, slots: &mut WeightSlots<W>) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "qwen2");
        let hparams = keys.decoder(header, "attention.layer_norm_rms_epsilon", 1e-6)?;
        let rope = keys.rope(hparams.head_dim, 10_000.0, true)?;
        let (e, v) = (hparams.n_embd, hparams.n_vocab);
        let embd = slots.want(header, "token_embd.weight", &[e, v])?;
        let norm = Norm::rms(slots, header, "output_norm", e)?;
        let head = Head::want(slots, header, norm, embd, e, v, Bias::Optional)?;
        let layers = (0..hparams.n_layer).map(|i| Layer::want(slots, header, i, &hparams)).collect::<Result<_>>()?;
        let attn = Attention::new(&hparams, None);
        Ok(Qwen2 { hparams, rope, attn, embd, head, layers })
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
