//! RMSNorm and LayerNorm, one workgroup a row.

use super::buffers::{Act, Weight};
use super::Gpu;

pub(super) fn rms_norm(gpu: &mut Gpu, x: &Act, weight: &Weight, eps: f32) -> Act {
    let Weight::Vector(w) = weight else { unreachable!("norm weights are vectors") };
    let out = gpu.act(x.rows, x.cols);
    let params = [x.cols as u32, eps.to_bits()];
    gpu.dispatch(("rms_norm", ""), &params, &[&x.buf, w, &out.buf], [x.rows as u32, 1, 1]);
    out
}

pub(super) fn layer_norm(gpu: &mut Gpu, x: &Act, weight: &Weight, bias: &Weight, eps: f32) -> Act {
    let (Weight::Vector(w), Weight::Vector(b)) = (weight, bias) else { unreachable!("norm weights are vectors") };
    let out = gpu.act(x.rows, x.cols);
    let params = [x.cols as u32, eps.to_bits()];
    gpu.dispatch(("layer_norm", ""), &params, &[&x.buf, w, b, &out.buf], [x.rows as u32, 1, 1]);
    out
}
