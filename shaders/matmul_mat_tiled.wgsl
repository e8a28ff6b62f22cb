// Prefill GEMM for hardware GPUs: y[t][row0 + r] = w[r] · x[t], a tile of 32
// rows × 32 tokens a workgroup of 64 lanes, each lane 4 rows × 4 tokens.
// For each 32-weight block along k both operands are staged in workgroup
// memory: the lanes unpack the tile's 32 rows' block (128 quarter blocks,
// two a lane, by the format's `quads`, appended to this file) and copy the
// 32 tokens' values (256 vectors, four a lane); then each lane multiplies
// its 4 × 4 from there. A weight is unpacked once for 32 tokens (the
// software kernel, matmul_mat.wgsl: once for 8) and a value of x read from
// memory once for 32 rows. Rows and tokens past the end repeat the last and
// are not stored. The tiles hold `H` (precision_f32.wgsl or, with
// shader-f16, precision_f16.wgsl: f16 values and products, sums in f32).

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

const TILE: u32 = 32u;
// A staged row (or token) is a block's 32 values, eight vectors, padded to
// nine so that lanes reading different rows reach different banks.
const STRIDE: u32 = 9u;

var<workgroup> ws: array<vec4<H>, 288>; // TILE rows × STRIDE
var<workgroup> xs: array<vec4<H>, 288>; // TILE tokens × STRIDE

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let first_row = (wg.x + wg.y * p.groups_x) * TILE;
    let first_token = wg.z * TILE;
    let rw = row_words(p.k);
    let kv = p.k / 4u; // vectors of a row of x
    // This lane's rows (4·lr..) and tokens (4·lt..) within the tile.
    let lr = t / 8u;
    let lt = t % 8u;
    var acc: array<vec4<f32>, 4>; // acc[j][r]: token 4·lt + j, row 4·lr + r
    for (var b = 0u; b < p.k / 32u; b++) {
        for (var s = 0u; s < 2u; s++) {
            let u = t + s * 64u;
            let r = u / 4u;
            let i = u % 4u;
            let q = quads(min(first_row + r, p.rows - 1u) * rw, b, i);
            ws[r * STRIDE + i] = vec4<H>(q.lo);
            ws[r * STRIDE + 4u + i] = vec4<H>(q.hi);
        }
        for (var s = 0u; s < 4u; s++) {
            let v = t + s * 64u;
            let tok = v / 8u;
            let c = v % 8u;
            xs[tok * STRIDE + c] = vec4<H>(x[min(first_token + tok, p.n - 1u) * kv + b * 8u + c]);
        }
        workgroupBarrier();
        for (var c = 0u; c < 8u; c++) {
            let a0 = ws[(lr * 4u) * STRIDE + c];
            let a1 = ws[(lr * 4u + 1u) * STRIDE + c];
            let a2 = ws[(lr * 4u + 2u) * STRIDE + c];
            let a3 = ws[(lr * 4u + 3u) * STRIDE + c];
            for (var j = 0u; j < 4u; j++) {
                let xv = xs[(lt * 4u + j) * STRIDE + c];
                acc[j] += vec4<f32>(f32(dot(a0, xv)), f32(dot(a1, xv)), f32(dot(a2, xv)), f32(dot(a3, xv)));
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j++) {
        let token = first_token + lt * 4u + j;
        for (var r = 0u; r < 4u; r++) {
            let row = first_row + lr * 4u + r;
            if (token < p.n && row < p.rows) {
                y[token * p.stride + p.row0 + row] = acc[j][r];
            }
        }
    }
}
