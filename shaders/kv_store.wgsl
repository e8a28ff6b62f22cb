// Writes a batch's keys and values into one layer's cache at `pos`, rounded
// to f16 (two a word) as llama.cpp keeps them: position j in row j % ring
// (a sliding-window layer's ring; the context for the others). One thread a
// pair of values.

struct Params {
    kv_dim: u32, // values a row (even)
    pos: u32,
    rows: u32,
    ring: u32,   // rows of the cache
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let pairs = p.kv_dim / 2u;
    if (id.x >= pairs || id.y >= p.rows) {
        return;
    }
    let src = id.y * pairs + id.x;
    let dst = ((p.pos + id.y) % p.ring) * pairs + id.x;
    k_cache[dst] = pack2x16float(k[src]);
    v_cache[dst] = pack2x16float(v[src]);
}
