//! How each weight format is laid out in GPU buffers: ggml's blocks, with
//! the header of a block whose size is not a multiple of four bytes padded to
//! a word, so that every block starts on a word and a shader reads whole
//! `u32`s. Q4_1, Q5_1 and the float formats keep the file's bytes as they are.

use crate::quant::GgmlType;

#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// The name in kernel names and in `shaders/formats/<name>.wgsl`.
    pub name: &'static str,
    /// Bytes of a 32-weight block in the file.
    block: usize,
    /// Bytes of the block's leading f16 scale that is widened to a word (0:
    /// the block is copied as it is).
    pad_after: usize,
}

impl Format {
    /// The GPU format of a ggml type; `None` where no shader reads it.
    pub fn of(ty: GgmlType) -> Option<Format> {
        use GgmlType::*;
        let (name, block, pad_after) = match ty {
            F32 => ("f32", 128, 0),
            F16 => ("f16", 64, 0),
            Bf16 => ("bf16", 64, 0),
            Q4_0 => ("q4_0", 18, 2),
            Q4_1 => ("q4_1", 20, 0),
            Q5_0 => ("q5_0", 22, 2),
            Q5_1 => ("q5_1", 24, 0),
            Q8_0 => ("q8_0", 34, 2),
            _ => return None,
        };
        Some(Format { name, block, pad_after })
    }

    fn block_words(&self) -> usize {
        (self.block + if self.pad_after > 0 { 2 } else { 0 }) / 4
    }

    /// Words a row of `cols` weights takes.
    pub fn words(&self, cols: usize) -> usize {
        cols / 32 * self.block_words()
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

/// The WGSL `quads` of a format, appended to the kernels that read it.
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
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packed_block_is_whole_words() {
        use GgmlType::*;
        for ty in [F32, F16, Bf16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
            let f = Format::of(ty).unwrap();
            let src: Vec<u8> = (0..f.block * 3).map(|i| i as u8).collect();
            let mut dst = Vec::new();
            f.pack(&src, &mut dst);
            assert_eq!(dst.len(), 4 * f.words(96), "{}", f.name);
            assert_eq!(ty.bytes_for(32), Some(f.block as u64), "{}", f.name);
            let words = format!("const BLOCK_WORDS: u32 = {}u;", f.block_words());
            assert!(format_source(f.name).unwrap().contains(&words), "{}", f.name);
        }
    }
}
