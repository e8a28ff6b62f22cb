// Decode attention, step 1 of 3, for hardware GPUs: attention_vec_scores.wgsl's
// scores and chunk statistics, one workgroup a (head, chunk) and one lane a
// position, where the software kernel has one thread walk the chunk's 32
// positions (a 576-wide model at 512 positions keeps 144 threads busy there,
// 4 608 here). Each lane writes its position's score (the query rounded to
// f16 as llama.cpp does, times the key, times `scale`); the chunk's maximum
// and sum of exp(score - maximum) are then merged pairwise in workgroup
// memory, halved five times. The products are `H`'s (precision_f32.wgsl, or
// f16 with shader-f16: precision_f16.wgsl), their sum f32.

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
@group(0) @binding(2) var<storage, read> k_cache: array<CachePair>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<vec2<f32>>;

const CHUNK: u32 = 32u;

// (maximum, sum of exp(score - maximum)) of each lane's share of the chunk.
var<workgroup> merged: array<vec2<f32>, CHUNK>;

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(32)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = wg.y * groups.x + wg.x;
    let live = i < p.n_head * p.n_chunks;
    let head = min(i, p.n_head * p.n_chunks - 1u) / p.n_chunks;
    let c = i % p.n_chunks;
    let j = p.first + c * CHUNK + lane;
    var mine = vec2<f32>(-3.0e38, 0.0);
    if (live && j < p.seen) {
        let base = ((j % p.ring) * p.kv_dim + (head / p.group) * p.head_dim) / 2u;
        let q_base = head * p.head_dim;
        var s = 0.0;
        for (var d = 0u; d < p.head_dim / 2u; d++) {
            let qd = half2(vec2<f32>(q[q_base + 2u * d], q[q_base + 2u * d + 1u]));
            s += f32(dot(qd, pair(k_cache[base + d])));
        }
        s *= p.scale;
        scores[head * p.ring + j - p.first] = s;
        mine = vec2<f32>(s, 1.0);
    }
    merged[lane] = mine;
    workgroupBarrier();
    for (var half = CHUNK / 2u; half > 0u; half /= 2u) {
        if (lane < half) {
            merged[lane] = merge(merged[lane], merged[lane + half]);
        }
        workgroupBarrier();
    }
    if (live && lane == 0u) {
        stats[i] = merged[0];
    }
}
