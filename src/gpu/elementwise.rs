//! Element-wise ops: gated activations, GELU, scaling, residual and bias
//! additions; 256 elements a workgroup.

use super::buffers::{Act, Weight};
use super::{grid, Gpu};

/// Dispatches `kernel` over `len` elements: its parameters are the length,
/// the grid's width, then `extra` where the kernel takes a third (on the
/// stack: a forward pass allocates nothing).
fn over(gpu: &mut Gpu, kernel: &'static str, len: usize, extra: Option<u32>, buffers: &[&wgpu::Buffer]) {
    let groups = grid(len.div_ceil(256));
    let params = [len as u32, groups[0], extra.unwrap_or(0)];
    gpu.dispatch((kernel, ""), &params[..2 + extra.is_some() as usize], buffers, groups);
}

/// A gated activation (`swiglu`, `geglu`) of `gate` and `up` into a new activation.
fn gated(gpu: &mut Gpu, kernel: &'static str, gate: &Act, up: &Act) -> Act {
    let out = gpu.act(gate.rows, gate.cols);
    over(gpu, kernel, gate.rows * gate.cols, None, &[&gate.buf, &up.buf, &out.buf]);
    out
}

pub(super) fn swiglu(gpu: &mut Gpu, gate: &Act, up: &Act) -> Act {
    gated(gpu, "swiglu", gate, up)
}

pub(super) fn geglu(gpu: &mut Gpu, gate: &Act, up: &Act) -> Act {
    gated(gpu, "geglu", gate, up)
}

pub(super) fn gelu(gpu: &mut Gpu, x: &Act) -> Act {
    let out = gpu.act(x.rows, x.cols);
    over(gpu, "gelu", x.rows * x.cols, None, &[&x.buf, &out.buf]);
    out
}

pub(super) fn scale(gpu: &mut Gpu, x: &mut Act, s: f32) {
    over(gpu, "scale", x.rows * x.cols, Some(s.to_bits()), &[&x.buf]);
}

pub(super) fn add(gpu: &mut Gpu, x: &mut Act, y: &Act) {
    over(gpu, "add", x.rows * x.cols, None, &[&y.buf, &x.buf]);
}

pub(super) fn add_bias(gpu: &mut Gpu, x: &mut Act, bias: &Weight) {
    let Weight::Vector(b) = bias else { unreachable!("a bias is a vector") };
    over(gpu, "add_bias", x.rows * x.cols, Some(x.cols as u32), &[b, &x.buf]);
}
