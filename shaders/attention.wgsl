// Causal attention over the f16 cache, one workgroup of 64 threads a (head,
// token); grouped-query heads read their shared key/value head. As on the
// CPU (and in llama.cpp), the query is rounded to f16 before meeting the
// keys and each normalized weight is rounded to f16 before meeting the
// values. Two passes over the positions: the first finds the softmax's
// maximum and sum (an online softmax a thread, then merged), the second
// computes the weights again in chunks of 64 and accumulates the values,
// each thread owning up to four of the head's dimensions.

struct Params {
    n_head: u32,
    group: u32,    // query heads a key/value head
    head_dim: u32, // even, at most 256
    kv_dim: u32,
    pos: u32,      // position of the batch's first token
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<u32>;
@group(0) @binding(3) var<storage, read> v_cache: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const THREADS: u32 = 64u;
var<workgroup> qs: array<vec2<f32>, 128>;
var<workgroup> red_m: array<f32, THREADS>;
var<workgroup> red_l: array<f32, THREADS>;
var<workgroup> weights: array<f32, THREADS>;

fn score(j: u32, kv_off: u32) -> f32 {
    let base = (j * p.kv_dim + kv_off) / 2u;
    var s = 0.0;
    for (var i = 0u; i < p.head_dim / 2u; i++) {
        s += dot(qs[i], unpack2x16float(k_cache[base + i]));
    }
    return s * p.scale;
}

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let head = wg.x;
    let row = wg.y;
    let seen = p.pos + row + 1u;
    let kv_off = (head / p.group) * p.head_dim;
    let q_base = (row * p.n_head + head) * p.head_dim;
    for (var i = t; i < p.head_dim / 2u; i += THREADS) {
        qs[i] = unpack2x16float(pack2x16float(vec2<f32>(q[q_base + 2u * i], q[q_base + 2u * i + 1u])));
    }
    workgroupBarrier();

    // Pass 1: the maximum score and the sum of exp(score - maximum).
    var m = -3.0e38;
    var l = 0.0;
    for (var j = t; j < seen; j += THREADS) {
        let s = score(j, kv_off);
        let m_new = max(m, s);
        l = l * exp(m - m_new) + exp(s - m_new);
        m = m_new;
    }
    red_m[t] = m;
    red_l[t] = l;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            let m0 = red_m[t];
            let m1 = red_m[t + s];
            let mm = max(m0, m1);
            red_l[t] = red_l[t] * exp(m0 - mm) + red_l[t + s] * exp(m1 - mm);
            red_m[t] = mm;
        }
        workgroupBarrier();
    }
    let max_score = red_m[0];
    let sum = red_l[0];

    // Pass 2: the values, weighted.
    var acc = vec4<f32>(0.0);
    for (var c = 0u; c < seen; c += THREADS) {
        let j = c + t;
        if (j < seen) {
            weights[t] = to_f16(exp(score(j, kv_off) - max_score) / sum);
        }
        workgroupBarrier();
        for (var jj = 0u; jj < min(THREADS, seen - c); jj++) {
            let base = (c + jj) * p.kv_dim + kv_off;
            let pj = weights[jj];
            for (var r = 0u; r < 4u; r++) {
                let d = t + r * THREADS;
                if (d < p.head_dim) {
                    let pair = unpack2x16float(v_cache[(base + d) / 2u]);
                    acc[r] += pj * select(pair.x, pair.y, (d & 1u) == 1u);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let d = t + r * THREADS;
        if (d < p.head_dim) {
            out[q_base + d] = acc[r];
        }
    }
}
