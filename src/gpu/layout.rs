//! How each weight format is laid out in GPU buffers: ggml's blocks, with
//! the bytes of a block whose size is not a multiple of four padded to a
//! word, so that every block starts on a word and a shader reads whole
//! `u32`s. Q4_0, Q5_0 and Q8_0 widen their leading f16 scale to a word;
//! Q6_K's 210-byte super-block gets two zero bytes at its end (its f16
//! scale is last); the others keep the file's bytes as they are. A row is
//! its blocks one after the other, and each format's WGSL file finds block
//! `b` of a row from where the row starts (`quads(row_base, b, i)`).

use crate::quant::GgmlType;

#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// The name in kernel names and in `shaders/formats/<name>.wgsl`.
    pub name: &'static str,
    /// Weights a block holds: 32, or 256 for a K-quant super-block.
    len: usize,
    /// Bytes of a block in the file.
    block: usize,
    /// Bytes of the block after which two zero bytes are inserted (0: the
    /// block is copied as it is).
    pad_after: usize,
}

impl Format {
    /// The GPU format of a ggml type; `None` where no shader reads it.
    pub fn of(ty: GgmlType) -> Option<Format> {
        use GgmlType::*;
        let (name, len, block, pad_after) = match ty {
            F32 => ("f32", 32, 128, 0),
            F16 => ("f16", 32, 64, 0),
            Bf16 => ("bf16", 32, 64, 0),
            Q4_0 => ("q4_0", 32, 18, 2),
            Q4_1 => ("q4_1", 32, 20, 0),
            Q5_0 => ("q5_0", 32, 22, 2),
            Q5_1 => ("q5_1", 32, 24, 0),
            Q8_0 => ("q8_0", 32, 34, 2),
            Q4K => ("q4_k", 256, 144, 0),
            Q5K => ("q5_k", 256, 176, 0),
            Q6K => ("q6_k", 256, 210, 210),
            _ => return None,
        };
        Some(Format { name, len, block, pad_after })
    }

    /// Weights a block holds; a row must be whole blocks.
    pub fn block_len(&self) -> usize {
        self.len
    }

    fn block_words(&self) -> usize {
        (self.block + if self.pad_after > 0 { 2 } else { 0 }) / 4
    }

    /// Words a row of `cols` weights takes (`row_words` in the format's WGSL).
    pub fn words(&self, cols: usize) -> usize {
        cols / self.len * self.block_words()
    }

    /// Appends the GPU layout of whole blocks `src` to `dst`.
    pub fn pack(&self, src: &[u8], dst: &mut Vec<u8>) {
        if self.pad_after == 0 {
            dst.extend_from_slice(src);
            return;
        }
        for block in src.chunks_exact(self.block) {
            dst.extend_from_slice(&block[..self.pad_after]);
            dst.extend_from_slice(&[0, 0]);
            dst.extend_from_slice(&block[self.pad_after..]);
        }
    }
}

/// The WGSL `row_words` and `quads` of a format, appended to the kernels
/// that read it.
pub fn format_source(name: &str) -> Option<&'static str> {
    Some(match name {
        "f32" => include_str!("../../shaders/formats/f32.wgsl"),
        "f16" => include_str!("../../shaders/formats/f16.wgsl"),
        "bf16" => include_str!("../../shaders/formats/bf16.wgsl"),
        "q4_0" => include_str!("../../shaders/formats/q4_0.wgsl"),
        "q4_1" => include_str!("../../shaders/formats/q4_1.wgsl"),
        "q5_0" => include_str!("../../shaders/formats/q5_0.wgsl"),
        "q5_1" => include_str!("../../shaders/formats/q5_1.wgsl"),
        "q8_0" => include_str!("../../shaders/formats/q8_0.wgsl"),
        "q4_k" => include_str!("../../shaders/formats/q4_k.wgsl"),
        "q5_k" => include_str!("../../shaders/formats/q5_k.wgsl"),
        "q6_k" => include_str!("../../shaders/formats/q6_k.wgsl"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packed_block_is_whole_words() {
        use GgmlType::*;
        for ty in [F32, F16, Bf16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4K, Q5K, Q6K] {
            let f = Format::of(ty).unwrap();
            let src: Vec<u8> = (0..f.block * 3).map(|i| i as u8).collect();
            let mut dst = Vec::new();
            f.pack(&src, &mut dst);
            assert_eq!(dst.len(), 4 * f.words(3 * f.block_len()), "{}", f.name);
            assert_eq!(ty.bytes_for(f.block_len() as u64), Some(f.block as u64), "{}", f.name);
            // Every file byte is kept, in order; only zeros are added.
            let kept: Vec<u8> = (0..3)
                .flat_map(|b| {
                    let block = &dst[4 * b * f.block_words()..4 * (b + 1) * f.block_words()];
                    let cut = if f.pad_after > 0 { f.pad_after } else { block.len() };
                    assert!(block[cut..cut + block.len() - f.block].iter().all(|&z| z == 0), "{}", f.name);
                    block[..cut].iter().chain(&block[cut + block.len() - f.block..]).copied().collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(kept, src, "{}", f.name);
            let words = format!("const BLOCK_WORDS: u32 = {}u;", f.block_words());
            assert!(format_source(f.name).unwrap().contains(&words), "{}", f.name);
        }
        // Q6_K: 210 bytes, the f16 scale last, then two zero bytes.
        assert_eq!(Format::of(Q6K).unwrap().block_words(), 53);
    }
}
