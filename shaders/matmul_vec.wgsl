// Decode GEMV: y[row0 + r] = w[r] · x for one token, with w's rows in a
// quantized format whose `quads` (from formats/<format>.wgsl, appended to
// this file) unpacks a 32-weight block eight values at a time, the block
// found from where its row starts (`row_words`: a K-quant's 32-weight
// blocks are sub-blocks of 256-weight super-blocks). One thread a
// row, and no barrier: GPUs emulated on the CPU (SwiftShader, lavapipe) run
// a barrier by switching between every invocation of the workgroup, which
// made a sixteen-threads-a-row reduction run ten times slower there.

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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = (wg.x + wg.y * p.groups_x) * 64u + t;
    if (row >= p.rows) {
        return;
    }
    let blocks = p.k / 32u;
    let row_base = row * row_words(p.k);
    var sum = 0.0;
    for (var b = 0u; b < blocks; b++) {
        for (var i = 0u; i < 4u; i++) {
            let q = quads(row_base, b, i);
            sum += dot(q.lo, x[b * 8u + i]) + dot(q.hi, x[b * 8u + 4u + i]);
        }
    }
    y[p.row0 + row] = sum;
}
