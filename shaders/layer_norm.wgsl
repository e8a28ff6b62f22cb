// LayerNorm of each row times a weight vector plus a bias vector: one
// workgroup a row, the mean and then the variance reduced over 256 threads.

struct Params {
    cols: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const THREADS: u32 = 256u;
var<workgroup> partial: array<f32, THREADS>;

// The sum of every thread's `v` in `partial[0]`.
fn reduce(t: u32, v: f32) -> f32 {
    partial[t] = v;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            partial[t] += partial[t + s];
        }
        workgroupBarrier();
    }
    let sum = partial[0];
    workgroupBarrier();
    return sum;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let base = wg.x * p.cols;
    var sum = 0.0;
    for (var i = t; i < p.cols; i += THREADS) {
        sum += x[base + i];
    }
    let mean = reduce(t, sum) / f32(p.cols);
    var squares = 0.0;
    for (var i = t; i < p.cols; i += THREADS) {
        let d = x[base + i] - mean;
        squares += d * d;
    }
    let scale = 1.0 / sqrt(reduce(t, squares) / f32(p.cols) + p.eps);
    for (var i = t; i < p.cols; i += THREADS) {
        y[base + i] = (x[base + i] - mean) * scale * weight[i] + bias[i];
    }
}
