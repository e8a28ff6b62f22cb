// x *= s, element-wise (Gemma's embedding scale).

struct Params {
    len: u32,
    groups_x: u32,
    s: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = (wg.x + wg.y * p.groups_x) * 256u + t;
    if (i < p.len) {
        x[i] *= p.s;
    }
}
