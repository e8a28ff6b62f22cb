//! The GPU backend: the WGSL kernels of `shaders/` through wgpu (WebGPU in
//! browsers, Vulkan, Metal or DX12 natively), in f32 everywhere so that no
//! adapter feature (`shader-f16`, subgroups) is needed.
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

mod layout;

use crate::gguf::TensorInfo;
use crate::model::{self, Attention, Backend, Readback, Rope};
use crate::quant::{self, GgmlType};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// Bytes of one dispatch's parameters in the shared uniform buffer (the
/// largest dynamic-offset alignment WebGPU allows an adapter to ask for).
const PARAMS_SLOT: u64 = 256;
/// Dispatches recorded before their parameters must be flushed.
const PARAMS_SLOTS: u64 = 2048;
/// Workgroups along one dimension of a dispatch (WebGPU's guaranteed limit).
const MAX_GROUPS: u32 = 65535;
/// Free activation buffers kept for reuse.
const POOL_KEEP: usize = 32;
/// Weight bytes written between two submits while a model loads: on
/// lavapipe, a 1.9 GB model peaked 93 MiB above its weights with 4 MiB,
/// 209 MiB with 16 and 500 MiB with 64 (`examples/memory_profile --gpu`).
const WRITES_PER_SUBMIT: u64 = 4 << 20;
/// Bind groups kept for reuse (a forward pass of a 30-layer model makes
/// some 450).
const BIND_GROUPS_KEEP: usize = 4096;
/// The most storage buffers a kernel binds.
const MAX_BUFFERS: usize = 5;

/// A pipeline: a kernel of `shaders/` and, for the kernels that read
/// weights, the format appended to it (`""` for none). Static names, so
/// that finding a pipeline allocates nothing.
type KernelKey = (&'static str, &'static str);

/// A bind group: the pipeline and the buffers at bindings 1...
type BindKey = (KernelKey, [Option<wgpu::Buffer>; MAX_BUFFERS]);

/// How a kernel uses each of its storage buffers (bindings 1.., after the
/// parameters at binding 0).
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}
use Access::{Read, Write};

struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// A weight on the GPU: matrices in their quantized blocks, by parts of
/// whole rows; vectors (norm weights) in f32.
pub enum Weight {
    Matrix { ty: GgmlType, rows: usize, cols: usize, parts: Vec<Part> },
    Vector(wgpu::Buffer),
}

pub struct Part {
    buf: wgpu::Buffer,
    row0: usize,
    rows: usize,
}

/// A row-major f32 matrix in a pooled storage buffer.
pub struct Act {
    pub rows: usize,
    pub cols: usize,
    buf: wgpu::Buffer,
    pool: Pool,
}

impl Drop for Act {
    fn drop(&mut self) {
        let mut free = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < POOL_KEEP {
            free.push(self.buf.clone());
        }
    }
}

type Pool = Arc<Mutex<Vec<wgpu::Buffer>>>;

/// Keys and values of every layer in f16, two a word, as the CPU keeps them:
/// layer `i` a ring of `positions[i]` rows (see [`Backend::new_cache`]).
pub struct Cache {
    positions: Vec<usize>,
    kv_dim: usize,
    k: Vec<wgpu::Buffer>,
    v: Vec<wgpu::Buffer>,
}

/// The RoPE angles of positions `0..positions` for one set of parameters.
struct RopeTable {
    rope: Rope,
    positions: usize,
    buf: wgpu::Buffer,
}

pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    limits: wgpu::Limits,
    kernels: HashMap<KernelKey, Kernel>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameters of the dispatches recorded since the last submit.
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    pool: Pool,
    rope_tables: Vec<RopeTable>,
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

impl Gpu {
    /// The first adapter wgpu offers (high performance preferred), with the
    /// adapter's own limits so that large models get large bindings.
    pub async fn request() -> Result<Gpu> {
        let instance = wgpu::Instance::default();
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(e.to_string()))?;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webslm"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(e.to_string()))?;
        let info = adapter.get_info();
        let device_error = Arc::new(Mutex::new(None));
        let slot = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some((matches!(e, wgpu::Error::OutOfMemory { .. }), e.to_string()));
            }
        }));
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: PARAMS_SLOT * PARAMS_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            device,
            queue,
            adapter: format!("{} ({:?})", info.name, info.backend),
            limits,
            kernels: HashMap::new(),
            bind_groups: HashMap::new(),
            encoder: None,
            params: Vec::new(),
            params_buf,
            pool: Pool::default(),
            rope_tables: Vec::new(),
            tokens: None,
            staging: None,
            argmax_out: None,
            staging_bytes: Vec::new(),
            written: 0,
            device_error,
        })
    }

    /// The error the device reported, if any. Natively it reports at once;
    /// a browser reports between tasks, so a load finds it a tensor or two
    /// later.
    fn check_device(&self) -> Result<()> {
        match &*self.device_error.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some((true, _)) => Err(Error::OutOfMemory(
                "the GPU ran out of memory for this model; load it with a smaller context length, or on the CPU".into(),
            )),
            Some((false, text)) => Err(Error::NoGpu(format!("the GPU failed: {text}"))),
        }
    }

    /// [`Gpu::request`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu> {
        pollster::block_on(Gpu::request())
    }

    /// The adapter's name and API.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// An activation holding `data` (for the kernel tests).
    #[doc(hidden)]
    pub fn act_from(&mut self, rows: usize, cols: usize, data: &[f32]) -> Act {
        assert_eq!(data.len(), rows * cols);
        let act = self.act(rows, cols);
        self.submit();
        self.queue.write_buffer(&act.buf, 0, bytemuck::cast_slice(data));
        act
    }

    /// Makes matrices split into parts of at most `bytes` (for the tests of
    /// split matrices on adapters whose bindings are large).
    #[doc(hidden)]
    pub fn limit_binding(&mut self, bytes: u64) {
        self.limits.max_storage_buffer_binding_size = bytes;
    }

    /// The pipeline `key`, made on first use.
    fn kernel(&mut self, key: KernelKey) -> &Kernel {
        if !self.kernels.contains_key(&key) {
            let name = key.0;
            let (source, access) = source(key);
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            }];
            for (i, a) in access.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: matches!(a, Read) },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(name), entries: &entries });
            let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(&layout)],
                ..Default::default()
            });
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
            self.kernels.insert(key, Kernel { pipeline, layout });
        }
        &self.kernels[&key]
    }

    /// Records one dispatch of `kernel` over `groups` workgroups, with
    /// `params` (u32 words, f32 as bits) and `buffers` at bindings 1...
    fn dispatch(&mut self, kernel: KernelKey, params: &[u32], buffers: &[&wgpu::Buffer], groups: [u32; 3]) {
        if self.params.len() as u64 == PARAMS_SLOT * PARAMS_SLOTS {
            self.submit();
        }
        let offset = self.params.len() as u32;
        self.params.extend(params.iter().flat_map(|w| w.to_le_bytes()));
        self.params.resize(offset as usize + PARAMS_SLOT as usize, 0);
        let name = kernel.0;
        self.kernel(kernel);
        let pipeline = &self.kernels[&kernel];
        // A forward pass binds the same buffers (weights, pooled activations,
        // the cache) to the same kernels token after token: each bind group
        // is made once. New prompt lengths bring new activation buffers, so
        // the map is emptied when it grows past what a few shapes need.
        let key = (kernel, std::array::from_fn(|i| buffers.get(i).map(|&b| b.clone())));
        if self.bind_groups.len() >= BIND_GROUPS_KEEP && !self.bind_groups.contains_key(&key) {
            self.bind_groups.clear();
        }
        let bind_group = self
            .bind_groups
            .entry(key)
            .or_insert_with(|| {
                let params = wgpu::BufferBinding {
                    buffer: &self.params_buf,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_SLOT),
                };
                let mut entries =
                    vec![wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(params) }];
                entries.extend(
                    buffers
                        .iter()
                        .enumerate()
                        .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
                );
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &pipeline.layout,
                    entries: &entries,
                })
            })
            .clone();
        let encoder = self
            .encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(name), timestamp_writes: None });
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    /// Sends the recorded work (and its parameters) to the GPU.
    fn submit(&mut self) {
        if !self.params.is_empty() {
            self.queue.write_buffer(&self.params_buf, 0, &self.params);
            self.params.clear();
        }
        if let Some(encoder) = self.encoder.take() {
            self.queue.submit([encoder.finish()]);
        }
    }

    fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()))
    }

    /// An activation of `rows × cols`, from the pool when a buffer is free.
    fn act(&mut self, rows: usize, cols: usize) -> Act {
        let size = ((rows * cols * 4) as u64).next_power_of_two().max(256);
        let reused = {
            let mut free = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            free.iter().position(|b| b.size() == size).map(|i| free.swap_remove(i))
        };
        let buf = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("activation"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        Act { rows, cols, buf, pool: self.pool.clone() }
    }

    /// A storage buffer of at least `size` bytes kept in `slot`, replaced by
    /// a larger one when it is too small.
    fn scratch(
        device: &wgpu::Device,
        slot: &mut Option<wgpu::Buffer>,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        match slot {
            Some(b) if b.size() >= size => b.clone(),
            _ => {
                let b = device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: size.next_power_of_two().max(256),
                    usage,
                    mapped_at_creation: false,
                });
                *slot = Some(b.clone());
                b
            }
        }
    }

    /// The angle table for `rope` covering positions `..end`.
    fn rope_table(&mut self, rope: &Rope, end: usize) -> wgpu::Buffer {
        if let Some(t) = self.rope_tables.iter().find(|t| &t.rope == rope && t.positions >= end) {
            return t.buf.clone();
        }
        let positions = end.next_power_of_two().max(1024);
        let mut data = Vec::with_capacity(positions * rope.dims);
        let mut angles = Vec::new();
        for pos in 0..positions {
            rope.angles(pos, &mut angles);
            data.extend(angles.iter().flat_map(|&(c, s)| [c, s]));
        }
        let buf = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("rope angles"),
            contents: bytemuck::cast_slice(&data),
            usage: wgpu::BufferUsages::STORAGE,
        });
        self.rope_tables.retain(|t| &t.rope != rope);
        self.rope_tables.push(RopeTable { rope: rope.clone(), positions, buf: buf.clone() });
        buf
    }

    /// One token's attention over `seen` positions of a layer's cache (`kc`,
    /// `vc`, a ring of `ring` positions), split over chunks of positions
    /// (`shaders/attention_vec*.wgsl`). The scratch buffers are sized for the
    /// whole ring, so that every token gets the same pooled buffers and bind
    /// groups.
    #[allow(clippy::too_many_arguments)]
    fn attention_vec(
        &mut self,
        q: &Act,
        kc: &wgpu::Buffer,
        vc: &wgpu::Buffer,
        ring: usize,
        kv_dim: usize,
        seen: usize,
        shape: &Attention,
    ) -> Act {
        const CHUNK: usize = 32;
        let (n_head, hd) = (shape.n_head, shape.head_dim);
        let group = n_head / shape.n_head_kv;
        let first = shape.window.map_or(0, |w| seen.saturating_sub(w));
        let (n_chunks, max_chunks) = ((seen - first).div_ceil(CHUNK), ring.div_ceil(CHUNK));
        let scores = self.act(n_head, ring);
        let stats = self.act(n_head, 2 * max_chunks);
        let partial = self.act(n_head * max_chunks, hd);
        let out = self.act(1, n_head * hd);
        let [n_head, group, hd, kv_dim, seen, n_chunks, first, ring] =
            [n_head, group, hd, kv_dim, seen, n_chunks, first, ring].map(|x| x as u32);
        let scale = shape.scale.to_bits();
        let threads = |n: u32| grid((n as usize).div_ceil(64));
        self.dispatch(
            ("attention_vec_scores", ""),
            &[n_head, group, hd, kv_dim, seen, scale, n_chunks, ring, first],
            &[&q.buf, kc, &scores.buf, &stats.buf],
            threads(n_head * n_chunks),
        );
        self.dispatch(
            ("attention_vec", ""),
            &[n_head, group, hd, kv_dim, seen, n_chunks, ring, first],
            &[&stats.buf, &scores.buf, vc, &partial.buf],
            threads(n_head * n_chunks * hd),
        );
        self.dispatch(
            ("attention_vec_reduce", ""),
            &[n_head, hd, n_chunks],
            &[&partial.buf, &out.buf],
            threads(n_head * hd),
        );
        out
    }

    /// A matrix's GPU format, rows, and rows a part (a binding) holds; an
    /// error where no shader reads its format or one row is more than a
    /// binding.
    fn matrix_layout(&self, info: &TensorInfo) -> Result<(layout::Format, usize, usize)> {
        let cols = info.dims[0] as usize;
        let rows = (info.n_elements() / info.dims[0].max(1)) as usize;
        let format = layout::Format::of(info.ty)
            .ok_or_else(|| Error::UnsupportedQuant { tensor: info.name.clone(), ty: info.ty.name() })?;
        let len = format.block_len();
        if cols % len != 0 {
            return Err(Error::BadModel(format!(
                "tensor `{}`: rows of {cols} {} weights are not whole {len}-weight blocks",
                info.name,
                info.ty.name()
            )));
        }
        let row_bytes = format.words(cols) * 4;
        let binding = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size) as usize;
        if row_bytes > binding {
            return Err(Error::OutOfMemory(format!(
                "tensor `{}`: a row of {row_bytes} bytes is more than this GPU can bind ({binding} bytes)",
                info.name
            )));
        }
        Ok((format, rows, binding / row_bytes))
    }

    /// Bytes of each layer's keys (or values) for `positions[i]` positions;
    /// an error where one is more than a binding.
    fn cache_layer_bytes(&self, positions: &[usize], kv_dim: usize) -> Result<Vec<u64>> {
        let bytes: Vec<u64> = positions.iter().map(|&p| (p as u64).saturating_mul(kv_dim as u64 * 2)).collect();
        let binding = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes.iter().any(|&b| b > binding) {
            let context = positions.iter().max().copied().unwrap_or(0);
            let total = bytes.iter().fold(0u64, |sum, &b| sum.saturating_add(b.saturating_mul(2)));
            return Err(Error::OutOfMemory(format!(
                "a KV cache of {context} positions needs {total} bytes on the GPU, in layers larger than it can bind ({binding} bytes); load with a smaller context length"
            )));
        }
        Ok(bytes)
    }

    /// Submits the recorded work and copies `bytes` of `src` back to the host.
    fn read_back(&mut self, src: &wgpu::Buffer, bytes: u64) -> Readback<Vec<u8>> {
        let staging = Gpu::scratch(
            &self.device,
            &mut self.staging,
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        self.encoder().copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.submit();
        let (done, mapped) = futures_channel::oneshot::channel();
        staging.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
            let _ = done.send(r);
        });
        let take = move |mapped: Result<(), wgpu::BufferAsyncError>| {
            mapped.expect("mapping a staging buffer");
            let out = staging.slice(..bytes).get_mapped_range().expect("the staging buffer is mapped").to_vec();
            staging.unmap();
            out
        };
        // Natively the callback runs inside `poll`; a browser runs it from
        // its event loop, after this returns.
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.device.poll(wgpu::PollType::wait_indefinitely()).expect("waiting for the GPU");
            let mut mapped = mapped;
            Readback::Ready(take(mapped.try_recv().ok().flatten().expect("mapped during poll")))
        }
        #[cfg(target_arch = "wasm32")]
        Readback::Pending(Box::pin(async move { take(mapped.await.expect("the mapping callback runs")) }))
    }

    fn storage(&self, label: &str, size: u64) -> Result<wgpu::Buffer> {
        if size > self.limits.max_buffer_size {
            return Err(Error::OutOfMemory(format!(
                "{label}: {size} bytes is more than this GPU's largest buffer ({} bytes)",
                self.limits.max_buffer_size
            )));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }
}

/// A pipeline's WGSL (the kernel, with its format's `quads` appended) and
/// how the kernel uses its buffers.
fn source((kernel, format): KernelKey) -> (String, &'static [Access]) {
    const MATMUL: &[Access] = &[Read, Read, Write];
    let (wgsl, access): (&str, &'static [Access]) = match kernel {
        "matmul_vec" => (include_str!("../../shaders/matmul_vec.wgsl"), MATMUL),
        "matmul_mat" => (include_str!("../../shaders/matmul_mat.wgsl"), MATMUL),
        "embed" => (include_str!("../../shaders/embed.wgsl"), MATMUL),
        "rms_norm" => (include_str!("../../shaders/rms_norm.wgsl"), &[Read, Read, Write]),
        "layer_norm" => (include_str!("../../shaders/layer_norm.wgsl"), &[Read, Read, Read, Write]),
        "rope" => (include_str!("../../shaders/rope.wgsl"), &[Read, Write]),
        "kv_store" => (include_str!("../../shaders/kv_store.wgsl"), &[Read, Read, Write, Write]),
        "attention_vec_scores" => {
            (include_str!("../../shaders/attention_vec_scores.wgsl"), &[Read, Read, Write, Write])
        }
        "attention_vec" => (include_str!("../../shaders/attention_vec.wgsl"), &[Read, Read, Read, Write]),
        "attention_vec_reduce" => (include_str!("../../shaders/attention_vec_reduce.wgsl"), &[Read, Write]),
        "attention_mat" => (include_str!("../../shaders/attention_mat.wgsl"), &[Read, Read, Read, Write]),
        "swiglu" => (include_str!("../../shaders/swiglu.wgsl"), &[Read, Read, Write]),
        "geglu" => (include_str!("../../shaders/geglu.wgsl"), &[Read, Read, Write]),
        "gelu" => (include_str!("../../shaders/gelu.wgsl"), &[Read, Write]),
        "scale" => (include_str!("../../shaders/scale.wgsl"), &[Write]),
        "add" => (include_str!("../../shaders/add.wgsl"), &[Read, Write]),
        "add_bias" => (include_str!("../../shaders/add_bias.wgsl"), &[Read, Write]),
        "argmax" => (include_str!("../../shaders/argmax.wgsl"), &[Read, Write]),
        other => unreachable!("no kernel `{other}`"),
    };
    // What a kernel's source calls and another file defines.
    let appended = match (kernel, format) {
        ("gelu" | "geglu", _) => include_str!("../../shaders/gelu_f16.wgsl"),
        (_, "") => "",
        (_, f) => layout::format_source(f).unwrap_or_else(|| unreachable!("no format `{f}`")),
    };
    debug_assert!(access.len() <= MAX_BUFFERS);
    (format!("{wgsl}\n{appended}"), access)
}

/// A grid of `n` workgroups: `[x, y, 1]` with `x · y ≥ n`, x ≤ 65535.
fn grid(n: usize) -> [u32; 3] {
    let x = n.clamp(1, MAX_GROUPS as usize);
    [x as u32, n.div_ceil(x).max(1) as u32, 1]
}

impl Backend for Gpu {
    type Weight = Weight;
    type Act = Act;
    type Cache = Cache;

    fn check_fits(&self, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
        self.cache_layer_bytes(positions, kv_dim)?;
        tensors.iter().filter(|t| t.dims.len() > 1).try_for_each(|t| self.matrix_layout(t).map(|_| ()))
    }

    fn alloc(&mut self, info: &TensorInfo) -> Result<Weight> {
        self.check_device()?;
        let cols = info.dims[0] as usize;
        if info.dims.len() == 1 {
            return Ok(Weight::Vector(self.storage(&info.name, (cols * 4) as u64)?));
        }
        let (format, rows, part_rows) = self.matrix_layout(info)?;
        let row_out = format.words(cols) * 4;
        let parts = (0..rows)
            .step_by(part_rows)
            .map(|row0| {
                let n = part_rows.min(rows - row0);
                Ok(Part { buf: self.storage(&info.name, (n * row_out) as u64)?, row0, rows: n })
            })
            .collect::<Result<Vec<_>>>()?;
        for kernel in ["matmul_vec", "matmul_mat", "embed"] {
            self.kernel((kernel, format.name));
        }
        Ok(Weight::Matrix { ty: info.ty, rows, cols, parts })
    }

    fn fill(&mut self, w: &mut Weight, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()> {
        match w {
            // A vector is one row: it comes whole.
            Weight::Vector(buf) => {
                let mut v = vec![0f32; info.dims[0] as usize];
                quant::dequantize_row(info.ty, data, &mut v);
                self.queue.write_buffer(buf, 0, bytemuck::cast_slice(&v));
            }
            Weight::Matrix { ty, cols, parts, .. } => {
                let format = layout::Format::of(*ty).expect("checked at alloc");
                let row_in = info.row_bytes() as usize;
                let row_out = format.words(*cols) * 4;
                let (first, last) = (first as usize, first as usize + data.len() / row_in);
                // A few MiB at a time, so that the repacked copy stays small.
                let step = ((4 << 20) / row_out).max(1);
                for part in parts.iter().filter(|p| p.row0 < last && first < p.row0 + p.rows) {
                    let (lo, hi) = (first.max(part.row0), last.min(part.row0 + part.rows));
                    for r in (lo..hi).step_by(step) {
                        let end = hi.min(r + step);
                        self.staging_bytes.clear();
                        format.pack(&data[(r - first) * row_in..(end - first) * row_in], &mut self.staging_bytes);
                        self.queue.write_buffer(&part.buf, ((r - part.row0) * row_out) as u64, &self.staging_bytes);
                    }
                }
                self.written += (data.len() / row_in * row_out) as u64;
            }
        }
        // Each write waits in a staging buffer until it is submitted and done:
        // a load's writes must not pile up in host memory (natively, where
        // wgpu keeps them; a browser copies them out of wasm memory at once).
        if self.written >= WRITES_PER_SUBMIT {
            self.written = 0;
            self.queue.submit([]);
            #[cfg(not(target_arch = "wasm32"))]
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::NoGpu(e.to_string()))?;
        }
        self.check_device()
    }

    fn new_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Cache> {
        let bytes = self.cache_layer_bytes(positions, kv_dim)?;
        let mut k = Vec::with_capacity(positions.len());
        let mut v = Vec::with_capacity(positions.len());
        for &b in &bytes {
            k.push(self.storage("KV cache", b)?);
            v.push(self.storage("KV cache", b)?);
        }
        self.check_device()?;
        Ok(Cache { positions: positions.to_vec(), kv_dim, k, v })
    }

    fn rows(&self, x: &Act) -> usize {
        x.rows
    }

    fn embed(&mut self, table: &Weight, tokens: &[u32]) -> Act {
        let Weight::Matrix { ty, cols, parts, .. } = table else { unreachable!("the embedding table is a matrix") };
        let kernel = ("embed", layout::Format::of(*ty).expect("checked at upload").name);
        let ids = Gpu::scratch(
            &self.device,
            &mut self.tokens,
            (tokens.len() * 4) as u64,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        // The ids must land before this batch's dispatches and after the
        // last batch's: record-time order is kept by submitting first.
        self.submit();
        self.queue.write_buffer(&ids, 0, bytemuck::cast_slice(tokens));
        let out = self.act(tokens.len(), *cols);
        for part in parts {
            let params = [*cols as u32, part.rows as u32, part.row0 as u32, tokens.len() as u32];
            let groups = [(*cols / 32).div_ceil(64) as u32, tokens.len() as u32, 1];
            self.dispatch(kernel, &params, &[&part.buf, &ids, &out.buf], groups);
        }
        out
    }

    fn rms_norm(&mut self, x: &Act, weight: &Weight, eps: f32) -> Act {
        let Weight::Vector(w) = weight else { unreachable!("norm weights are vectors") };
        let out = self.act(x.rows, x.cols);
        let params = [x.cols as u32, eps.to_bits()];
        self.dispatch(("rms_norm", ""), &params, &[&x.buf, w, &out.buf], [x.rows as u32, 1, 1]);
        out
    }

    fn layer_norm(&mut self, x: &Act, weight: &Weight, bias: &Weight, eps: f32) -> Act {
        let (Weight::Vector(w), Weight::Vector(b)) = (weight, bias) else { unreachable!("norm weights are vectors") };
        let out = self.act(x.rows, x.cols);
        let params = [x.cols as u32, eps.to_bits()];
        self.dispatch(("layer_norm", ""), &params, &[&x.buf, w, b, &out.buf], [x.rows as u32, 1, 1]);
        out
    }

    fn matmul(&mut self, x: &Act, w: &Weight) -> Act {
        let Weight::Matrix { ty, rows, cols, parts } = w else { unreachable!("matmul of a vector") };
        assert_eq!(x.cols, *cols, "matmul shapes");
        let format = layout::Format::of(*ty).expect("checked at upload").name;
        let out = self.act(x.rows, *rows);
        for part in parts {
            // One thread a row, 64 a workgroup.
            let [gx, gy, _] = grid(part.rows.div_ceil(64));
            if x.rows == 1 {
                let params = [*cols as u32, part.rows as u32, part.row0 as u32, gx];
                self.dispatch(("matmul_vec", format), &params, &[&part.buf, &x.buf, &out.buf], [gx, gy, 1]);
            } else {
                let params = [*cols as u32, part.rows as u32, part.row0 as u32, gx, x.rows as u32, *rows as u32];
                let tiles = x.rows.div_ceil(8) as u32;
                self.dispatch(("matmul_mat", format), &params, &[&part.buf, &x.buf, &out.buf], [gx, gy, tiles]);
            }
        }
        out
    }

    fn rope(&mut self, x: &mut Act, n_head: usize, head_dim: usize, pos: usize, rope: &Rope) {
        let table = self.rope_table(rope, pos + x.rows);
        let pairs = rope.dims / 2;
        let params = [n_head as u32, head_dim as u32, pairs as u32, rope.neox as u32, pos as u32, x.rows as u32];
        let groups = [(n_head * pairs).div_ceil(64) as u32, x.rows as u32, 1];
        self.dispatch(("rope", ""), &params, &[&table, &x.buf], groups);
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
        let (kv_dim, ring) = (cache.kv_dim, cache.positions[layer]);
        assert!(
            model::attention_span(pos, q.rows, shape.window) <= ring,
            "a batch of {} at {pos} reads more positions than layer {layer}'s {ring}",
            q.rows
        );
        let (kc, vc) = (cache.k[layer].clone(), cache.v[layer].clone());
        let params = [kv_dim as u32, pos as u32, k.rows as u32, ring as u32];
        let groups = [(kv_dim / 2).div_ceil(64) as u32, k.rows as u32, 1];
        self.dispatch(("kv_store", ""), &params, &[&k.buf, &v.buf, &kc, &vc], groups);
        if q.rows == 1 {
            return self.attention_vec(q, &kc, &vc, ring, kv_dim, pos + 1, shape);
        }
        // Query rows a workgroup: as many as attention_mat.wgsl's 512 query
        // pairs hold, a power of two (its 64 threads split evenly over
        // them), at most 16.
        let rows = 1 << (1024 / shape.head_dim).clamp(1, 16).ilog2();
        let out = self.act(q.rows, shape.n_head * shape.head_dim);
        let params = [
            shape.n_head as u32,
            (shape.n_head / shape.n_head_kv) as u32,
            shape.head_dim as u32,
            kv_dim as u32,
            pos as u32,
            shape.scale.to_bits(),
            q.rows as u32,
            rows as u32,
            shape.window.unwrap_or(0) as u32,
            ring as u32,
        ];
        let groups = [shape.n_head as u32, q.rows.div_ceil(rows) as u32, 1];
        self.dispatch(("attention_mat", ""), &params, &[&q.buf, &kc, &vc, &out.buf], groups);
        out
    }

    fn swiglu(&mut self, gate: &Act, up: &Act) -> Act {
        let out = self.act(gate.rows, gate.cols);
        let len = gate.rows * gate.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("swiglu", ""), &[len as u32, groups[0]], &[&gate.buf, &up.buf, &out.buf], groups);
        out
    }

    fn geglu(&mut self, gate: &Act, up: &Act) -> Act {
        let out = self.act(gate.rows, gate.cols);
        let len = gate.rows * gate.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("geglu", ""), &[len as u32, groups[0]], &[&gate.buf, &up.buf, &out.buf], groups);
        out
    }

    fn gelu(&mut self, x: &Act) -> Act {
        let out = self.act(x.rows, x.cols);
        let len = x.rows * x.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("gelu", ""), &[len as u32, groups[0]], &[&x.buf, &out.buf], groups);
        out
    }

    fn scale(&mut self, x: &mut Act, s: f32) {
        let len = x.rows * x.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("scale", ""), &[len as u32, groups[0], s.to_bits()], &[&x.buf], groups);
    }

    fn reshape(&mut self, mut x: Act, rows: usize, cols: usize) -> Act {
        assert_eq!(rows * cols, x.rows * x.cols, "reshape keeps the values");
        (x.rows, x.cols) = (rows, cols);
        x
    }

    fn add(&mut self, x: &mut Act, y: &Act) {
        let len = x.rows * x.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("add", ""), &[len as u32, groups[0]], &[&y.buf, &x.buf], groups);
    }

    fn add_bias(&mut self, x: &mut Act, bias: &Weight) {
        let Weight::Vector(b) = bias else { unreachable!("a bias is a vector") };
        let len = x.rows * x.cols;
        let groups = grid(len.div_ceil(256));
        self.dispatch(("add_bias", ""), &[len as u32, groups[0], x.cols as u32], &[b, &x.buf], groups);
    }

    fn rows_from(&mut self, x: &Act, first: usize) -> Act {
        let out = self.act(x.rows - first, x.cols);
        let row_bytes = (x.cols * 4) as u64;
        let src = x.buf.clone();
        let dst = out.buf.clone();
        self.encoder().copy_buffer_to_buffer(&src, first as u64 * row_bytes, &dst, 0, out.rows as u64 * row_bytes);
        out
    }

    fn read(&mut self, x: &Act) -> Readback<Vec<f32>> {
        let src = x.buf.clone();
        self.read_back(&src, (x.rows * x.cols * 4) as u64).map(|bytes| bytemuck::pod_collect_to_vec(&bytes))
    }

    fn argmax(&mut self, x: &Act) -> Readback<u32> {
        assert_eq!(x.rows, 1, "argmax of one row");
        let out = Gpu::scratch(
            &self.device,
            &mut self.argmax_out,
            4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        self.dispatch(("argmax", ""), &[x.cols as u32], &[&x.buf, &out], [1, 1, 1]);
        self.read_back(&out, 4).map(|bytes| u32::from_le_bytes(bytes[..4].try_into().expect("four bytes")))
    }
}
