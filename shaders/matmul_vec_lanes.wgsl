// The share of lane t (of 64) in rows first..first + 4 of w times x, for
// matmul_vec_coop.wgsl and matmul_vec_subgroup.wgsl (appended to them, with
// the format's `quads` after it): the quarter blocks t, t + 64, ... of each
// row, so that neighbouring lanes read neighbouring words, each read of x
// shared by the four rows. Rows past the end read the last row; the
// kernels do not write them.
fn lane_sums(first: u32, t: u32) -> vec4<f32> {
    let last = p.rows - 1u;
    let rw = row_words(p.k);
    let bases = vec4<u32>(min(first, last), min(first + 1u, last), min(first + 2u, last), min(first + 3u, last)) * rw;
    var sum = vec4<f32>(0.0);
    for (var u = t; u < p.k / 8u; u += 64u) {
        let b = u / 4u;
        let i = u % 4u;
        let xl = x[b * 8u + i];
        let xh = x[b * 8u + 4u + i];
        let q0 = quads(bases.x, b, i);
        let q1 = quads(bases.y, b, i);
        let q2 = quads(bases.z, b, i);
        let q3 = quads(bases.w, b, i);
        sum += vec4<f32>(
            dot(q0.lo, xl) + dot(q0.hi, xh),
            dot(q1.lo, xl) + dot(q1.hi, xh),
            dot(q2.lo, xl) + dot(q2.hi, xh),
            dot(q3.lo, xl) + dot(q3.hi, xh),
        );
    }
    return sum;
}
