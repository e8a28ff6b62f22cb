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

use std::borrow::Cow;

use super::{Attention, Backend, Hparams, Keys, Logits, Rope, WeightSlots};
use crate::gguf::{Header, TensorInfo};
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
    attn_norm: usize,
    wq: usize,
    wk: usize,
    wv: usize,
    q_norm: usize,
    k_norm: usize,
    wo: usize,
    post_attn_norm: usize,
    ffn_norm: usize,
    gate: usize,
    up: usize,
    down: usize,
    post_ffn_norm: usize,
    local: bool,
}

/// RoPE and attention of one kind of layer (local or global).
struct Kind {
    rope: Rope,
    attn: Attention,
}

pub struct Gemma3<B: Backend> {
    pub hparams: Hparams,
    local: Kind,
    global: Kind,
    weights: Vec<B::Weight>,
    embd: usize,
    output_norm: usize,
    output: usize,
    layers: Vec<Layer>,
}

pub struct Builder<B: Backend> {
    hparams: Hparams,
    local: Kind,
    global: Kind,
    slots: WeightSlots<B::Weight>,
    embd: usize,
    output_norm: usize,
    output: usize,
    layers: Vec<Layer>,
}

impl<B: Backend> Builder<B> {
    pub fn new(header: &Header) -> Result<Self> {
        let keys = Keys::new(&header.metadata, "gemma3");
        let n_embd = keys.usize("embedding_length")?;
        let n_head = keys.usize("attention.head_count")?;
        let n_head_kv = keys.opt_usize("attention.head_count_kv")?.unwrap_or(n_head);
        if n_embd == 0 || n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::BadModel(format!("{n_head} attention heads cannot share {n_head_kv} key/value heads")));
        }
        let head_dim = keys.opt_usize("attention.key_length")?.unwrap_or(256);
        if keys.opt_usize("attention.value_length")?.is_some_and(|v| v != head_dim) {
            return Err(Error::BadModel("keys and values of different lengths".into()));
        }
        let window = keys.usize("attention.sliding_window")?;
        if window == 0 {
            return Err(Error::BadModel("a sliding window of 0 positions".into()));
        }
        let n_vocab = match header.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            _ => return Err(Error::BadModel("tensor `token_embd.weight` is missing".into())),
        };
        let mut hparams = Hparams {
            arch: "gemma3".into(),
            n_vocab,
            n_embd,
            n_layer: keys.usize("block_count")?,
            n_ff: keys.usize("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            rms_eps: keys.opt_f32("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6),
            context_length: keys.opt_usize("context_length")?.unwrap_or(131_072),
            windows: Vec::new(),
        };
        let global_rope = keys.rope(head_dim, 1_000_000.0, true)?;
        let local_rope = Rope { freq_base: LOCAL_FREQ_BASE, freq_scale: 1.0, ..global_rope.clone() };
        // llama.cpp's `f_attention_scale`, applied to q before attention:
        // 1/sqrt(n_embd / n_head) for the 27B (62 layers), else 1/sqrt(head_dim).
        let scale_dim = if hparams.n_layer == 62 { n_embd / n_head } else { head_dim };
        let attn = Attention { n_head, n_head_kv, head_dim, scale: 1.0 / (scale_dim as f32).sqrt(), window: None };
        let local = Kind { rope: local_rope, attn: Attention { window: Some(window), ..attn.clone() } };
        let global = Kind { rope: global_rope, attn };

        let mut slots = WeightSlots::new();
        let (e, h, f) = (n_embd, head_dim, hparams.n_ff);
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
                q_norm: want("attn_q_norm", &[h])?,
                k_norm: want("attn_k_norm", &[h])?,
                wo: want("attn_output", &[n_head * h, e])?,
                post_attn_norm: want("post_attention_norm", &[e])?,
                ffn_norm: want("ffn_norm", &[e])?,
                gate: want("ffn_gate", &[e, f])?,
                up: want("ffn_up", &[e, f])?,
                down: want("ffn_down", &[f, e])?,
                post_ffn_norm: want("post_ffw_norm", &[e])?,
                local: is_local(i),
            });
        }
        hparams.windows = layers.iter().map(|l| l.local.then_some(window)).collect();
        Ok(Builder { hparams, local, global, slots, embd, output_norm, output, layers })
    }

    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    pub fn tensor(&mut self, backend: &mut B, info: &TensorInfo, data: Cow<'_, [u8]>) -> Result<()> {
        if let Some(slot) = self.slots.slot_of(&info.name) {
            self.slots.fill(slot, backend.upload(info, data)?);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Gemma3<B>> {
        Ok(Gemma3 {
            weights: self.slots.into_weights()?,
            hparams: self.hparams,
            local: self.local,
            global: self.global,
            embd: self.embd,
            output_norm: self.output_norm,
            output: self.output,
            layers: self.layers,
        })
    }
}

impl<B: Backend> Gemma3<B> {
    pub fn forward(&self, b: &mut B, cache: &mut B::Cache, tokens: &[u32], pos: usize, logits: Logits) -> B::Act {
        let h = &self.hparams;
        let w = &self.weights;
        let (t, hd) = (tokens.len(), h.head_dim);
        // RMSNorm of each of a row's `n` heads: the batch seen as one head a row.
        let norm_heads = |b: &mut B, x: B::Act, n: usize, weight: usize| {
            let x = b.reshape(x, t * n, hd);
            let x = b.rms_norm(&x, &w[weight], h.rms_eps);
            b.reshape(x, t, n * hd)
        };
        let mut x = b.embed(&w[self.embd], tokens);
        b.scale(&mut x, (h.n_embd as f32).sqrt());
        for (i, l) in self.layers.iter().enumerate() {
            let kind = if l.local { &self.local } else { &self.global };
            let xn = b.rms_norm(&x, &w[l.attn_norm], h.rms_eps);
            let [q, k, v] = b.matmuls(&xn, [&w[l.wq], &w[l.wk], &w[l.wv]]);
            let mut q = norm_heads(b, q, h.n_head, l.q_norm);
            let mut k = norm_heads(b, k, h.n_head_kv, l.k_norm);
            b.rope(&mut q, h.n_head, hd, pos, &kind.rope);
            b.rope(&mut k, h.n_head_kv, hd, pos, &kind.rope);
            // llama.cpp scales q by `f_attention_scale` before attention;
            // the attention's own scale does the same (exactly so for the
            // powers of two of 1/sqrt(head_dim) with heads of 256 or 64).
            let a = b.attention(&q, &k, &v, cache, i, pos, &kind.attn);
            let o = b.matmul(&a, &w[l.wo]);
            let o = b.rms_norm(&o, &w[l.post_attn_norm], h.rms_eps);
            b.add(&mut x, &o);

            let xn = b.rms_norm(&x, &w[l.ffn_norm], h.rms_eps);
            let [gate, up] = b.matmuls(&xn, [&w[l.gate], &w[l.up]]);
            let f = b.geglu(&gate, &up);
            let d = b.matmul(&f, &w[l.down]);
            let d = b.rms_norm(&d, &w[l.post_ffn_norm], h.rms_eps);
            b.add(&mut x, &d);
        }
        let first = logits.first_row(t);
        if first > 0 {
            x = b.rows_from(&x, first);
        }
        let xn = b.rms_norm(&x, &w[self.output_norm], h.rms_eps);
        b.matmul(&xn, &w[self.output])
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
