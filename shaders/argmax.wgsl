// The greedy token of one row of logits, as the CPU sampler picks it: the
// highest value, ties to the lowest index, NaN and -inf never (index 0 when
// nothing else is left). One workgroup: each thread scans every 256th
// value, then the pairs are reduced.

struct Params {
    n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const THREADS: u32 = 256u;
const NONE: u32 = 0xffffffffu;
var<workgroup> best_value: array<f32, THREADS>;
var<workgroup> best_index: array<u32, THREADS>;

// Not NaN and not -inf, tested on the bits: a shader compiler may assume
// floats are finite.
fn usable(v: f32) -> bool {
    let bits = bitcast<u32>(v);
    return (bits & 0x7fffffffu) <= 0x7f800000u && bits != 0xff800000u;
}

@compute @workgroup_size(THREADS)
fn main(@builtin(local_invocation_index) t: u32) {
    var value = 0.0;
    var index = NONE;
    for (var i = t; i < p.n; i += THREADS) {
        let v = x[i];
        if (usable(v) && (index == NONE || v > value)) {
            value = v;
            index = i;
        }
    }
    best_value[t] = value;
    best_index[t] = index;
    workgroupBarrier();
    for (var s = THREADS / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            let v = best_value[t + s];
            let i = best_index[t + s];
            let mine = best_index[t];
            if (i != NONE && (mine == NONE || v > best_value[t] || (v == best_value[t] && i < mine))) {
                best_value[t] = v;
                best_index[t] = i;
            }
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        out[0] = select(best_index[0], 0u, best_index[0] == NONE);
    }
}
