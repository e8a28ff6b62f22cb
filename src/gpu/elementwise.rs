//! Element-wise ops: gated activations, GELU, scaling, residual and bias
//! additions; 256 elements a workgroup.

use super::buffers::{Act, Weight};
use super::{grid, Gpu};

pub(super) fn swiglu(gpu: &mut Gpu, gate: &Act, up: &Act) -> Act {
    let out = gpu.act(gate.rows, gate.cols);
    let len = gate.rows * gate.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("swiglu", ""), &[len as u32, groups[0]], &[&gate.buf, &up.buf, &out.buf], groups);
    out
}

pub(super) fn geglu(gpu: &mut Gpu, gate: &Act, up: &Act) -> Act {
    let out = gpu.act(gate.rows, gate.cols);
    let len = gate.rows * gate.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("geglu", ""), &[len as u32, groups[0]], &[&gate.buf, &up.buf, &out.buf], groups);
    out
}

pub(super) fn gelu(gpu: &mut Gpu, x: &Act) -> Act {
    let out = gpu.act(x.rows, x.cols);
    let len = x.rows * x.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("gelu", ""), &[len as u32, groups[0]], &[&x.buf, &out.buf], groups);
    out
}

pub(super) fn scale(gpu: &mut Gpu, x: &mut Act, s: f32) {
    let len = x.rows * x.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("scale", ""), &[len as u32, groups[0], s.to_bits()], &[&x.buf], groups);
}

pub(super) fn add(gpu: &mut Gpu, x: &mut Act, y: &Act) {
    let len = x.rows * x.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("add", ""), &[len as u32, groups[0]], &[&y.buf, &x.buf], groups);
}

pub(super) fn add_bias(gpu: &mut Gpu, x: &mut Act, bias: &Weight) {
    let Weight::Vector(b) = bias else { unreachable!("a bias is a vector") };
    let len = x.rows * x.cols;
    let groups = grid(len.div_ceil(256));
    gpu.dispatch(("add_bias", ""), &[len as u32, groups[0], x.cols as u32], &[b, &x.buf], groups);
}
