// Decode attention, step 3 of 3: the output, each element the sum of its
// chunks' shares, in chunk order. One thread an output element.

struct Params {
    n_head: u32,
    head_dim: u32,
    n_chunks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.y * groups.x * 64u + id.x;
    if (i >= p.n_head * p.head_dim) {
        return;
    }
    let head = i / p.head_dim;
    let d = i % p.head_dim;
    var acc = 0.0;
    for (var c = 0u; c < p.n_chunks; c++) {
        acc += partial[(head * p.n_chunks + c) * p.head_dim + d];
    }
    out[i] = acc;
}
