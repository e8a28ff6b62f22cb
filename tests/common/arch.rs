//! Tiny models of every architecture, with random weights and a real
//! tokenizer, written the same byte for byte each time: the tests regenerate
//! what `scripts/reference/arch.py` fed llama.cpp (tests/fixtures/arch/,
//! which records each file's SHA-256).
//!
//! Each keeps its family's distinctive parts at a small size: Qwen 2's q/k/v
//! biases, Qwen 3's per-head q/k norms and heads wider than `n_embd /
//! n_head`, SmolLM3's unrotated fourth layers, Phi-3's fused projections and
//! LongRoPE, Phi-2's parallel block and partial rotary dimensions, GPT-2's
//! learned positions; grouped-query heads where the family has them. The
//! tokenizer comes from the family's vocabulary in llama.cpp's suite
//! (models/llama.cpp/, fetched by scripts/fetch-models.sh).

use super::{quantize, type_id, GgufWriter, Rng};
use std::path::PathBuf;
use webslm::quant::GgmlType;

/// The architectures with a tiny model, in the order the fixtures list them.
pub const ARCHS: [&str; 6] = ["qwen2", "qwen3", "smollm3", "phi3", "phi2", "gpt2"];

/// The weight formats every tiny model is written in: 2-D tensors in the
/// format (the learned position table stays F32, as llama.cpp's quantizer
/// leaves it), 1-D ones F32.
pub const FORMATS: [GgmlType; 3] = [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];

/// The shape of one tiny model.
struct Shape {
    vocab: &'static str,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    n_ff: usize,
    rope_dims: usize,
}

fn shape(arch: &str) -> Shape {
    let s = |vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, rope_dims| Shape {
        vocab,
        n_embd,
        n_layer,
        n_head,
        n_head_kv,
        head_dim,
        n_ff,
        rope_dims,
    };
    match arch {
        "qwen2" => s("qwen2", 128, 2, 4, 2, 32, 256, 32),
        // Heads of 64 from a 128-wide stream, as Qwen3-0.6B's 128 from 1024.
        "qwen3" => s("qwen2", 128, 2, 4, 2, 64, 256, 64),
        // Four layers: layer 3 is the first without RoPE.
        "smollm3" => s("llama-bpe", 128, 4, 4, 1, 32, 256, 32),
        "phi3" => s("phi-3", 192, 2, 2, 2, 96, 256, 96),
        // 32 of a head's 80 dimensions rotated, as Phi-2's.
        "phi2" => s("gpt-2", 160, 2, 2, 2, 80, 640, 32),
        "gpt2" => s("gpt-2", 128, 2, 4, 4, 32, 512, 0),
        other => panic!("no tiny model of {other}"),
    }
}

/// q and k twice the size of other activations: attention scores spread
/// over several units, so that softmax picks positions and where RoPE puts
/// them shows in the logits (flat attention would hide a wrong rotation).
const QK_GAIN: f32 = 2.0;

/// GPT-2's learned positions (its `context_length`).
const GPT2_POSITIONS: usize = 1024;
/// Phi-3's LongRoPE: the long factors apply past this context (llama.cpp's
/// reference runs at 512, so they are the ones checked).
const PHI3_ORIGINAL_CONTEXT: usize = 256;

pub fn vocab_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("models/llama.cpp/ggml-vocab-{name}.gguf"));
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    path
}

/// Writes tensors of random values: matrices scaled so that activations
/// stay near unit size (1/sqrt of their input width), the output matrix
/// three times wider and embeddings of 0.3 so that logits spread over
/// several units (tied or not), norms near 1, biases near 0.
struct Weights<'a> {
    w: &'a mut GgufWriter,
    rng: Rng,
    format: GgmlType,
}

impl Weights<'_> {
    fn tensor(&mut self, name: &str, dims: &[usize], ty: GgmlType, mut values: impl FnMut(&mut Rng) -> f32) {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| values(&mut self.rng)).collect();
        let bytes = quantize(ty, dims[0], &data);
        let dims: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        self.w.tensor(name, &dims, type_id(ty), bytes);
    }
    fn matrix(&mut self, name: &str, cols: usize, rows: usize) {
        self.scaled(name, cols, rows, 1.0);
    }
    fn scaled(&mut self, name: &str, cols: usize, rows: usize, gain: f32) {
        self.stacked(name, cols, &[(rows, gain)]);
    }
    /// One matrix of several `(rows, gain)` parts (a fused q, k, v).
    fn stacked(&mut self, name: &str, cols: usize, parts: &[(usize, f32)]) {
        let gains: Vec<f32> =
            parts.iter().flat_map(|&(rows, gain)| vec![gain / (cols as f32).sqrt(); rows * cols]).collect();
        let rows = parts.iter().map(|p| p.0).sum();
        let mut i = 0;
        self.tensor(&format!("{name}.weight"), &[cols, rows], self.format, |r| {
            i += 1;
            r.normal() * gains[i - 1]
        });
    }
    fn norm(&mut self, name: &str, n: usize) {
        self.tensor(&format!("{name}.weight"), &[n], GgmlType::F32, |r| 1.0 + 0.2 * r.normal());
    }
    fn bias(&mut self, name: &str, n: usize) {
        self.tensor(&format!("{name}.bias"), &[n], GgmlType::F32, |r| 0.2 * r.normal());
    }
    fn vector(&mut self, name: &str, n: usize, values: impl FnMut(&mut Rng) -> f32) {
        self.tensor(name, &[n], GgmlType::F32, values);
    }
}

/// The tiny model of `arch` with its 2-D weights in `format`.
pub fn tiny(arch: &str, format: GgmlType) -> Vec<u8> {
    let s = shape(arch);
    let mut w = GgufWriter::default();
    w.str("general.architecture", arch).str("general.name", &format!("tiny {arch}"));
    let vocab = webslm::gguf::read_header_path(vocab_path(s.vocab)).expect("the vocabulary reads").metadata;
    let mut keys: Vec<&str> = vocab.keys().filter(|k| k.starts_with("tokenizer.")).collect();
    keys.sort_unstable();
    for key in keys {
        w.value(key, vocab.get(key).expect("a listed key"));
    }
    let n_vocab = vocab.get("tokenizer.ggml.tokens").and_then(|t| t.as_array()).expect("a token list").len();

    let key = |k: &str| format!("{arch}.{k}");
    let (e, hd, f) = (s.n_embd, s.head_dim, s.n_ff);
    let (q, kv) = (s.n_head * hd, s.n_head_kv * hd);
    let layer_norm = matches!(arch, "phi2" | "gpt2");
    w.u32(&key("context_length"), if arch == "gpt2" { GPT2_POSITIONS as u32 } else { 4096 })
        .u32(&key("embedding_length"), e as u32)
        .u32(&key("block_count"), s.n_layer as u32)
        .u32(&key("feed_forward_length"), f as u32)
        .u32(&key("attention.head_count"), s.n_head as u32)
        .u32(&key("attention.head_count_kv"), s.n_head_kv as u32);
    if layer_norm {
        w.f32(&key("attention.layer_norm_epsilon"), 1e-5);
    } else {
        w.f32(&key("attention.layer_norm_rms_epsilon"), 1e-6);
    }
    if hd != e / s.n_head {
        w.u32(&key("attention.key_length"), hd as u32).u32(&key("attention.value_length"), hd as u32);
    }
    if s.rope_dims > 0 {
        let base = if arch.starts_with("qwen") { 1_000_000.0 } else { 10_000.0 };
        w.f32(&key("rope.freq_base"), base).u32(&key("rope.dimension_count"), s.rope_dims as u32);
    }
    if arch == "phi3" {
        w.u32(&key("rope.scaling.original_context_length"), PHI3_ORIGINAL_CONTEXT as u32)
            .f32(&key("rope.scaling.attn_factor"), 1.19);
    }

    let seed = ARCHS.iter().position(|&a| a == arch).expect("a tiny architecture") as u64;
    let mut t = Weights { w: &mut w, rng: Rng::new(100 + seed), format };
    t.tensor("token_embd.weight", &[e, n_vocab], format, |r| 0.3 * r.normal());
    if arch == "gpt2" {
        t.tensor("position_embd.weight", &[e, GPT2_POSITIONS], GgmlType::F32, |r| 0.5 * r.normal());
    }
    if arch == "phi3" {
        // LongRoPE divisors grow from 1 over the frequencies, as Phi-3.5's do.
        let half = s.rope_dims / 2;
        t.vector("rope_factors_short.weight", half, |r| 1.0 + r.uniform());
        t.vector("rope_factors_long.weight", half, |r| 1.0 + 8.0 * r.uniform());
    }
    for i in 0..s.n_layer {
        let n = |name: &str| format!("blk.{i}.{name}");
        if layer_norm {
            t.norm(&n("attn_norm"), e);
            t.bias(&n("attn_norm"), e);
        } else {
            t.norm(&n("attn_norm"), e);
        }
        match arch {
            "phi3" | "phi2" | "gpt2" => {
                t.stacked(&n("attn_qkv"), e, &[(q, QK_GAIN), (kv, QK_GAIN), (kv, 1.0)]);
                if arch != "phi3" {
                    t.bias(&n("attn_qkv"), q + 2 * kv);
                }
            }
            _ => {
                t.scaled(&n("attn_q"), e, q, QK_GAIN);
                t.scaled(&n("attn_k"), e, kv, QK_GAIN);
                t.matrix(&n("attn_v"), e, kv);
                if arch == "qwen2" {
                    t.bias(&n("attn_q"), q);
                    t.bias(&n("attn_k"), kv);
                    t.bias(&n("attn_v"), kv);
                }
            }
        }
        if arch == "qwen3" {
            t.norm(&n("attn_q_norm"), hd);
            t.norm(&n("attn_k_norm"), hd);
        }
        t.matrix(&n("attn_output"), q, e);
        if layer_norm {
            t.bias(&n("attn_output"), e);
        }
        match arch {
            "phi2" => {}
            "gpt2" => {
                t.norm(&n("ffn_norm"), e);
                t.bias(&n("ffn_norm"), e);
            }
            _ => t.norm(&n("ffn_norm"), e),
        }
        match arch {
            "phi2" | "gpt2" => {
                t.matrix(&n("ffn_up"), e, f);
                t.bias(&n("ffn_up"), f);
                t.matrix(&n("ffn_down"), f, e);
                t.bias(&n("ffn_down"), e);
            }
            "phi3" => {
                t.matrix(&n("ffn_up"), e, 2 * f);
                t.matrix(&n("ffn_down"), f, e);
            }
            _ => {
                t.matrix(&n("ffn_gate"), e, f);
                t.matrix(&n("ffn_up"), e, f);
                t.matrix(&n("ffn_down"), f, e);
            }
        }
    }
    t.norm("output_norm", e);
    if layer_norm {
        t.bias("output_norm", e);
    }
    // GPT-2 and Qwen 3 tie the output matrix to the embeddings, as the
    // small released models do; the others have their own.
    if !matches!(arch, "gpt2" | "qwen3") {
        t.scaled("output", e, n_vocab, 3.0);
        if arch == "phi2" {
            t.bias("output", n_vocab);
        }
    }
    w.build()
}
