//! Test support: a GGUF writer and a tiny generated llama model that uses
//! every supported weight format; agreement with llama.cpp's fixtures
//! ([`reference`]).
#![allow(dead_code)]

// Read models and vocabularies from files: native only.
#[cfg(not(target_arch = "wasm32"))]
pub mod arch;
pub mod reference;
#[cfg(not(target_arch = "wasm32"))]
pub mod requant;

use std::borrow::Cow;
use std::io::{self, Write};
use webslm::gguf::{Array, Value};
use webslm::quant::{self, GgmlType};

/// Writes GGUF files, including deliberately broken ones.
pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    kvs: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<Tensor>,
}

/// One tensor of the file: its bytes, or only their size where
/// [`GgufWriter::write`] asks for them.
struct Tensor {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    size: u64,
    data: Option<Vec<u8>>,
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter { version: 3, alignment: 32, kvs: Vec::new(), tensors: Vec::new() }
    }
}

impl GgufWriter {
    pub fn raw(&mut self, key: &str, ty: u32, value: Vec<u8>) -> &mut Self {
        self.kvs.push((key.to_string(), ty, value));
        self
    }
    pub fn u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.raw(key, 4, v.to_le_bytes().to_vec())
    }
    pub fn f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.raw(key, 6, v.to_le_bytes().to_vec())
    }
    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.raw(key, 7, vec![v as u8])
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.raw(key, 8, string(v))
    }
    pub fn str_array(&mut self, key: &str, v: &[String]) -> &mut Self {
        let mut out = 8u32.to_le_bytes().to_vec();
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for s in v {
            out.extend(string(s));
        }
        self.raw(key, 9, out)
    }
    pub fn i32_array(&mut self, key: &str, v: &[i32]) -> &mut Self {
        let mut out = 5u32.to_le_bytes().to_vec();
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
        self.raw(key, 9, out)
    }
    /// A metadata value as another file held it.
    pub fn value(&mut self, key: &str, v: &Value) -> &mut Self {
        let mut bytes = Vec::new();
        let ty = encode(v, &mut bytes);
        self.raw(key, ty, bytes)
    }
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> &mut Self {
        let size = data.len() as u64;
        self.tensors.push(Tensor { name: name.to_string(), dims: dims.to_vec(), ty, size, data: Some(data) });
        self
    }
    /// A tensor of `ty` whose bytes [`GgufWriter::write`] asks for when it
    /// reaches it, so that a file larger than memory can be written.
    pub fn declare(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> &mut Self {
        let size = ty.bytes_for(dims.iter().product()).expect("whole blocks");
        self.tensors.push(Tensor { name: name.to_string(), dims: dims.to_vec(), ty: type_id(ty), size, data: None });
        self
    }
    /// Adds a tensor of random values quantized to `ty`.
    pub fn random_tensor(&mut self, rng: &mut Rng, name: &str, dims: &[u64], ty: GgmlType, scale: f32) -> &mut Self {
        let n: u64 = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.normal() * scale).collect();
        let data = quantize(ty, dims[0] as usize, &values);
        let id = type_id(ty);
        self.tensor(name, dims, id, data)
    }

    pub fn tensor_names(&self) -> Vec<String> {
        self.tensors.iter().map(|t| t.name.clone()).collect()
    }

    /// The file, with each tensor at the next aligned offset.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, |i| panic!("`{}` is declared: write() streams it", self.tensors[i].name))
            .expect("writes to memory");
        out
    }

    /// Everything before the tensor data (padded to the alignment), and each
    /// tensor's offset within the data.
    pub fn header(&self) -> (Vec<u8>, Vec<u64>) {
        let mut head = b"GGUF".to_vec();
        head.extend_from_slice(&self.version.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, ty, v) in &self.kvs {
            head.extend(string(k));
            head.extend_from_slice(&ty.to_le_bytes());
            head.extend_from_slice(v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            head.extend(string(&t.name));
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ty.to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.size).next_multiple_of(self.alignment);
        }
        let data_start = (head.len() as u64).next_multiple_of(self.alignment);
        head.resize(data_start as usize, 0);
        (head, offsets)
    }

    /// Writes the file to `out`, each tensor at the next aligned offset; a
    /// declared tensor's bytes come from `fill(i)` (`i` its place among the
    /// tensors) as the writing reaches it, one tensor in memory at a time.
    pub fn write(&self, out: &mut impl Write, mut fill: impl FnMut(usize) -> Vec<u8>) -> io::Result<()> {
        let (head, offsets) = self.header();
        out.write_all(&head)?;
        let mut written = 0;
        for (i, (t, off)) in self.tensors.iter().zip(offsets).enumerate() {
            out.write_all(&vec![0; (off - written) as usize])?;
            let data = t.data.as_deref().map_or_else(|| Cow::Owned(fill(i)), Cow::Borrowed);
            assert_eq!(data.len() as u64, t.size, "`{}`: {} bytes, declared {}", t.name, data.len(), t.size);
            out.write_all(&data)?;
            written = off + t.size;
        }
        Ok(())
    }
}

/// Where `WEBSLM_FUZZ_SEEDS` names a directory, keeps `file` there as a
/// seed for the GGUF fuzzers (fuzz/): raw for `gguf_header`, after the byte
/// that seeds the chunk sizes for `gguf_stream`.
pub fn fuzz_seed(file: &[u8]) {
    let Some(dir) = std::env::var_os("WEBSLM_FUZZ_SEEDS") else { return };
    let dir = std::path::Path::new(&dir);
    // FNV-1a: a name for each distinct file.
    let name = format!(
        "hostile-{:016x}",
        file.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    );
    for (target, bytes) in [("gguf_header", file.to_vec()), ("gguf_stream", [&[7u8], file].concat())] {
        std::fs::create_dir_all(dir.join(target)).expect("the corpus directory");
        std::fs::write(dir.join(target).join(&name), bytes).expect("a seed");
    }
}

/// Appends one metadata value as GGUF encodes it; returns its type.
pub fn encode(v: &Value, out: &mut Vec<u8>) -> u32 {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => encode_str(s, out),
        Value::Array(items) => encode_array(items, out),
    }
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// An array's element type, count and elements.
fn encode_array(array: &Array, out: &mut Vec<u8>) {
    let ty: u32 = match array {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    };
    out.extend(ty.to_le_bytes());
    out.extend((array.len() as u64).to_le_bytes());
    match array {
        Array::String(strings) => strings.iter().for_each(|s| encode_str(s, out)),
        Array::Array(arrays) => arrays.iter().for_each(|a| encode_array(a, out)),
        _ => {
            for i in 0..array.len() {
                encode(&array.get(i).expect("in range"), out);
            }
        }
    }
}

pub fn type_id(ty: GgmlType) -> u32 {
    (0..64).find(|&id| GgmlType::from_id(id) == Some(ty)).expect("a ggml type")
}

pub fn quantize(ty: GgmlType, row: usize, values: &[f32]) -> Vec<u8> {
    let row_bytes = ty.bytes_for(row as u64).unwrap() as usize;
    let mut out = vec![0u8; values.len() / row * row_bytes];
    for (src, dst) in values.chunks_exact(row).zip(out.chunks_exact_mut(row_bytes)) {
        quant::quantize_row_ref(ty, src, dst);
    }
    out
}

/// A small deterministic generator (xorshift64*), so tests need no `rand`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal (sum of uniforms).
    pub fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.uniform()).sum::<f32>() - 2.0
    }
}

/// GPT-2's byte-to-character map: printable bytes stand for themselves, the
/// rest are moved past U+0100.
pub fn byte_chars() -> Vec<char> {
    let mut extra = 0u32;
    (0u32..256)
        .map(|b| {
            let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
            if printable {
                char::from_u32(b).unwrap()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

pub const TINY_TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Shape of the tiny model: 3 layers, 64-wide, 4 query heads sharing 2
/// key/value heads, a 256-wide feed-forward so the K-quants fit.
pub const TINY_EMBD: u64 = 64;
pub const TINY_FF: u64 = 256;

/// A tiny llama with a byte-level BPE tokenizer: 3 special tokens, 256 byte
/// tokens and a few merges. Its weights use every supported format.
pub fn tiny_llama_writer() -> GgufWriter {
    let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into(), "<|im_end|>".into()];
    let chars = byte_chars();
    tokens.extend(chars.iter().map(|c| c.to_string()));
    let g = chars[b' ' as usize];
    let merges = vec![format!("{g} t"), "h e".into(), format!("{g}t he"), "l l".into(), "ll o".into()];
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    let mut types = vec![3i32; 3];
    types.extend(std::iter::repeat_n(1, tokens.len() - 3));
    let n_vocab = tokens.len() as u64;

    let mut w = GgufWriter::default();
    w.str("general.architecture", "llama")
        .str("general.name", "tiny")
        .u32("llama.context_length", 128)
        .u32("llama.embedding_length", TINY_EMBD as u32)
        .u32("llama.block_count", 3)
        .u32("llama.feed_forward_length", TINY_FF as u32)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .f32("llama.rope.freq_base", 10000.0)
        .u32("llama.rope.dimension_count", 16)
        .str("tokenizer.ggml.model", "gpt2")
        .str("tokenizer.ggml.pre", "smollm")
        .str_array("tokenizer.ggml.tokens", &tokens)
        .i32_array("tokenizer.ggml.token_type", &types)
        .str_array("tokenizer.ggml.merges", &merges)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .bool("tokenizer.ggml.add_bos_token", false)
        .str("tokenizer.chat_template", TINY_TEMPLATE);

    let mut rng = Rng::new(7);
    let (e, f) = (TINY_EMBD, TINY_FF);
    let kv = 2 * 16;
    use GgmlType::*;
    w.random_tensor(&mut rng, "token_embd.weight", &[e, n_vocab], Q8_0, 1.0);
    w.random_tensor(&mut rng, "output_norm.weight", &[e], F32, 0.2);
    w.random_tensor(&mut rng, "output.weight", &[e, n_vocab], Q4_0, 0.3);
    let layer_types = [
        [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16, Q4K],
        [Q8_0, Q5_1, Q4_1, Q5_0, F32, Bf16, Q5K],
        [Q5_0, Q8_0, Q4_0, Q4_1, Q5_1, Q8_0, Q6K],
    ];
    for (i, t) in layer_types.iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        w.random_tensor(&mut rng, &n("attn_norm"), &[e], F32, 0.2);
        w.random_tensor(&mut rng, &n("attn_q"), &[e, e], t[0], 0.3);
        w.random_tensor(&mut rng, &n("attn_k"), &[e, kv], t[1], 0.3);
        w.random_tensor(&mut rng, &n("attn_v"), &[e, kv], t[2], 0.3);
        w.random_tensor(&mut rng, &n("attn_output"), &[e, e], t[3], 0.3);
        w.random_tensor(&mut rng, &n("ffn_norm"), &[e], F32, 0.2);
        w.random_tensor(&mut rng, &n("ffn_gate"), &[e, f], t[4], 0.3);
        w.random_tensor(&mut rng, &n("ffn_up"), &[e, f], t[5], 0.3);
        // Rows of 256: the K-quants fit here.
        w.random_tensor(&mut rng, &n("ffn_down"), &[f, e], t[6], 0.3);
    }
    w
}

pub fn tiny_llama() -> Vec<u8> {
    tiny_llama_writer().build()
}

/// A tiny gemma3 on the tiny llama's tokenizer, in formats the GPU reads:
/// 7 layers (layer 5 global, the others over a window of 4 positions), two
/// query heads of 32 over one key/value head.
pub fn tiny_gemma() -> Vec<u8> {
    let llama = tiny_llama_writer();
    let mut w = GgufWriter::default();
    for (k, ty, v) in &llama.kvs {
        if !k.starts_with("llama.") && k != "general.architecture" {
            w.raw(k, *ty, v.clone());
        }
    }
    w.str("general.architecture", "gemma3")
        .u32("gemma3.context_length", 128)
        .u32("gemma3.embedding_length", TINY_EMBD as u32)
        .u32("gemma3.block_count", 7)
        .u32("gemma3.feed_forward_length", TINY_FF as u32)
        .u32("gemma3.attention.head_count", 2)
        .u32("gemma3.attention.head_count_kv", 1)
        .u32("gemma3.attention.key_length", 32)
        .u32("gemma3.attention.value_length", 32)
        .u32("gemma3.attention.sliding_window", 4)
        .f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
        .f32("gemma3.rope.freq_base", 1_000_000.0);
    let n_vocab = llama.tensors.iter().find(|t| t.name == "token_embd.weight").expect("an embedding table").dims[1];
    let mut rng = Rng::new(11);
    let (e, f, h) = (TINY_EMBD, TINY_FF, 32);
    use GgmlType::*;
    w.random_tensor(&mut rng, "token_embd.weight", &[e, n_vocab], Q8_0, 0.2);
    w.random_tensor(&mut rng, "output_norm.weight", &[e], F32, 1.0);
    for i in 0..7 {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        for norm in ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"] {
            w.random_tensor(&mut rng, &n(norm), &[e], F32, 1.0);
        }
        w.random_tensor(&mut rng, &n("attn_q_norm"), &[h], F32, 1.0);
        w.random_tensor(&mut rng, &n("attn_k_norm"), &[h], F32, 1.0);
        w.random_tensor(&mut rng, &n("attn_q"), &[e, 2 * h], Q5_0, 0.3);
        w.random_tensor(&mut rng, &n("attn_k"), &[e, h], Q5_0, 0.3);
        w.random_tensor(&mut rng, &n("attn_v"), &[e, h], Q8_0, 0.3);
        w.random_tensor(&mut rng, &n("attn_output"), &[2 * h, e], Q4_0, 0.3);
        w.random_tensor(&mut rng, &n("ffn_gate"), &[e, f], Q5_0, 0.3);
        w.random_tensor(&mut rng, &n("ffn_up"), &[e, f], Q5_0, 0.3);
        w.random_tensor(&mut rng, &n("ffn_down"), &[f, e], Q8_0, 0.3);
    }
    w.build()
}

/// The GPU the reference tests run on: wgpu's first adapter, running the
/// kernel family that `WEBSLM_GPU_KERNELS` names (`software`, `hardware`,
/// `hardware+subgroups`, `hardware+f16`, `hardware+subgroups+f16`; unset:
/// the one the adapter picks), so that
/// llama.cpp's logits check each family (scripts/test.sh runs the hardware
/// ones on lavapipe too).
#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
#[allow(dead_code)]
pub fn gpu() -> webslm::gpu::Gpu {
    use webslm::gpu::{Family, Gpu};
    let family = match std::env::var("WEBSLM_GPU_KERNELS").as_deref() {
        Err(_) | Ok("") => None,
        Ok(name) => Some(
            Family::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("WEBSLM_GPU_KERNELS={name}: {:?}", Family::ALL.map(Family::name))),
        ),
    };
    let gpu = pollster::block_on(Gpu::request_family(family))
        .expect("no GPU adapter: install a Vulkan driver (Debian: mesa-vulkan-drivers)");
    if let Some(f) = family {
        assert_eq!(gpu.family(), f, "{} cannot run the {} kernels", gpu.adapter(), f.name());
    }
    eprintln!("GPU: {}, {} kernels", gpu.adapter(), gpu.family().name());
    gpu
}
