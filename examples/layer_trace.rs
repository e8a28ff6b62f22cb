//! Where our numbers part from llama.cpp's: the residual stream after each
//! layer of a llama-architecture model, for the last of a token sequence
//! run as one batch, beside scripts/reference/layers.cpp's (llama.cpp's
//! `l_out-<i>`):
//!
//! ```text
//! cargo run --release --example layer_trace -- MODEL LLAMA_LAYERS.bin ID...
//! ```
//! prints, per layer, the largest difference relative to the layer's
//! largest value, and the value itself. The CPU backend runs the model
//! through a backend that notes every residual addition.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::rc::Rc;
use webslm::cpu::{Act, Cache, Cpu, Weight};
use webslm::gguf::TensorInfo;
use webslm::model::{Attention, Backend, Readback, Rope};
use webslm::{LoadOptions, Session};

/// The CPU backend, keeping the last row of `x` after every `add`: a
/// llama layer adds to the residual stream twice, so the second of each
/// pair is the layer's output.
struct Tap {
    cpu: Cpu,
    adds: Rc<RefCell<Vec<Vec<f32>>>>,
}

impl Backend for Tap {
    type Weight = Weight;
    type Act = Act;
    type Cache = Cache;

    fn alloc(&mut self, info: &TensorInfo) -> webslm::Result<Weight> {
        self.cpu.alloc(info)
    }
    fn fill(&mut self, w: &mut Weight, info: &TensorInfo, first: u64, data: &[u8]) -> webslm::Result<()> {
        self.cpu.fill(w, info, first, data)
    }
    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> webslm::Result<Cache> {
        self.cpu.new_cache(positions, kv_dim)
    }
    fn rows(&self, x: &Act) -> usize {
        x.rows
    }
    fn embed(&mut self, table: &Weight, tokens: &[u32]) -> Act {
        self.cpu.embed(table, tokens)
    }
    fn rms_norm(&mut self, x: &Act, weight: &Weight, eps: f32) -> Act {
        self.cpu.rms_norm(x, weight, eps)
    }
    fn layer_norm(&mut self, x: &Act, weight: &Weight, bias: &Weight, eps: f32) -> Act {
        self.cpu.layer_norm(x, weight, bias, eps)
    }
    fn matmul(&mut self, x: &Act, w: &Weight) -> Act {
        self.cpu.matmul(x, w)
    }
    fn matmuls<const N: usize>(&mut self, x: &Act, ws: [&Weight; N]) -> [Act; N] {
        self.cpu.matmuls(x, ws)
    }
    fn rope(&mut self, x: &mut Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope) {
        self.cpu.rope(x, n_head, head_dim, pos, rope)
    }
    fn attention(
        &mut self,
        q: &Act,
        k: &Act,
        v: &Act,
        cache: &mut Cache,
        layer: usize,
        pos: usize,
        shape: &Attention,
    ) -> Act {
        self.cpu.attention(q, k, v, cache, layer, pos, shape)
    }
    fn swiglu(&mut self, gate: &Act, up: &Act) -> Act {
        self.cpu.swiglu(gate, up)
    }
    fn geglu(&mut self, gate: &Act, up: &Act) -> Act {
        self.cpu.geglu(gate, up)
    }
    fn gelu(&mut self, x: &Act) -> Act {
        self.cpu.gelu(x)
    }
    fn scale(&mut self, x: &mut Act, s: f32) {
        self.cpu.scale(x, s)
    }
    fn reshape(&mut self, x: Act, rows: usize, cols: usize) -> Act {
        self.cpu.reshape(x, rows, cols)
    }
    fn add(&mut self, x: &mut Act, y: &Act) {
        self.cpu.add(x, y);
        self.adds.borrow_mut().push(x.data[(x.rows - 1) * x.cols..].to_vec());
    }
    fn add_bias(&mut self, x: &mut Act, bias: &Weight) {
        self.cpu.add_bias(x, bias)
    }
    fn rows_from(&mut self, x: &Act, first: usize) -> Act {
        self.cpu.rows_from(x, first)
    }
    fn read(&mut self, x: &Act) -> Readback<Vec<f32>> {
        self.cpu.read(x)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, theirs, ids @ ..] = &args[..] else {
        eprintln!("usage: layer_trace MODEL LLAMA_LAYERS.bin ID...");
        std::process::exit(2);
    };
    let ids: Vec<u32> = ids.iter().map(|i| i.parse().expect("a token id")).collect();
    let adds = Rc::new(RefCell::new(Vec::new()));
    let tap = Tap { cpu: Cpu::default(), adds: adds.clone() };
    let mut session = Session::load_path_on(tap, model, LoadOptions::default()).unwrap();
    // Scoring feeds all but the last token, which it only scores: one more.
    let fed: Vec<u32> = ids.iter().copied().chain([0]).collect();
    session.score(&fed, ids.len(), 1).unwrap();
    let bytes = std::fs::read(theirs).unwrap();
    let theirs: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let n_embd = session.hparams().n_embd;
    for (layer, (ours, theirs)) in adds.borrow().chunks(2).map(|p| &p[1]).zip(theirs.chunks_exact(n_embd)).enumerate() {
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = ours.iter().zip(theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!("layer {layer:2}: max |x| {scale:10.2}, max difference {diff:10.4} ({:.2e} of max |x|)", diff / scale);
    }
}
