//! Where the data lives: weights quantized in storage buffers (split by rows
//! into parts where a matrix is more than one binding), activations in
//! pooled buffers, the KV cache, scratch buffers, and the way back to the
//! host.

use super::{layout, Gpu};
use crate::gguf::TensorInfo;
use crate::model::Readback;
use crate::quant::{self, GgmlType};
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// Free activation buffers kept for reuse.
const POOL_KEEP: usize = 32;
/// Weight bytes written between two submits while a model loads: on
/// lavapipe, a 1.9 GB model peaked 93 MiB above its weights with 4 MiB,
/// 209 MiB with 16 and 500 MiB with 64 (`examples/memory_profile --gpu`).
const WRITES_PER_SUBMIT: u64 = 4 << 20;

/// A weight on the GPU: matrices in their quantized blocks, by parts of
/// whole rows; vectors (norm weights) in f32.
pub enum Weight {
    Matrix { ty: GgmlType, rows: usize, cols: usize, parts: Vec<Part> },
    Vector(wgpu::Buffer),
}

pub struct Part {
    pub(super) buf: wgpu::Buffer,
    pub(super) row0: usize,
    pub(super) rows: usize,
}

/// A row-major f32 matrix in a pooled storage buffer.
pub struct Act {
    pub rows: usize,
    pub cols: usize,
    pub(super) buf: wgpu::Buffer,
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

pub(super) type Pool = Arc<Mutex<Vec<wgpu::Buffer>>>;

/// Keys and values of every layer in f16, two a word, as the CPU keeps them:
/// layer `i` a ring of `positions[i]` rows (see [`Backend::new_cache`]).
pub struct Cache {
    pub(super) positions: Vec<usize>,
    pub(super) kv_dim: usize,
    pub(super) k: Vec<wgpu::Buffer>,
    pub(super) v: Vec<wgpu::Buffer>,
}

impl Gpu {
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

    /// An activation of `rows × cols`, from the pool when a buffer is free.
    pub(super) fn act(&mut self, rows: usize, cols: usize) -> Act {
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
    pub(super) fn scratch(
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

    pub(super) fn fits(&self, tensors: &[TensorInfo], positions: &[usize], kv_dim: usize) -> Result<()> {
        self.cache_layer_bytes(positions, kv_dim)?;
        tensors.iter().filter(|t| t.dims.len() > 1).try_for_each(|t| self.matrix_layout(t).map(|_| ()))
    }

    pub(super) fn alloc_weight(&mut self, info: &TensorInfo) -> Result<Weight> {
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
        for kernel in super::matmul::kernels(self.family).into_iter().chain(["embed"]) {
            self.kernel((kernel, format.name));
        }
        Ok(Weight::Matrix { ty: info.ty, rows, cols, parts })
    }

    pub(super) fn fill_weight(&mut self, w: &mut Weight, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()> {
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

    pub(super) fn alloc_cache(&mut self, positions: &[usize], kv_dim: usize) -> Result<Cache> {
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

    pub(super) fn copy_rows(&mut self, x: &Act, first: usize) -> Act {
        let out = self.act(x.rows - first, x.cols);
        let row_bytes = (x.cols * 4) as u64;
        let src = x.buf.clone();
        let dst = out.buf.clone();
        self.encoder().copy_buffer_to_buffer(&src, first as u64 * row_bytes, &dst, 0, out.rows as u64 * row_bytes);
        out
    }

    /// Submits the recorded work and copies `bytes` of `src` back to the host.
    pub(super) fn read_back(&mut self, src: &wgpu::Buffer, bytes: u64) -> Readback<Vec<u8>> {
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
}
