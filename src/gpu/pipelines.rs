//! Kernels as compute pipelines, each made once, and the recording of their
//! dispatches: parameters in one uniform buffer at dynamic offsets, bind
//! groups kept for reuse, one command encoder submitted when the host needs
//! a result.

use super::{layout, Family, Gpu};

/// Bytes of one dispatch's parameters in the shared uniform buffer (the
/// largest dynamic-offset alignment WebGPU allows an adapter to ask for).
pub(super) const PARAMS_SLOT: u64 = 256;
/// Dispatches recorded before their parameters must be flushed.
pub(super) const PARAMS_SLOTS: u64 = 2048;
/// Workgroups along one dimension of a dispatch (WebGPU's guaranteed limit).
const MAX_GROUPS: u32 = 65535;
/// Bind groups kept for reuse (a forward pass of a 30-layer model makes
/// some 450).
const BIND_GROUPS_KEEP: usize = 4096;
/// The most storage buffers a kernel binds.
const MAX_BUFFERS: usize = 5;

/// A pipeline: a kernel of `shaders/` and, for the kernels that read
/// weights, the format appended to it (`""` for none). Static names, so
/// that finding a pipeline allocates nothing.
pub(super) type KernelKey = (&'static str, &'static str);

/// A bind group: the pipeline and the buffers at bindings 1...
pub(super) type BindKey = (KernelKey, [Option<wgpu::Buffer>; MAX_BUFFERS]);

/// How a kernel uses each of its storage buffers (bindings 1.., after the
/// parameters at binding 0).
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}
use Access::{Read, Write};

pub(super) struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl Gpu {
    /// The pipeline `key`, made on first use.
    pub(super) fn kernel(&mut self, key: KernelKey) -> &Kernel {
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
    pub(super) fn dispatch(&mut self, kernel: KernelKey, params: &[u32], buffers: &[&wgpu::Buffer], groups: [u32; 3]) {
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
    pub(super) fn submit(&mut self) {
        if !self.params.is_empty() {
            self.queue.write_buffer(&self.params_buf, 0, &self.params);
            self.params.clear();
        }
        if let Some(encoder) = self.encoder.take() {
            self.queue.submit([encoder.finish()]);
        }
    }

    pub(super) fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.encoder
            .get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()))
    }
}

/// The kernels written over an arithmetic type `H` (the matrix product's
/// tiles, the attention's products), each with the name of its f16
/// pipeline.
const OVER_H: [(&str, &str); 3] = [
    ("matmul_mat_tiled", "matmul_mat_tiled_f16"),
    ("attention_vec_scores_coop", "attention_vec_scores_coop_f16"),
    ("attention_mat", "attention_mat_f16"),
];

/// The pipeline that runs `kernel` on `family`: its f16 twin where the
/// family multiplies in f16 and the kernel is written over `H`.
pub(super) fn precise(family: Family, kernel: &'static str) -> &'static str {
    match family {
        Family::Hardware { f16: true, .. } => OVER_H.iter().find(|(k, _)| *k == kernel).map_or(kernel, |(_, f16)| f16),
        _ => kernel,
    }
}

/// A pipeline's WGSL (the kernel, with its format's `quads` appended) and
/// how the kernel uses its buffers. The kernels written over `H` get their
/// arithmetic prepended: f32, or f16 for their f16 pipelines.
fn source((name, format): KernelKey) -> (String, &'static [Access]) {
    const MATMUL: &[Access] = &[Read, Read, Write];
    let (kernel, precision) = match OVER_H.iter().find(|(k, f16)| *k == name || *f16 == name) {
        Some((kernel, f16)) if *f16 == name => (*kernel, include_str!("../../shaders/precision_f16.wgsl")),
        Some((kernel, _)) => (*kernel, include_str!("../../shaders/precision_f32.wgsl")),
        None => (name, ""),
    };
    let (wgsl, access): (&str, &'static [Access]) = match kernel {
        "matmul_vec" => (include_str!("../../shaders/matmul_vec.wgsl"), MATMUL),
        "matmul_vec_coop" => (include_str!("../../shaders/matmul_vec_coop.wgsl"), MATMUL),
        "matmul_vec_subgroup" => (include_str!("../../shaders/matmul_vec_subgroup.wgsl"), MATMUL),
        "matmul_mat" => (include_str!("../../shaders/matmul_mat.wgsl"), MATMUL),
        "matmul_mat_tiled" => (include_str!("../../shaders/matmul_mat_tiled.wgsl"), MATMUL),
        "embed" => (include_str!("../../shaders/embed.wgsl"), MATMUL),
        "rms_norm" => (include_str!("../../shaders/rms_norm.wgsl"), &[Read, Read, Write]),
        "layer_norm" => (include_str!("../../shaders/layer_norm.wgsl"), &[Read, Read, Read, Write]),
        "rope" => (include_str!("../../shaders/rope.wgsl"), &[Read, Write]),
        "kv_store" => (include_str!("../../shaders/kv_store.wgsl"), &[Read, Read, Write, Write]),
        "attention_vec_scores" => {
            (include_str!("../../shaders/attention_vec_scores.wgsl"), &[Read, Read, Write, Write])
        }
        "attention_vec_scores_coop" => {
            (include_str!("../../shaders/attention_vec_scores_coop.wgsl"), &[Read, Read, Write, Write])
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
        _ => unreachable!("no kernel `{name}`"),
    };
    // What a kernel's source calls and another file defines.
    let appended = match (kernel, format) {
        ("gelu" | "geglu", _) => include_str!("../../shaders/gelu_f16.wgsl"),
        (_, "") => "",
        (_, f) => layout::format_source(f).unwrap_or_else(|| unreachable!("no format `{f}`")),
    };
    let lanes = match kernel {
        "matmul_vec_coop" | "matmul_vec_subgroup" => include_str!("../../shaders/matmul_vec_lanes.wgsl"),
        _ => "",
    };
    debug_assert!(access.len() <= MAX_BUFFERS);
    (format!("{precision}\n{wgsl}\n{lanes}\n{appended}"), access)
}

/// A grid of `n` workgroups: `[x, y, 1]` with `x · y ≥ n`, x ≤ 65535.
pub(super) fn grid(n: usize) -> [u32; 3] {
    let x = n.clamp(1, MAX_GROUPS as usize);
    [x as u32, n.div_ceil(x).max(1) as u32, 1]
}
