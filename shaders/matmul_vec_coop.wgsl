// Decode GEMV for hardware GPUs: y[row0 + r] = w[r] · x for one token, four
// rows a workgroup of 64 lanes. Each lane's share (`lane_sums`, from
// matmul_vec_lanes.wgsl, appended with the format's `quads`) walks quarter
// blocks t, t + 64, ... of the rows, so that neighbouring lanes read
// neighbouring words and a 576-column row keeps 72 lanes busy where the
// software kernel (matmul_vec.wgsl) keeps one. The shares meet in workgroup
// memory, halved six times; matmul_vec_subgroup.wgsl adds them with
// subgroupAdd instead.

struct Params {
    k: u32,        // columns of w (whole blocks of its format) and length of x
    rows: u32,     // rows of this part of w
    row0: u32,     // where this part's rows go in y
    groups_x: u32, // workgroups along x (the grid is 2-D past 65535)
}

struct Quads {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const LANES: u32 = 64u;

var<workgroup> sums: array<vec4<f32>, LANES>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let first = (wg.x + wg.y * p.groups_x) * 4u;
    let sum = lane_sums(first, t);
    sums[t] = sum;
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half /= 2u) {
        if (t < half) {
            sums[t] += sums[t + half];
        }
        workgroupBarrier();
    }
    if (t < 4u && first + t < p.rows) {
        y[p.row0 + first + t] = sums[0][t];
    }
}
