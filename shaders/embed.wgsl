// Embedding lookup: the rows of a quantized table named by `tokens`,
// dequantized by the format's `row_words` and `quads` (appended to this
// file, as in matmul_vec.wgsl). One thread a 32-value block (a K-quant
// super-block's sub-block); a table split into parts runs once
// a part, each writing the tokens whose rows it holds.

struct Params {
    k: u32,     // columns of the table (whole blocks of its format)
    rows: u32,  // rows of this part
    row0: u32,  // the first row this part holds
    n: u32,     // tokens
}

struct Quads {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let blocks = p.k / 32u;
    let b = id.x;
    let tok = id.y;
    if (b >= blocks || tok >= p.n) {
        return;
    }
    let row = tokens[tok];
    if (row < p.row0 || row >= p.row0 + p.rows) {
        return;
    }
    let row_base = (row - p.row0) * row_words(p.k);
    let out = tok * (p.k / 4u) + b * 8u;
    for (var i = 0u; i < 4u; i++) {
        let q = quads(row_base, b, i);
        y[out + i] = q.lo;
        y[out + 4u + i] = q.hi;
    }
}
