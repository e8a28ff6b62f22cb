//! The llama architecture: SmolLM, TinyLlama, Llama 2/3.x, Mistral.
//!
//! Pre-norm decoder: RMSNorm → attention with RoPE and grouped-query heads →
//! residual; RMSNorm → SwiGLU feed-forward → residual; final RMSNorm and the
//! output matrix (tied to the embeddings when the file has no `output.weight`).

use std::borrow::Cow;

use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::{Header, TensorInfo};
use crate::quant::GgmlType;
use crate::{Error, Result};

struct Layer {
    attn_norm: usize,
    wq: usize,
    wk: usize,
    wv: usize,
    wo: usize,
    ffn_norm: usize,
    gate: usize,
    up: usize,
    down: usize,
}

pub struct Llama<B: Backend> {
    pub hparams: Hparams,
    rope: Rope,
    attn: Attention,
    weights: Vec<B::Weight>,
    embd: usize,
    output_norm: usize,
    output: usize,
    layers: Vec<Layer>,
}

pub struct Builder<B: Backend> {
    hparams: Hparams,
    rope: Rope,
    slots: WeightSlots<B::Weight>,
    embd: usize,
    output_norm: usize,
    output: usize,
    layers: Vec<Layer>,
    /// `rope_freqs.weight` (Llama 3.x long-context scaling), read as it streams by.
    freq_factors: Option<Vec<f32>>,
}

impl<B: Backend> Builder<B> {
    pub fn new(header: &Header) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "llama");
        if keys.opt_usize("expert_count")?.unwrap_or(0) > 0 {
            return Err(Error::UnsupportedArch("llama with mixture-of-experts layers".into()));
        }
        let n_embd = keys.usize("embedding_length")?;
        let n_head = keys.usize("attention.head_count")?;
        let n_head_kv = keys.opt_usize("attention.head_count_kv")?.unwrap_or(n_head);
        if n_embd == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::BadModel(format!("{n_head} attention heads cannot share {n_head_kv} key/value heads")));
        }
        let head_dim = keys.opt_usize("attention.key_length")?.unwrap_or(n_embd / n_head);
        let n_vocab = match header.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            _ => return Err(Error::BadModel("tensor `token_embd.weight` is missing".into())),
        };
        let mut hparams = Hparams {
            arch: "llama".into(),
            n_vocab,
            n_embd,
            n_layer: keys.usize("block_count")?,
            n_ff: keys.usize("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps: keys.opt_f32("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            context_length: keys.opt_usize("context_length")?.unwrap_or(2048),
            windows: Vec::new(),
        };
        let rope = keys.rope(head_dim, 10_000.0, false)?;

        let mut slots = WeightSlots::new();
        let (e, h) = (n_embd, head_dim);
        let embd = slots.want(header, "token_embd.weight", &[e, n_vocab])?;
        let output_norm = slots.want(header, "output_norm.weight", &[e])?;
        let output = match header.tensor("output.weight") {
            Some(_) => slots.want(header, "output.weight", &[e, n_vocab])?,
            None => embd,
        };
        let mut layers = Vec::with_capacity(hparams.n_layer);
        for i in 0..hparams.n_layer {
            let mut want = |name: &str, dims: &[usize]| slots.want(header, &format!("blk.{i}.{name}.weight"), dims);
            layers.push(Layer {
                attn_norm: want("attn_norm", &[e])?,
                wq: want("attn_q", &[e, n_head * h])?,
                wk: want("attn_k", &[e, n_head_kv * h])?,
                wv: want("attn_v", &[e, n_head_kv * h])?,
                wo: want("attn_output", &[n_head * h, e])?,
                ffn_norm: want("ffn_norm", &[e])?,
                gate: want("ffn_gate", &[e, hparams.n_ff])?,
                up: want("ffn_up", &[e, hparams.n_ff])?,
                down: want("ffn_down", &[hparams.n_ff, e])?,
            });
        }
        // Every layer attends to the whole context.
        hparams.windows = vec![None; layers.len()];
        if let Some(t) = header.tensor("rope_freqs.weight") {
            if t.ty != GgmlType::F32 || t.dims != [rope.dims as u64 / 2] {
                return Err(Error::BadModel(format!(
                    "tensor `rope_freqs.weight` should be F32 [{}], is {} {:?}",
                    rope.dims / 2,
                    t.ty.name(),
                    t.dims
                )));
            }
        }
        Ok(Builder { hparams, rope, slots, embd, output_norm, output, layers, freq_factors: None })
    }

    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    pub fn tensor(&mut self, backend: &mut B, info: &TensorInfo, data: Cow<'_, [u8]>) -> Result<()> {
        if info.name == "rope_freqs.weight" {
            self.freq_factors = Some(data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect());
        } else if let Some(slot) = self.slots.slot_of(&info.name) {
            self.slots.fill(slot, backend.upload(info, data)?);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Llama<B>> {
        let h = &self.hparams;
        let attn = Attention {
            n_head: h.n_head,
            n_head_kv: h.n_head_kv,
            head_dim: h.head_dim,
            scale: 1.0 / (h.head_dim as f32).sqrt(),
            window: None,
        };
        Ok(Llama {
            rope: Rope { factors: self.freq_factors, ..self.rope },
            attn,
            weights: self.slots.into_weights()?,
            hparams: self.hparams,
            embd: self.embd,
            output_norm: self.output_norm,
            output: self.output,
            layers: self.layers,
        })
    }
}

impl<B: Backend> Llama<B> {
    pub fn forward(&self, b: &mut B, cache: &mut B::Cache, tokens: &[u32], pos: usize, logits: Logits) -> B::Act {
        let h = &self.hparams;
        let w = &self.weights;
        let mut x = b.embed(&w[self.embd], tokens);
        for (i, l) in self.layers.iter().enumerate() {
            let xn = b.rms_norm(&x, &w[l.attn_norm], h.rms_eps);
            let [mut q, mut k, v] = b.matmuls(&xn, [&w[l.wq], &w[l.wk], &w[l.wv]]);
            b.rope(&mut q, h.n_head, h.head_dim, pos, &self.rope);
            b.rope(&mut k, h.n_head_kv, h.head_dim, pos, &self.rope);
            let a = b.attention(&q, &k, &v, cache, i, pos, &self.attn);
            let o = b.matmul(&a, &w[l.wo]);
            b.add(&mut x, &o);

            let xn = b.rms_norm(&x, &w[l.ffn_norm], h.rms_eps);
            let [gate, up] = b.matmuls(&xn, [&w[l.gate], &w[l.up]]);
            let f = b.swiglu(&gate, &up);
            let d = b.matmul(&f, &w[l.down]);
            b.add(&mut x, &d);
        }
        let first = logits.first_row(tokens.len());
        if first > 0 {
            x = b.rows_from(&x, first);
        }
        let xn = b.rms_norm(&x, &w[self.output_norm], h.rms_eps);
        b.matmul(&xn, &w[self.output])
    }
}
