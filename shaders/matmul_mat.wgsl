// Prefill GEMM: y[t][row0 + r] = w[r] · x[t] for a tile of eight tokens a
// workgroup, so that each weight block is unpacked once for all eight. As
// matmul_vec otherwise: sixteen threads a row, four rows a workgroup, the
// format's `dequant` appended to this file.

struct Params {
    k: u32,        // columns of w (a multiple of 32) and of x
    rows: u32,     // rows of this part of w
    row0: u32,     // where this part's rows go in each row of y
    groups_x: u32, // workgroups along x (the grid is 2-D past 65535)
    n: u32,        // tokens
    stride: u32,   // elements of a row of y
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const LANES: u32 = 16u;
const ROWS: u32 = 4u;
const TILE: u32 = 8u;
var<workgroup> partial: array<f32, 512>; // [thread][token of the tile]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = (wg.x + wg.y * p.groups_x) * ROWS + t / LANES;
    let lane = t % LANES;
    let blocks = p.k / 32u;
    let first = wg.z * TILE;
    let tokens = min(TILE, p.n - first);
    var acc: array<f32, 8>;
    if (row < p.rows) {
        for (var b = lane; b < blocks; b += LANES) {
            var v = dequant((row * blocks + b) * BLOCK_WORDS);
            for (var j = 0u; j < tokens; j++) {
                let xb = (first + j) * (p.k / 4u) + b * 8u;
                var s = 0.0;
                for (var i = 0u; i < 8u; i++) {
                    s += dot(v[i], x[xb + i]);
                }
                acc[j] += s;
            }
        }
    }
    for (var j = 0u; j < TILE; j++) {
        partial[t * TILE + j] = acc[j];
    }
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var j = 0u; j < TILE; j++) {
                partial[t * TILE + j] += partial[(t + s) * TILE + j];
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.rows) {
        for (var j = 0u; j < tokens; j++) {
            y[(first + j) * p.stride + p.row0 + row] = partial[t * TILE + j];
        }
    }
}
