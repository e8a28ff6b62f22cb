//! The GGUF header parser on any bytes: a typed error or a header whose
//! tensors lie within the file, never a panic or a huge allocation. Parsed
//! twice: as the whole file, and as the start of a file too large to hold
//! (the sizes the header declares are then checked against that).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webslm::gguf::parse_header;

fuzz_target!(|data: &[u8]| {
    for file_len in [data.len() as u64, 1 << 40] {
        if let Ok(Some(header)) = parse_header(data, file_len) {
            for t in &header.tensors {
                let end = header.data_offset + t.offset + t.size;
                assert!(end <= file_len, "`{}` ends at {end}, past {file_len}", t.name);
                assert_eq!(t.n_rows() * t.row_bytes(), t.size, "`{}` is whole rows", t.name);
            }
        }
    }
});
