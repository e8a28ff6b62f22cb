// GELU of each element, its tanh form as ggml's CPU evaluates it (as
// geglu.wgsl): on the value rounded to f16, the result rounded to f16;
// values at or past ±10 give 0 or themselves.

struct Params {
    len: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * p.groups_x) * 256u + t;
    if (i >= p.len) {
        return;
    }
    let g = x[i];
    var a = g;
    if (g <= -10.0) {
        a = 0.0;
    } else if (g < 10.0) {
        let v = to_f16(g);
        // 0.5·v·(1 + tanh(u)) as v / (1 + exp(-2u)), as geglu.wgsl.
        let u = 0.7978846 * v * (1.0 + 0.044715 * v * v);
        a = to_f16(v / (1.0 + exp(-2.0 * u)));
    }
    y[i] = a;
}
