// Decode attention (one query token), step 1 of 3: the scores and each
// chunk's softmax statistics. Split-KV ("flash-decoding"): the cache is cut
// into chunks of CHUNK positions and one thread takes a (head, chunk), so a
// long context is spread over many threads instead of one workgroup a head.
// Each thread writes its positions' scores (the query rounded to f16 as
// llama.cpp does, times the key, times `scale`) and the chunk's maximum and
// sum of exp(score - maximum), an online softmax over the chunk. Chunks
// start at `first`: a sliding window's positions only. Position j's key is
// in row j % ring of the cache; its score at j - first. No barrier:
// an emulated GPU (lavapipe, SwiftShader) switches threads at every one.

struct Params {
    n_head: u32,
    group: u32,    // query heads a key/value head
    head_dim: u32, // even
    kv_dim: u32,
    seen: u32,     // the token's position + 1
    scale: f32,
    n_chunks: u32, // ceil((seen - first) / CHUNK)
    ring: u32,     // rows of the cache, and scores of a head
    first: u32,    // the first position attended to (a sliding window's start)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<u32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<vec2<f32>>;

const CHUNK: u32 = 32u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.y * groups.x * 64u + id.x;
    if (i >= p.n_head * p.n_chunks) {
        return;
    }
    let head = i / p.n_chunks;
    let c = i % p.n_chunks;
    let kv_off = (head / p.group) * p.head_dim;
    let q_base = head * p.head_dim;
    var m = -3.0e38;
    var l = 0.0;
    for (var j = p.first + c * CHUNK; j < min(p.seen, p.first + (c + 1u) * CHUNK); j++) {
        let base = ((j % p.ring) * p.kv_dim + kv_off) / 2u;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim / 2u; d++) {
            let qd = unpack2x16float(pack2x16float(vec2<f32>(q[q_base + 2u * d], q[q_base + 2u * d + 1u])));
            s += dot(qd, unpack2x16float(k_cache[base + d]));
        }
        s *= p.scale;
        scores[head * p.ring + j - p.first] = s;
        let m_new = max(m, s);
        l = l * exp(m - m_new) + exp(s - m_new);
        m = m_new;
    }
    stats[i] = vec2<f32>(m, l);
}
