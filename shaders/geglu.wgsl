// gelu(gate) * up, element-wise, GELU's tanh form as ggml's CPU evaluates
// it: on the gate rounded to f16, the result rounded to f16 (its lookup
// table); gates at or past ±10 give 0 or the gate itself.

struct Params {
    len: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * p.groups_x) * 256u + t;
    if (i >= p.len) {
        return;
    }
    let g = gate[i];
    var a = g;
    if (g <= -10.0) {
        a = 0.0;
    } else if (g < 10.0) {
        let x = to_f16(g);
        // 0.5·x·(1 + tanh(u)) as x / (1 + exp(-2u)): the same function
        // without 1 + tanh's cancellation, where a GPU's tanh is loose.
        let u = 0.7978846 * x * (1.0 + 0.044715 * x * x);
        a = to_f16(x / (1.0 + exp(-2.0 * u)));
    }
    y[i] = a * up[i];
}
