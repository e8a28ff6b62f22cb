//! The greedy token, found on the GPU so that only its index comes back.

use super::buffers::Act;
use super::Gpu;
use crate::model::Readback;

pub(super) fn argmax(gpu: &mut Gpu, x: &Act) -> Readback<u32> {
    assert_eq!(x.rows, 1, "argmax of one row");
    let out =
        Gpu::scratch(&gpu.device, &mut gpu.argmax_out, 4, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    gpu.dispatch(("argmax", ""), &[x.cols as u32], &[&x.buf, &out], [1, 1, 1]);
    gpu.read_back(&out, 4).map(|bytes| u32::from_le_bytes(bytes[..4].try_into().expect("four bytes")))
}
