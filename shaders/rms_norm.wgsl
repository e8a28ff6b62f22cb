// RMSNorm of each row times a weight vector: one workgroup a row, the sum
// of squares reduced over 256 threads.

struct Params {
    cols: u32,
    eps: f32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const THREADS: u32 = 256u;
var<workgroup> partial: array<f32, THREADS>;

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let base = (wg.x + wg.y * p.groups_x) * p.cols;
    var sum = 0.0;
    for (var i = t; i < p.cols; i += THREADS) {
        let v = x[base + i];
        sum += v * v;
    }
    partial[t] = sum;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            partial[t] += partial[t + s];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(p.cols) + p.eps);
    for (var i = t; i < p.cols; i += THREADS) {
        y[base + i] = x[base + i] * scale * weight[i];
    }
}
