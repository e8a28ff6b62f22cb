//! The adapter and its device: limits as large as the adapter allows, the
//! kernel family its kind of GPU wants, and the errors it reports on its own.

use super::{pipelines, Gpu};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which kernels run the ops. The choice follows the adapter: a GPU
/// emulated on the CPU runs a workgroup's invocations one after another, so
/// a barrier there costs a switch through every invocation; a hardware GPU
/// runs them side by side and needs many lanes busy, reading neighbouring
/// words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// One thread a row and no barrier (SwiftShader, llvmpipe's lavapipe,
    /// any fallback adapter).
    Software,
    /// Cooperative kernels: a workgroup a block of rows, lanes striding over
    /// a row's blocks, sums reduced in workgroup memory, or by `subgroupAdd`
    /// where the adapter has the `subgroups` feature (natively: wgpu's
    /// WebGPU backend does not offer it). With `f16` (the adapter's
    /// `shader-f16`), the prefill GEMM stages its tiles and multiplies in
    /// f16, and the attention kernels read the f16 cache as f16 and
    /// multiply there; every sum stays f32.
    Hardware { subgroups: bool, f16: bool },
}

impl Family {
    /// Every family, in the order the tests and the benchmark run them.
    pub const ALL: [Family; 5] = [
        Family::Software,
        Family::Hardware { subgroups: false, f16: false },
        Family::Hardware { subgroups: true, f16: false },
        Family::Hardware { subgroups: false, f16: true },
        Family::Hardware { subgroups: true, f16: true },
    ];

    /// The name `info` reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Software => "software",
            Family::Hardware { subgroups: false, f16: false } => "hardware",
            Family::Hardware { subgroups: true, f16: false } => "hardware+subgroups",
            Family::Hardware { subgroups: false, f16: true } => "hardware+f16",
            Family::Hardware { subgroups: true, f16: true } => "hardware+subgroups+f16",
        }
    }

    /// The family an adapter gets unless one is asked for: software for
    /// adapters that emulate a GPU on the CPU (a browser's fallback adapter
    /// reaches wgpu as `DeviceType::Cpu`), hardware for the rest, with
    /// subgroups and f16 where it has them.
    fn of(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Family {
        let name = info.name.to_lowercase();
        let emulated = ["swiftshader", "llvmpipe", "lavapipe", "software"].iter().any(|s| name.contains(s));
        if info.device_type == wgpu::DeviceType::Cpu || emulated {
            Family::Software
        } else {
            Family::Hardware {
                subgroups: features.contains(wgpu::Features::SUBGROUP),
                f16: features.contains(wgpu::Features::SHADER_F16),
            }
        }
    }

    /// The adapter features this family's kernels need.
    fn features(self) -> wgpu::Features {
        let mut features = wgpu::Features::empty();
        if let Family::Hardware { subgroups, f16 } = self {
            features.set(wgpu::Features::SUBGROUP, subgroups);
            features.set(wgpu::Features::SHADER_F16, f16);
        }
        features
    }
}

impl Gpu {
    /// The first adapter wgpu offers (high performance preferred), with the
    /// adapter's own limits so that large models get large bindings, and
    /// the kernel family it runs best ([`Family::of`]).
    pub async fn request() -> Result<Gpu> {
        Gpu::request_family(None).await
    }

    /// [`Gpu::request`] with the kernel family asked for (`None`: chosen
    /// from the adapter). Subgroups or f16 asked of an adapter that lacks
    /// them fall back to the hardware family without them: [`Gpu::family`]
    /// says which runs.
    pub async fn request_family(family: Option<Family>) -> Result<Gpu> {
        let instance = wgpu::Instance::default();
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(e.to_string()))?;
        let limits = adapter.limits();
        let info = adapter.get_info();
        let features = adapter.features();
        let family = match family {
            None => Family::of(&info, features),
            Some(Family::Hardware { subgroups, f16 }) => Family::Hardware {
                subgroups: subgroups && features.contains(wgpu::Features::SUBGROUP),
                f16: f16 && features.contains(wgpu::Features::SHADER_F16),
            },
            Some(Family::Software) => Family::Software,
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webslm"),
                required_features: family.features(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpu(e.to_string()))?;
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
            size: pipelines::PARAMS_SLOT * pipelines::PARAMS_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            device,
            queue,
            adapter: format!("{} ({:?})", info.name, info.backend),
            limits,
            family,
            kernels: HashMap::new(),
            bind_groups: HashMap::new(),
            encoder: None,
            params: Vec::new(),
            params_buf,
            pool: Default::default(),
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
    pub(super) fn check_device(&self) -> Result<()> {
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

    /// The kernel family that runs the ops.
    pub fn family(&self) -> Family {
        self.family
    }
}
