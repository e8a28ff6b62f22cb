//! The GPU backend: the WGSL kernels of `shaders/` through wgpu (WebGPU in
//! browsers, Vulkan, Metal or DX12 natively), f32 the baseline everywhere.
//!
//! The flow is wgpu's: adapter → device → one compute pipeline per kernel,
//! made once → for every op a bind group and a dispatch recorded into one
//! command encoder → submitted when the host reads a result. Weights stay
//! quantized in storage buffers (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
//! Q8_0, Q4_K, Q5_K, Q6_K), each block (32 weights, or a K-quant's 256)
//! starting on a word ([`layout`]); a matrix too big for one binding is
//! split by rows into parts. Activations live in pooled buffers that go back
//! to the pool when dropped, so a forward pass allocates nothing once the
//! pool is warm.
//!
//! Two kernel families ([`Family`]) run the ops: GPUs emulated on the CPU
//! (SwiftShader, lavapipe) want one thread a row and no barrier; hardware
//! GPUs want neighbouring lanes reading neighbouring words and a row's sums
//! reduced together.
//!
//! One module a concept: the adapter and device ([`device`]), buffers and
//! the way back to the host ([`buffers`]), pipelines and dispatches
//! ([`pipelines`]), then one module an op.

mod argmax;
mod attention;
mod buffers;
mod device;
mod elementwise;
mod embed;
mod layout;
mod matmul;
mod norm;
mod pipelines;
mod rope;

pub use buffers::{Act, Cache, Part, Weight};
pub use device::Family;

use crate::gguf::TensorInfo;
use crate::model::{Attention, Backend, Readback, Rope};
use crate::Result;
use buffers::Pool;
use pipelines::{grid, BindKey, Kernel, KernelKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    limits: wgpu::Limits,
    /// The kernels this adapter runs best.
    family: Family,
    kernels: HashMap<KernelKey, Kernel>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameters of the dispatches recorded since the last submit.
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    pool: Pool,
    rope_tables: Vec<rope::RopeTable>,
    /// Token ids of the batch being embedded.
    tokens: Option<wgpu::Buffer>,
    /// Where results are copied to be mapped and read.
    staging: Option<wgpu::Buffer>,
    /// The greedy token's index.
    argmax_out: Option<wgpu::Buffer>,
    /// Weights repacked for the GPU on their way from the file.
    staging_bytes: Vec<u8>,
    /// Bytes written to weights since the last submit.
    written: u64,
    /// The first error the device reported on its own (out of memory, say):
    /// wgpu's default would panic. Whether it was out of memory, and its text.
    device_error: Arc<Mutex<Option<(bool, String)>>>,
}

impl Backend for Gpu {
    type Weight = Weight;
    type Act = Act;
    type Cache = Cache;

    fn check_fits(&self, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
        self.fits(tensors, positions, kv_dim)
    }

    fn alloc(&mut self, info: &TensorInfo) -> Result<Weight> {
        self.alloc_weight(info)
    }

    fn fill(&mut self, w: &mut Weight, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()> {
        self.fill_weight(w, info, first, data)
    }

    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Cache> {
        self.alloc_cache(positions, kv_dim)
    }

    fn rows(&self, x: &Act) -> usize {
        x.rows
    }

    fn embed(&mut self, table: &Weight, tokens: &[u32]) -> Act {
        embed::embed(self, table, tokens)
    }

    fn rms_norm(&mut self, x: &Act, weight: &Weight, eps: f32) -> Act {
        norm::rms_norm(self, x, weight, eps)
    }

    fn layer_norm(&mut self, x: &Act, weight: &Weight, bias: &Weight, eps: f32) -> Act {
        norm::layer_norm(self, x, weight, bias, eps)
    }

    fn matmul(&mut self, x: &Act, w: &Weight) -> Act {
        matmul::matmul(self, x, w)
    }

    fn rope(&mut self, x: &mut Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope) {
        rope::rope(self, x, n_head, head_dim, pos, rope)
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
        attention::attention(self, q, k, v, cache, layer, pos, shape)
    }

    fn swiglu(&mut self, gate: &Act, up: &Act) -> Act {
        elementwise::swiglu(self, gate, up)
    }

    fn geglu(&mut self, gate: &Act, up: &Act) -> Act {
        elementwise::geglu(self, gate, up)
    }

    fn gelu(&mut self, x: &Act) -> Act {
        elementwise::gelu(self, x)
    }

    fn scale(&mut self, x: &mut Act, s: f32) {
        elementwise::scale(self, x, s)
    }

    fn reshape(&mut self, mut x: Act, rows: usize, cols: usize) -> Act {
        assert_eq!(rows * cols, x.rows * x.cols, "reshape keeps the values");
        (x.rows, x.cols) = (rows, cols);
        x
    }

    fn add(&mut self, x: &mut Act, y: &Act) {
        elementwise::add(self, x, y)
    }

    fn add_bias(&mut self, x: &mut Act, bias: &Weight) {
        elementwise::add_bias(self, x, bias)
    }

    fn rows_from(&mut self, x: &Act, first: usize) -> Act {
        self.copy_rows(x, first)
    }

    fn read(&mut self, x: &Act) -> Readback<Vec<f32>> {
        let src = x.buf.clone();
        self.read_back(&src, (x.rows * x.cols * 4) as u64).map(|bytes| bytemuck::pod_collect_to_vec(&bytes))
    }

    fn argmax(&mut self, x: &Act) -> Readback<u32> {
        argmax::argmax(self, x)
    }
}
