// Rotary position embedding, in place: one thread a (row, head, pair). The
// angles come from a table the host computed once per position, as the CPU
// backend computes them, so both backends rotate by the same numbers (a
// GPU's sin and cos are only accurate near zero).

struct Params {
    n_head: u32,
    head_dim: u32,
    pairs: u32,  // rotated pairs a head (rotary dimensions / 2)
    neox: u32,   // 1: pairs (i, i + pairs); 0: (2i, 2i + 1)
    pos: u32,    // position of row 0
    rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> angles: array<vec2<f32>>; // (cos, sin)
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x % p.pairs;
    let head = id.x / p.pairs;
    let row = id.y;
    if (head >= p.n_head || row >= p.rows) {
        return;
    }
    let cs = angles[(p.pos + row) * p.pairs + i];
    let base = (row * p.n_head + head) * p.head_dim;
    var a = base + 2u * i;
    var b = a + 1u;
    if (p.neox == 1u) {
        a = base + i;
        b = a + p.pairs;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * cs.x - x1 * cs.y;
    x[b] = x0 * cs.y + x1 * cs.x;
}
