// Decode GEMV for hardware GPUs with subgroups: matmul_vec_coop.wgsl's rows
// and lanes (four rows a workgroup of 64 lanes, each lane's share from
// matmul_vec_lanes.wgsl), the shares added by subgroupAdd. Which lanes make
// a subgroup, and how large it is (4 to 128), is the adapter's affair: each
// subgroup's first lane leaves its subgroup's sum in its own slot of
// workgroup memory and the other lanes leave zeros, so that every subgroup,
// reading the 64 slots lane by lane, ends with the whole sum. Native only
// for now: naga takes the built-ins without WebGPU's `enable subgroups;`,
// and wgpu's WebGPU backend neither reports nor asks for the feature.

struct Params {
    k: u32,        // columns of w (whole blocks of its format) and length of x
    rows: u32,     // rows of this part of w
    row0: u32,     // where this part's rows go in y
    groups_x: u32, // workgroups along x (the grid is 2-D past 65535)
}

struct Quads {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const LANES: u32 = 64u;

var<workgroup> sums: array<vec4<f32>, LANES>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    let first = (wg.x + wg.y * p.groups_x) * 4u;
    let sum = lane_sums(first, t);
    let part = subgroupAdd(sum);
    sums[t] = select(vec4<f32>(0.0), part, lane == 0u);
    workgroupBarrier();
    var total = vec4<f32>(0.0);
    for (var s = lane; s < LANES; s += size) {
        total += sums[s];
    }
    total = subgroupAdd(total);
    if (t < 4u && first + t < p.rows) {
        y[p.row0 + first + t] = total[t];
    }
}
