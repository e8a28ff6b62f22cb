// Decode GEMV: y[row0 + r] = w[r] · x for one token, with w's rows in a
// quantized format whose `dequant` (from formats/<format>.wgsl, appended to
// this file) unpacks one 32-weight block. Sixteen threads share a row, each
// taking every sixteenth block; four rows a workgroup.

struct Params {
    k: u32,        // columns of w (a multiple of 32) and length of x
    rows: u32,     // rows of this part of w
    row0: u32,     // where this part's rows go in y
    groups_x: u32, // workgroups along x (the grid is 2-D past 65535)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const LANES: u32 = 16u;
const ROWS: u32 = 4u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = (wg.x + wg.y * p.groups_x) * ROWS + t / LANES;
    let lane = t % LANES;
    let blocks = p.k / 32u;
    var sum = 0.0;
    if (row < p.rows) {
        for (var b = lane; b < blocks; b += LANES) {
            var v = dequant((row * blocks + b) * BLOCK_WORDS);
            for (var i = 0u; i < 8u; i++) {
                sum += dot(v[i], x[b * 8u + i]);
            }
        }
    }
    partial[t] = sum;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[t] += partial[t + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.rows) {
        y[p.row0 + row] = partial[t];
    }
}
