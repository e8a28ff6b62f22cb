//! Weight matrices repacked at load into groups of four interleaved rows, in
//! place and at the same size, so that one 16-byte load holds four
//! consecutive elements of each of four rows. A SIMD dot product of that
//! vector with four activations broadcast to every lane sums each row in its
//! own lane: no horizontal reduction a block, no shuffles, and a block of
//! four rows read once for several tokens (see `simd128`'s packed kernels).
//! llama.cpp's CPU repacking (`block_q4_Kx8`) is the model; these layouts
//! are our own, chosen for wasm's 128-bit registers.
//!
//! Rows `4g..4g + 4` form group `g`; a matrix's last `rows % 4` rows stay in
//! the file's layout. In a group, block `i` of the four rows becomes one
//! packed block of four times the size at `i` times that size:
//!
//! - Q4_0 (72): `d` (f16) at 2r, then the 16 bytes of nibbles in 4-byte
//!   units: unit `k` of row `r` at `8 + 16k + 4r`.
//! - Q5_0 (88): `d` at 2r, the four rows' `qh` transposed in 16 bytes at 8
//!   (see [`transpose_q5_qh`]), the nibbles' units at `24 + 16k + 4r`.
//! - Q4_K (576): `d` (f16) at 2r, `dmin` at `8 + 2r`, the four rows' 6-bit scales
//!   and mins re-encoded in 48 bytes at 16 (see [`encode_k4_scales`]), then
//!   the 128 bytes of nibbles in 4-byte units: unit `k` of row `r` at
//!   `64 + 16k + 4r`.
//! - Q6_K (840): `d` at 2r, the sixteen scales as `8 + 4j + r` (the four
//!   rows' scale `j` in one 32-bit word), then `ql` in 4-byte units at
//!   `72 + 16k + 4r` and `qh` at `584 + 16k + 4r`.

use super::scalar::Q8_0_BYTES;
use super::GgmlType;

/// A run of a block's bytes: `count` units of `len` bytes from `src`, unit
/// `k` of row `r` going to `dst + 4·len·k + len·r` in the packed block.
struct Run {
    src: usize,
    len: usize,
    dst: usize,
    count: usize,
}

const fn run(src: usize, len: usize, dst: usize, count: usize) -> Run {
    Run { src, len, dst, count }
}

const Q4_0: &[Run] = &[run(0, 2, 0, 1), run(2, 4, 8, 4)];
const Q5_0: &[Run] = &[run(0, 2, 0, 1), run(2, 4, 8, 1), run(6, 4, 24, 4)];
const Q4_K: &[Run] = &[run(0, 2, 0, 1), run(2, 2, 8, 1), run(4, 12, 16, 1), run(16, 4, 64, 32)];
const Q6_K: &[Run] = &[run(208, 2, 0, 1), run(192, 1, 8, 16), run(0, 4, 72, 32), run(128, 4, 584, 16)];

fn runs(ty: GgmlType) -> Option<&'static [Run]> {
    match ty {
        GgmlType::Q4_0 => Some(Q4_0),
        GgmlType::Q5_0 => Some(Q5_0),
        GgmlType::Q4K => Some(Q4_K),
        GgmlType::Q6K => Some(Q6_K),
        _ => None,
    }
}

/// Whether matrices of `ty` are kept packed (the formats with a packed kernel).
pub fn is_packed(ty: GgmlType) -> bool {
    runs(ty).is_some()
}

/// Whether `ty`'s packed kernels take each activation row (Q8_0 blocks)
/// followed by its blocks' sums of quants ([`with_block_sums`]). Q4_0 and
/// Q5_0 codes stand for `code - 2^K`; the kernels dot them unsigned (as the
/// relaxed dot product needs) and subtract `2^K·Σa` a block, a sum that one pass over a
/// token's activations gives every group of rows instead of each group
/// computing its own (which cost what the layout saved).
pub fn takes_block_sums(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q5_0)
}

/// The bytes of an activation row of `a_row` bytes as `ty`'s packed kernels
/// take it: with its blocks' sums where [`takes_block_sums`].
pub fn kernel_row_bytes(ty: GgmlType, a_row: usize) -> usize {
    if takes_block_sums(ty) {
        a_row + 4 * (a_row / Q8_0_BYTES)
    } else {
        a_row
    }
}

/// Activation rows of `a_row` bytes of Q8_0 blocks into `dst`, each followed
/// by its blocks' sums of quants ([`block_sums`]), for the kernels of
/// [`takes_block_sums`] types.
pub fn with_block_sums(rows: &[u8], a_row: usize, dst: &mut Vec<u8>) {
    dst.clear();
    for row in rows.chunks_exact(a_row) {
        dst.extend_from_slice(row);
        let at = dst.len();
        dst.resize(at + 4 * (a_row / Q8_0_BYTES), 0);
        block_sums(row, &mut dst[at..]);
    }
}

/// The sums of quants of a row of Q8_0 blocks, a little-endian i32 a block.
pub fn block_sums(row: &[u8], dst: &mut [u8]) {
    for (block, sum) in row.chunks_exact(Q8_0_BYTES).zip(dst.chunks_exact_mut(4)) {
        let s: i32 = block[2..].iter().map(|&q| q as i8 as i32).sum();
        sum.copy_from_slice(&s.to_le_bytes());
    }
}

/// Calls `f(row, row offset, packed offset, len)` for every run of every
/// block of a group of four rows of `row_bytes` bytes.
fn each_run(ty: GgmlType, row_bytes: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let runs = runs(ty).expect("a packed type");
    let block = ty.block_layout().1;
    for i in 0..row_bytes / block {
        for r in 0..4 {
            for run in runs {
                for k in 0..run.count {
                    let (src, dst) =
                        (i * block + run.src + k * run.len, 4 * i * block + run.dst + (4 * k + r) * run.len);
                    f(r, src, dst, run.len);
                }
            }
        }
    }
}

/// Unit `k` of `L` bytes of `src` to `dst[4·L·k..]` (the other rows' units
/// lie between).
#[inline(always)]
fn move_units<const L: usize>(src: &[u8], dst: &mut [u8]) {
    for (k, unit) in src.chunks_exact(L).enumerate() {
        dst[4 * L * k..4 * L * k + L].copy_from_slice(unit);
    }
}

/// Packs four whole rows of `ty` (`group`, row after row) in place;
/// `scratch` is working space, kept by the caller from group to group.
pub fn pack_group(ty: GgmlType, group: &mut [u8], scratch: &mut Vec<u8>) {
    let row_bytes = group.len() / 4;
    scratch.clear();
    scratch.extend_from_slice(group);
    let (runs, block) = (runs(ty).expect("a packed type"), ty.block_layout().1);
    // Block by block, each run's units moved at a length the loop knows:
    // at 1.4 GB/s a closure per unit cost a 637 MB model half a second.
    for (i, packed) in group.chunks_exact_mut(4 * block).enumerate() {
        for r in 0..4 {
            let from = &scratch[r * row_bytes + i * block..][..block];
            for run in runs {
                let (src, dst) = (&from[run.src..][..run.count * run.len], &mut packed[run.dst + r * run.len..]);
                match run.len {
                    4 => move_units::<4>(src, dst),
                    2 => move_units::<2>(src, dst),
                    1 => move_units::<1>(src, dst),
                    _ => dst[..run.len].copy_from_slice(src),
                }
            }
        }
    }
    if ty == GgmlType::Q4K {
        for packed in group.chunks_exact_mut(4 * block) {
            encode_k4_scales((&mut packed[16..64]).try_into().unwrap());
        }
    }
    if ty == GgmlType::Q5_0 {
        for packed in group.chunks_exact_mut(4 * block) {
            transpose_q5_qh((&mut packed[8..24]).try_into().unwrap());
        }
    }
}

/// The four rows of a packed group, in the file's layout, row after row
/// into `out` (as long as `group`).
pub fn unpack_group(ty: GgmlType, group: &[u8], out: &mut [u8]) {
    let mut decoded;
    let mut group = group;
    if ty == GgmlType::Q4K {
        decoded = group.to_vec();
        for block in decoded.chunks_exact_mut(4 * ty.block_layout().1) {
            decode_k4_scales((&mut block[16..64]).try_into().unwrap());
        }
        group = &decoded;
    } else if ty == GgmlType::Q5_0 {
        decoded = group.to_vec();
        for block in decoded.chunks_exact_mut(4 * ty.block_layout().1) {
            untranspose_q5_qh((&mut block[8..24]).try_into().unwrap());
        }
        group = &decoded;
    }
    let row_bytes = out.len() / 4;
    each_run(ty, row_bytes, |row, src, dst, len| {
        out[row * row_bytes + src..][..len].copy_from_slice(&group[dst..dst + len]);
    });
}

/// Re-encodes four rows' Q4_K scales and mins (12 bytes a row, as ggml
/// packs them) so that a few SIMD operations unpack them for all four rows:
/// value `4j + r` is row `r`'s scale `j`, `32 + 4j + r` its min `j`; byte
/// `b` of the first 16 holds the low four bits of values `b` and `16 + b`,
/// of the next 16 those of `32 + b` and `48 + b`, and of the last 16 the
/// high two bits of `b`, `16 + b`, `32 + b`, `48 + b`. The same 384 bits.
fn encode_k4_scales(s: &mut [u8; 48]) {
    let mut v = [0u8; 64];
    for r in 0..4 {
        let (sc, m) = super::scalar::scales_mins_k4(s[12 * r..12 * r + 12].try_into().unwrap());
        for j in 0..8 {
            (v[4 * j + r], v[32 + 4 * j + r]) = (sc[j], m[j]);
        }
    }
    for b in 0..16 {
        s[b] = (v[b] & 15) | (v[16 + b] & 15) << 4;
        s[16 + b] = (v[32 + b] & 15) | (v[48 + b] & 15) << 4;
        s[32 + b] = (v[b] >> 4) | (v[16 + b] >> 4) << 2 | (v[32 + b] >> 4) << 4 | (v[48 + b] >> 4) << 6;
    }
}

/// Transposes four rows' Q5_0 fifth bits (row `r`'s `qh` at `4r`, bit `e`
/// for element `e`) so that bit `u` of byte `4r + e` is row `r`'s bit for
/// element `4u + e`: the unit of elements `4u..4u + 4` the kernels dot. Its
/// bits then come from one vector by a shift and a mask, where gathering
/// them from `qh` took a swizzle, a compare and two masks a unit.
fn transpose_q5_qh(q: &mut [u8; 16]) {
    let qh: [u32; 4] = core::array::from_fn(|r| u32::from_le_bytes(q[4 * r..4 * r + 4].try_into().unwrap()));
    for (b, byte) in q.iter_mut().enumerate() {
        let (r, e) = (b / 4, b % 4);
        *byte = (0..8).map(|u| ((qh[r] >> (4 * u + e) & 1) as u8) << u).sum();
    }
}

/// The inverse of [`transpose_q5_qh`].
fn untranspose_q5_qh(q: &mut [u8; 16]) {
    let mut qh = [0u32; 4];
    for (b, &byte) in q.iter().enumerate() {
        let (r, e) = (b / 4, b % 4);
        for u in 0..8 {
            qh[r] |= ((byte >> u & 1) as u32) << (4 * u + e);
        }
    }
    for (r, h) in qh.iter().enumerate() {
        q[4 * r..4 * r + 4].copy_from_slice(&h.to_le_bytes());
    }
}

/// The inverse of [`encode_k4_scales`]: ggml's 12 bytes for each row.
fn decode_k4_scales(s: &mut [u8; 48]) {
    let mut v = [0u8; 64];
    for b in 0..16 {
        let h = s[32 + b];
        v[b] = (s[b] & 15) | (h & 3) << 4;
        v[16 + b] = (s[b] >> 4) | (h >> 2 & 3) << 4;
        v[32 + b] = (s[16 + b] & 15) | (h >> 4 & 3) << 4;
        v[48 + b] = (s[16 + b] >> 4) | (h >> 6) << 4;
    }
    for r in 0..4 {
        let (sc, m): ([u8; 8], [u8; 8]) =
            (core::array::from_fn(|j| v[4 * j + r]), core::array::from_fn(|j| v[32 + 4 * j + r]));
        let q = &mut s[12 * r..12 * r + 12];
        for j in 0..4 {
            q[j] = sc[j] | (sc[j + 4] >> 4) << 6;
            q[j + 4] = m[j] | (m[j + 4] >> 4) << 6;
            q[j + 8] = (sc[j + 4] & 15) | (m[j + 4] & 15) << 4;
        }
    }
}

/// Row `row` of a matrix of `ty` with rows of `row_bytes` bytes, packed
/// where [`is_packed`], in the file's layout: borrowed where it is kept so,
/// else unpacked into `scratch`.
pub fn file_row<'a>(ty: GgmlType, data: &'a [u8], row_bytes: usize, row: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let groups = data.len() / row_bytes / 4;
    if !is_packed(ty) || row >= 4 * groups {
        return &data[row * row_bytes..][..row_bytes];
    }
    scratch.resize(4 * row_bytes, 0);
    let g = row / 4;
    unpack_group(ty, &data[4 * g * row_bytes..][..4 * row_bytes], scratch);
    &scratch[row % 4 * row_bytes..][..row_bytes]
}
