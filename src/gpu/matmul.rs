//! Matrix products with quantized weights: a decode GEMV for one token, a
//! GEMM for a prompt's batch, each in its family's shape. Software: one
//! thread a row (`matmul_vec`; `matmul_mat` with eight tokens a thread).
//! Hardware: a workgroup four rows, its lanes striding over them
//! (`matmul_vec_coop`, or `matmul_vec_subgroup` where subgroups add the
//! lanes' sums); tiles of 32 rows × 32 tokens staged in workgroup memory
//! (`matmul_mat_tiled`, in f16 where the adapter has it).

use super::buffers::{Act, Weight};
use super::pipelines::precise;
use super::{grid, layout, Family, Gpu};

/// The decode GEMV of a family, and the rows a workgroup of it computes.
fn vec_kernel(family: Family) -> (&'static str, usize) {
    match family {
        Family::Software => ("matmul_vec", 64),
        Family::Hardware { subgroups: false, .. } => ("matmul_vec_coop", 4),
        Family::Hardware { subgroups: true, .. } => ("matmul_vec_subgroup", 4),
    }
}

/// The prefill GEMM of a family, and the rows and tokens a workgroup of it
/// computes.
fn mat_kernel(family: Family) -> (&'static str, usize, usize) {
    match family {
        Family::Software => ("matmul_mat", 64, 8),
        Family::Hardware { .. } => (precise(family, "matmul_mat_tiled"), 32, 32),
    }
}

/// The kernels that read a matrix of a format on this family, made when the
/// matrix is loaded rather than at its first product.
pub(super) fn kernels(family: Family) -> [&'static str; 2] {
    [vec_kernel(family).0, mat_kernel(family).0]
}

pub(super) fn matmul(gpu: &mut Gpu, x: &Act, w: &Weight) -> Act {
    let Weight::Matrix { ty, rows, cols, parts } = w else { unreachable!("matmul of a vector") };
    assert_eq!(x.cols, *cols, "matmul shapes");
    let format = layout::Format::of(*ty).expect("checked at upload").name;
    let out = gpu.act(x.rows, *rows);
    for part in parts {
        if x.rows == 1 {
            let (kernel, rows_a_group) = vec_kernel(gpu.family);
            let [gx, gy, _] = grid(part.rows.div_ceil(rows_a_group));
            let params = [*cols as u32, part.rows as u32, part.row0 as u32, gx];
            gpu.dispatch((kernel, format), &params, &[&part.buf, &x.buf, &out.buf], [gx, gy, 1]);
        } else {
            let (kernel, rows_a_group, tokens_a_group) = mat_kernel(gpu.family);
            let [gx, gy, _] = grid(part.rows.div_ceil(rows_a_group));
            let params = [*cols as u32, part.rows as u32, part.row0 as u32, gx, x.rows as u32, *rows as u32];
            let tiles = x.rows.div_ceil(tokens_a_group) as u32;
            gpu.dispatch((kernel, format), &params, &[&part.buf, &x.buf, &out.buf], [gx, gy, tiles]);
        }
    }
    out
}
