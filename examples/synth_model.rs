//! A developer tool: writes a GGUF with a released model's shapes and
//! random weights, to measure speed and memory on models of 1–3B parameters
//! that cannot be fetched here.
//!
//! ```text
//! cargo run --release --example synth_model -- SHAPE FORMAT OUT.gguf
//!     SHAPE   tinyllama-1.1b | llama-3.2-3b
//!     FORMAT  Q4_0 | Q8_0 | Q4_K_M
//! ```
//! The tokenizer (every `tokenizer.*` key) is the family's vocabulary in
//! llama.cpp's suite (models/llama.cpp/, fetched by scripts/fetch-models.sh);
//! each tensor has the type llama.cpp's quantizer gives it ([`tensor_type`]).
//! Weights are near-normal with a standard deviation of 0.02, norms 1, so
//! logits stay finite. Each row's values come from a generator seeded by the
//! tensor's name and the row: every format holds the same weights, and the
//! file is the same byte for byte whatever the number of threads. The file is
//! written tensor by tensor to OUT.part, renamed to OUT when complete.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../tests/common/mod.rs"]
mod common;

use common::arch::vocab_path;
use common::{GgufWriter, Rng};
use std::io::BufWriter;
use std::process::ExitCode;
use std::sync::Mutex;
use webslm::quant::{self, GgmlType};

/// A released model's shape, from its config.
struct Shape {
    name: &'static str,
    /// The vocabulary in models/llama.cpp/ (`ggml-vocab-{vocab}.gguf`) and its size.
    vocab: (&'static str, usize),
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    n_ff: usize,
    context: u32,
    rope_theta: f32,
    /// No `output.weight`: the embeddings are the output matrix too.
    tied: bool,
    /// Llama 3.x's long-context RoPE (`rope_freqs.weight`).
    llama3_rope: Option<Llama3Rope>,
}

/// The `rope_scaling` of a Llama 3.x config.
struct Llama3Rope {
    factor: f32,
    low_freq_factor: f32,
    high_freq_factor: f32,
    original_context: f32,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "tinyllama-1.1b",
        vocab: ("llama-spm", 32000),
        n_layer: 22,
        n_embd: 2048,
        n_head: 32,
        n_head_kv: 4,
        n_ff: 5632,
        context: 2048,
        rope_theta: 10_000.0,
        tied: false,
        llama3_rope: None,
    },
    Shape {
        name: "llama-3.2-3b",
        vocab: ("llama-bpe", 128256),
        n_layer: 28,
        n_embd: 3072,
        n_head: 24,
        n_head_kv: 8,
        n_ff: 8192,
        context: 131072,
        rope_theta: 500_000.0,
        tied: true,
        llama3_rope: Some(Llama3Rope {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }),
    },
];

/// A file type as llama-quantize names it.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Q4_0,
    Q8_0,
    Q4KM,
}

impl Format {
    const ALL: [Format; 3] = [Format::Q4_0, Format::Q8_0, Format::Q4KM];

    fn name(self) -> &'static str {
        match self {
            Format::Q4_0 => "Q4_0",
            Format::Q8_0 => "Q8_0",
            Format::Q4KM => "Q4_K_M",
        }
    }
    /// The type of most tensors.
    fn default_type(self) -> GgmlType {
        match self {
            Format::Q4_0 => GgmlType::Q4_0,
            Format::Q8_0 => GgmlType::Q8_0,
            Format::Q4KM => GgmlType::Q4K,
        }
    }
    /// `general.file_type` (llama.cpp's `llama_ftype`).
    fn file_type(self) -> u32 {
        match self {
            Format::Q4_0 => 2,
            Format::Q8_0 => 7,
            Format::Q4KM => 15,
        }
    }
}

/// The type llama.cpp's quantizer gives the 2-D tensor `role` of layer
/// `layer` (`llama_tensor_get_type_impl` in src/llama-quant.cpp, without an
/// importance matrix): the output matrix, and the embeddings where they are
/// it, Q6_K (unless the format is Q8_0); in Q4_K_M, `attn_v` and `ffn_down`
/// Q6_K on the layers `use_more_bits` picks (the first and last eighth, and
/// every third between); every other matrix the format's type.
fn tensor_type(format: Format, role: &str, layer: usize, shape: &Shape) -> GgmlType {
    let use_more_bits = |i: usize, n: usize| i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    let output = role == "output" || (role == "token_embd" && shape.tied);
    match (format, role) {
        (Format::Q8_0, _) => GgmlType::Q8_0,
        _ if output => GgmlType::Q6K,
        (Format::Q4KM, "attn_v" | "ffn_down") if use_more_bits(layer, shape.n_layer) => GgmlType::Q6K,
        _ => format.default_type(),
    }
}

/// What a tensor holds.
enum Values {
    /// Near-normal values of standard deviation [`STD`].
    Random,
    Ones,
    Given(Vec<f32>),
}

/// The standard deviation of the random weights (GPT-2's and Llama's initialisation).
const STD: f32 = 0.02;

struct Spec {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    values: Values,
}

/// The tensors of `shape` in `format`, in the order llama.cpp's converter writes them.
fn tensors(shape: &Shape, format: Format, n_vocab: usize) -> Vec<Spec> {
    let head_dim = shape.n_embd / shape.n_head;
    let (e, q, kv, f) = (shape.n_embd, shape.n_head * head_dim, shape.n_head_kv * head_dim, shape.n_ff);
    let mut out = Vec::new();
    let mut push = |name: String, dims: &[usize], ty, values| {
        out.push(Spec { name, dims: dims.iter().map(|&d| d as u64).collect(), ty, values });
    };
    if let Some(rope) = &shape.llama3_rope {
        push("rope_freqs.weight".into(), &[head_dim / 2], GgmlType::F32, Values::Given(rope_factors(rope, shape)));
    }
    let matrix = |role: &str, layer| tensor_type(format, role, layer, shape);
    push("token_embd.weight".into(), &[e, n_vocab], matrix("token_embd", 0), Values::Random);
    for i in 0..shape.n_layer {
        let n = |role: &str| format!("blk.{i}.{role}.weight");
        push(n("attn_norm"), &[e], GgmlType::F32, Values::Ones);
        for (role, rows) in [("attn_q", q), ("attn_k", kv), ("attn_v", kv)] {
            push(n(role), &[e, rows], matrix(role, i), Values::Random);
        }
        push(n("attn_output"), &[q, e], matrix("attn_output", i), Values::Random);
        push(n("ffn_norm"), &[e], GgmlType::F32, Values::Ones);
        push(n("ffn_gate"), &[e, f], matrix("ffn_gate", i), Values::Random);
        push(n("ffn_up"), &[e, f], matrix("ffn_up", i), Values::Random);
        push(n("ffn_down"), &[f, e], matrix("ffn_down", i), Values::Random);
    }
    push("output_norm.weight".into(), &[e], GgmlType::F32, Values::Ones);
    if !shape.tied {
        push("output.weight".into(), &[e, n_vocab], matrix("output", 0), Values::Random);
    }
    out
}

/// Llama 3.x's per-frequency RoPE divisors, as llama.cpp's converter
/// computes them from the config: 1 for short wavelengths, `factor` for
/// long ones, a smooth blend between.
fn rope_factors(rope: &Llama3Rope, shape: &Shape) -> Vec<f32> {
    let dim = (shape.n_embd / shape.n_head) as f32;
    let low_wavelen = rope.original_context / rope.low_freq_factor;
    let high_wavelen = rope.original_context / rope.high_freq_factor;
    (0..dim as usize / 2)
        .map(|i| {
            let freq = 1.0 / shape.rope_theta.powf(2.0 * i as f32 / dim);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                rope.factor
            } else {
                let smooth = (rope.original_context / wavelen - rope.low_freq_factor)
                    / (rope.high_freq_factor - rope.low_freq_factor);
                1.0 / ((1.0 - smooth) / rope.factor + smooth)
            }
        })
        .collect()
}

/// A seed for row `row` of tensor `name` (FNV-1a of the name, the row mixed in by SplitMix64).
fn seed(name: &str, row: usize) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let mut z = h.wrapping_add((row as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rows handed to a thread at a time.
const ROWS_PER_TASK: usize = 16;

/// The tensor's bytes, its rows generated and quantized on `threads` threads.
fn quantized(spec: &Spec, threads: usize) -> Vec<u8> {
    let row_len = spec.dims[0] as usize;
    let row_bytes = spec.ty.bytes_for(row_len as u64).expect("whole blocks") as usize;
    let rows = spec.dims.iter().product::<u64>() as usize / row_len;
    let mut out = vec![0u8; rows * row_bytes];
    let tasks = Mutex::new(out.chunks_mut(ROWS_PER_TASK * row_bytes).enumerate());
    // The sum of 4 uniforms less 2 has a standard deviation of 1/sqrt(3).
    let scale = STD * 3f32.sqrt();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut values = vec![0f32; row_len];
                loop {
                    let Some((task, chunk)) = tasks.lock().unwrap().next() else { break };
                    for (r, dst) in chunk.chunks_exact_mut(row_bytes).enumerate() {
                        let row = task * ROWS_PER_TASK + r;
                        match &spec.values {
                            Values::Random => {
                                let mut rng = Rng::new(seed(&spec.name, row));
                                values.iter_mut().for_each(|v| *v = rng.normal() * scale);
                            }
                            Values::Ones => values.fill(1.0),
                            Values::Given(given) => values.copy_from_slice(&given[row * row_len..][..row_len]),
                        }
                        quant::quantize_row_ref(spec.ty, &values, dst);
                    }
                }
            });
        }
    });
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shapes = SHAPES.map(|s| s.name).join(" | ");
    let formats = Format::ALL.map(Format::name).join(" | ");
    let usage = format!("usage: synth_model SHAPE FORMAT OUT.gguf\n  SHAPE: {shapes}\n  FORMAT: {formats}");
    let [shape, format, out] = &args[..] else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (Some(shape), Some(format)) =
        (SHAPES.iter().find(|s| s.name == shape), Format::ALL.into_iter().find(|f| f.name() == format))
    else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    match write(shape, format, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(shape: &Shape, format: Format, out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let start = std::time::Instant::now();
    let vocab = webslm::gguf::read_header_path(vocab_path(shape.vocab.0))?.metadata;
    let n_vocab = vocab.get("tokenizer.ggml.tokens").and_then(|t| t.as_array()).ok_or("no token list")?.len();
    if n_vocab != shape.vocab.1 {
        return Err(format!("{} has {n_vocab} tokens, {} expects {}", shape.vocab.0, shape.name, shape.vocab.1).into());
    }
    let mut w = GgufWriter::default();
    let key = |k: &str| format!("llama.{k}");
    w.str("general.architecture", "llama")
        .str("general.name", &format!("{} shape, random weights", shape.name))
        .u32("general.file_type", format.file_type())
        .u32("general.quantization_version", 2)
        .u32(&key("vocab_size"), n_vocab as u32)
        .u32(&key("context_length"), shape.context)
        .u32(&key("embedding_length"), shape.n_embd as u32)
        .u32(&key("block_count"), shape.n_layer as u32)
        .u32(&key("feed_forward_length"), shape.n_ff as u32)
        .u32(&key("rope.dimension_count"), (shape.n_embd / shape.n_head) as u32)
        .u32(&key("attention.head_count"), shape.n_head as u32)
        .u32(&key("attention.head_count_kv"), shape.n_head_kv as u32)
        .f32(&key("attention.layer_norm_rms_epsilon"), 1e-5)
        .f32(&key("rope.freq_base"), shape.rope_theta);
    let mut keys: Vec<&str> = vocab.keys().filter(|k| k.starts_with("tokenizer.")).collect();
    keys.sort_unstable();
    for k in keys {
        w.value(k, vocab.get(k).expect("a listed key"));
    }
    let specs = tensors(shape, format, n_vocab);
    for s in &specs {
        w.declare(&s.name, &s.dims, s.ty);
    }

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = format!("{out}.part");
    let mut file = BufWriter::with_capacity(8 << 20, std::fs::File::create(&part)?);
    w.write(&mut file, |i| quantized(&specs[i], threads))?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&part, out)?;

    let bytes = std::fs::metadata(out)?.len();
    let parameters: u64 = specs.iter().map(|s| s.dims.iter().product::<u64>()).sum();
    eprintln!(
        "wrote {out}: {} {} ({:.2}B parameters), {:.0} MiB, in {:.1} s on {threads} thread{}",
        shape.name,
        format.name(),
        parameters as f64 / 1e9,
        bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64(),
        if threads == 1 { "" } else { "s" }
    );
    Ok(())
}
