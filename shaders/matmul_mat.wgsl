// Prefill GEMM: y[t][row0 + r] = w[r] · x[t], one thread a row and eight
// tokens, so that each weight block is unpacked once for all eight (the
// format's `row_words` and `quads`, appended to this file, as in
// matmul_vec.wgsl). No barrier and no array (see
// matmul_vec.wgsl): the accumulators are two vectors; a tile past the last
// token repeats it and stores nothing.

struct Params {
    k: u32,        // columns of w (whole blocks of its format) and of x
    rows: u32,     // rows of this part of w
    row0: u32,     // where this part's rows go in each row of y
    groups_x: u32, // workgroups along x (the grid is 2-D past 65535)
    n: u32,        // tokens
    stride: u32,   // elements of a row of y
}

struct Quads {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const TILE: u32 = 8u;

// Token j's part of the product with `q`, the i-th values of the block
// whose x values start at `xb` in token 0's row.
fn token(q: Quads, j: u32, i: u32, xb: u32) -> f32 {
    let at = min(j, p.n - 1u) * (p.k / 4u) + xb + i;
    return dot(q.lo, x[at]) + dot(q.hi, x[at + 4u]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = (wg.x + wg.y * p.groups_x) * 64u + t;
    if (row >= p.rows) {
        return;
    }
    let blocks = p.k / 32u;
    let first = wg.z * TILE;
    var acc_lo = vec4<f32>(0.0); // tokens 0..3 of the tile
    var acc_hi = vec4<f32>(0.0); // tokens 4..7
    let row_base = row * row_words(p.k);
    for (var b = 0u; b < blocks; b++) {
        for (var i = 0u; i < 4u; i++) {
            let q = quads(row_base, b, i);
            let xb = b * 8u;
            acc_lo += vec4<f32>(token(q, first, i, xb), token(q, first + 1u, i, xb), token(q, first + 2u, i, xb), token(q, first + 3u, i, xb));
            acc_hi += vec4<f32>(token(q, first + 4u, i, xb), token(q, first + 5u, i, xb), token(q, first + 6u, i, xb), token(q, first + 7u, i, xb));
        }
    }
    for (var j = 0u; j < TILE; j++) {
        if (first + j < p.n) {
            y[(first + j) * p.stride + p.row0 + row] = select(acc_hi[j % 4u], acc_lo[j % 4u], j < 4u);
        }
    }
}
