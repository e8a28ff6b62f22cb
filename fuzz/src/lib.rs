//! What the fuzz targets share: a sink that checks what a GGUF stream
//! delivers, and the tiny model of the crate's tests.

#[path = "../../tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
pub mod common;

use webslm::gguf::{GgufSink, Header, TensorInfo};

/// Each tensor's bytes as a stream delivers them, checked as they come:
/// whole rows, in order, within the tensor.
#[derive(Default, Debug, PartialEq)]
pub struct Rows {
    pub tensors: Vec<(String, Vec<u8>)>,
    next_row: u64,
}

impl GgufSink for Rows {
    fn header(&mut self, _: &mut Header) -> webslm::Result<()> {
        assert!(self.tensors.is_empty(), "the header comes first, once");
        Ok(())
    }

    fn rows(&mut self, info: &TensorInfo, first: u64, data: &[u8]) -> webslm::Result<()> {
        let row = info.row_bytes();
        assert_eq!(data.len() as u64 % row, 0, "`{}` in whole rows", info.name);
        if first == 0 {
            assert_eq!(self.next_row, 0, "`{}` starts after the last tensor ended", info.name);
            self.tensors.push((info.name.clone(), Vec::new()));
        }
        assert_eq!(first, self.next_row, "`{}` in order", info.name);
        self.next_row = first + data.len() as u64 / row;
        assert!(self.next_row <= info.n_rows(), "`{}` within its rows", info.name);
        if self.next_row == info.n_rows() {
            self.next_row = 0;
        }
        self.tensors.last_mut().expect("a tensor begun").1.extend_from_slice(data);
        Ok(())
    }
}
