// Decode attention, step 2 of 3: each chunk's share of the output. One
// thread a (head, chunk, dimension), neighbours on neighbouring dimensions
// so that they read a cache row together. Each first merges the head's
// chunk statistics into the softmax's maximum and sum, then weighs its
// chunk's values: as in llama.cpp, each normalized weight is rounded to f16
// before it meets the f16 values, which is why the softmax is finished here
// rather than rescaled afterwards.

struct Params {
    n_head: u32,
    group: u32,
    head_dim: u32,
    kv_dim: u32,
    seen: u32,
    n_chunks: u32,
    ring: u32, // rows of the cache (position j in j % ring), and scores of a head
    first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<u32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

const CHUNK: u32 = 32u;

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.y * groups.x * 64u + id.x;
    if (i >= p.n_head * p.n_chunks * p.head_dim) {
        return;
    }
    let d = i % p.head_dim;
    let c = (i / p.head_dim) % p.n_chunks;
    let head = i / (p.head_dim * p.n_chunks);
    var m = -3.0e38;
    for (var k = 0u; k < p.n_chunks; k++) {
        m = max(m, stats[head * p.n_chunks + k].x);
    }
    var l = 0.0;
    for (var k = 0u; k < p.n_chunks; k++) {
        let s = stats[head * p.n_chunks + k];
        l += s.y * exp(s.x - m);
    }
    let col = (head / p.group) * p.head_dim + d;
    var acc = 0.0;
    for (var j = p.first + c * CHUNK; j < min(p.seen, p.first + (c + 1u) * CHUNK); j++) {
        let w = to_f16(exp(scores[head * p.ring + j - p.first] - m) / l);
        let pair = unpack2x16float(v_cache[((j % p.ring) * p.kv_dim + col) / 2u]);
        acc += w * select(pair.x, pair.y, (col & 1u) == 1u);
    }
    partial[i] = acc;
}
