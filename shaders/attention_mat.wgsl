// Prefill attention (a batch of two or more tokens) over the f16 cache: one
// workgroup of 64 threads a head and a tile of query rows, so that each cache
// row is read from global memory once a tile of queries, not once a query.
// The numerics are the CPU's and the decode kernels' (attention_vec*.wgsl):
// queries and normalized weights rounded to f16, a first pass for each row's softmax maximum and sum (an online
// softmax a thread, then merged), a second that scores again and weights the
// values.
//
// The queries and the cache are `H` and `CachePair` (precision_f32.wgsl, or
// f16 with shader-f16: precision_f16.wgsl, the scores' products in f16);
// sums are f32.
//
// Workgroup memory, sized for heads of up to 256 (14 KiB in all):
// - qs: the tile's queries, f16-rounded, as f32 pairs. Its 512 pairs hold
//   `p.rows` rows (the host's choice: a power of two, at most 1024 /
//   head_dim and 16), 16 for a head of 64, 4 for 256, so that the output
//   tile is at most 512 pairs for every head size: eight a thread.
// - kv: cache rows as stored (f16 pairs), 2048 words: in pass 1 the keys of
//   2048 / pairs positions; in pass 2 keys, then the same positions' values
//   (one array for both keeps 16 positions of a head of 256 under 16 KiB).
// - w: pass 2's weights (rows × positions, 512 at most, which may shorten
//   pass 2's tiles: 32 positions for a head of 64, 16 for 256); before
//   them, the threads' partial maxima and sums.
//
// Each row has 64 / rows threads (lanes) that score its positions in turn,
// so a thread's softmax state is two scalars. Pass 2's eight output pairs a
// thread live in four vec4: no private arrays, which a GPU emulated on the
// CPU keeps in memory. Such a GPU switches every invocation at a barrier:
// two a tile in pass 1, four in pass 2. Tiles stop at the last position the
// rows see; rows past the batch repeat its last row and store nothing.
// With a sliding window, tiles start at the first row's first position and
// each row skips the positions before its own window. Position j is in row
// j % ring of the cache: the host keeps the positions a batch reads within
// one ring.

struct Params {
    n_head: u32,
    group: u32,    // query heads a key/value head
    head_dim: u32, // even, at most 256
    kv_dim: u32,
    pos: u32,      // position of the batch's first token
    scale: f32,
    n: u32,        // rows of the batch
    rows: u32,     // rows a workgroup
    window: u32,   // a row at position i sees i - window < j <= i; 0: all j <= i
    ring: u32,     // rows of the cache
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<CachePair>;
@group(0) @binding(3) var<storage, read> v_cache: array<CachePair>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const THREADS: u32 = 64u;
const Q_PAIRS: u32 = 512u;
const KV_WORDS: u32 = 2048u;
const WEIGHTS: u32 = 512u;
var<workgroup> qs: array<vec2<H>, Q_PAIRS>;
var<workgroup> kv: array<CachePair, KV_WORDS>;
var<workgroup> w: array<f32, WEIGHTS>;

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

// The first position a row that sees positions `..seen` attends to.
fn window_start(seen: u32) -> u32 {
    return select(0u, seen - p.window, p.window > 0u && seen > p.window);
}

// Copies the head's pairs of `count` cache rows from position `first` into kv.
fn stage(values: bool, first: u32, count: u32, kv_off: u32, t: u32) {
    let pairs = p.head_dim / 2u;
    for (var x = t; x < count * pairs; x += THREADS) {
        let j = x / pairs;
        let at = ((first + j) % p.ring) * (p.kv_dim / 2u) + kv_off + x - j * pairs;
        if (values) {
            kv[x] = v_cache[at];
        } else {
            kv[x] = k_cache[at];
        }
    }
}

// Tile row r's score against the staged key j.
fn score(r: u32, j: u32) -> f32 {
    let pairs = p.head_dim / 2u;
    var s = 0.0;
    for (var i = 0u; i < pairs; i++) {
        s += f32(dot(qs[r * pairs + i], pair(kv[j * pairs + i])));
    }
    return s * p.scale;
}

// Weight w[wi] times the staged value pair at ki.
fn term(wi: u32, ki: u32) -> vec2<f32> {
    return w[wi] * vec2<f32>(pair(kv[ki]));
}

// Output pair o of the tile (row o / pairs), unless past the tile or batch.
fn store(o: u32, v: vec2<f32>, first: u32, head: u32) {
    let pairs = p.head_dim / 2u;
    let r = o / pairs;
    if (r < p.rows && first + r < p.n) {
        let at = ((first + r) * p.n_head + head) * p.head_dim + 2u * (o - r * pairs);
        out[at] = v.x;
        out[at + 1u] = v.y;
    }
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let head = wg.x;
    let first = wg.y * p.rows;
    let last = min(first + p.rows, p.n) - 1u;
    let end = p.pos + last + 1u; // positions the tile's rows see
    let pairs = p.head_dim / 2u;
    let kv_off = (head / p.group) * pairs;
    let lanes = THREADS / p.rows;
    let r = t / lanes;
    let lane = t % lanes;
    let seen = p.pos + min(first + r, last) + 1u;
    let lo = window_start(seen);
    let begin = window_start(p.pos + first + 1u);
    for (var x = t; x < p.rows * pairs; x += THREADS) {
        let at = (min(first + x / pairs, last) * p.n_head + head) * p.head_dim + 2u * (x % pairs);
        qs[x] = half2(vec2<f32>(q[at], q[at + 1u]));
    }

    // Pass 1: the maximum score and the sum of exp(score - maximum).
    let span = KV_WORDS / pairs;
    var m = -3.0e38;
    var l = 0.0;
    for (var c = begin; c < end; c += span) {
        workgroupBarrier();
        stage(false, c, min(span, end - c), kv_off, t);
        workgroupBarrier();
        for (var j = max(c, lo) + lane; j < min(c + span, seen); j += lanes) {
            let s = score(r, j - c);
            let m_new = max(m, s);
            l = l * exp(m - m_new) + exp(s - m_new);
            m = m_new;
        }
    }
    w[t] = m;
    w[THREADS + t] = l;
    workgroupBarrier();
    var max_score = -3.0e38;
    var sum = 0.0;
    for (var k = r * lanes; k < (r + 1u) * lanes; k++) {
        let mm = max(max_score, w[k]);
        sum = sum * exp(max_score - mm) + w[THREADS + k] * exp(w[k] - mm);
        max_score = mm;
    }

    // Pass 2: the values, weighted. Output pair o = t + 64·i (i < 8) is
    // row o / pairs (rows past the tile repeat its last), pair o % pairs.
    let span2 = min(span, WEIGHTS / p.rows);
    let o_lo = vec4<u32>(t, t + 64u, t + 128u, t + 192u);
    let o_hi = o_lo + 256u;
    let w_lo = min(o_lo / pairs, vec4<u32>(p.rows - 1u)) * span2;
    let w_hi = min(o_hi / pairs, vec4<u32>(p.rows - 1u)) * span2;
    let k_lo = o_lo % pairs;
    let k_hi = o_hi % pairs;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var c = begin; c < end; c += span2) {
        let n = min(span2, end - c);
        workgroupBarrier();
        stage(false, c, n, kv_off, t);
        workgroupBarrier();
        for (var j = lane; j < n; j += lanes) {
            var weight = 0.0;
            if (c + j < seen && c + j >= lo) {
                weight = to_f16(exp(score(r, j) - max_score) / sum);
            }
            w[r * span2 + j] = weight;
        }
        workgroupBarrier();
        stage(true, c, n, kv_off, t);
        workgroupBarrier();
        for (var j = 0u; j < n; j++) {
            let kj = j * pairs;
            a0 += vec4<f32>(term(w_lo.x + j, kj + k_lo.x), term(w_lo.y + j, kj + k_lo.y));
            a1 += vec4<f32>(term(w_lo.z + j, kj + k_lo.z), term(w_lo.w + j, kj + k_lo.w));
            a2 += vec4<f32>(term(w_hi.x + j, kj + k_hi.x), term(w_hi.y + j, kj + k_hi.y));
            a3 += vec4<f32>(term(w_hi.z + j, kj + k_hi.z), term(w_hi.w + j, kj + k_hi.w));
        }
    }
    store(o_lo.x, a0.xy, first, head);
    store(o_lo.y, a0.zw, first, head);
    store(o_lo.z, a1.xy, first, head);
    store(o_lo.w, a1.zw, first, head);
    store(o_hi.x, a2.xy, first, head);
    store(o_hi.y, a2.zw, first, head);
    store(o_hi.z, a3.xy, first, head);
    store(o_hi.w, a3.zw, first, head);
}
