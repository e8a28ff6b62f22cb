//! The push-based loader, fed a file in chunks whose sizes the first byte
//! seeds: whatever the chunks, the same outcome as the whole file in one
//! push (the same tensors' bytes, or an error either way), each tensor as
//! whole rows in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webslm::gguf::{read_slice, GgufStream};
use webslm_fuzz::Rows;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, file)) = data.split_first() else { return };
    let mut whole = Rows::default();
    let whole_result = read_slice(file, &mut whole);

    let mut chunked = Rows::default();
    let mut stream = GgufStream::new(file.len() as u64);
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed as u64;
    let mut rest = file;
    let mut result = Ok(());
    while !rest.is_empty() && result.is_ok() {
        // xorshift: chunks of 1 byte to 4 KiB, mostly small.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (1 + (state % 64) as usize * if state & 0x100 == 0 { 1 } else { 64 }).min(rest.len());
        result = stream.push(&rest[..n], &mut chunked);
        rest = &rest[n..];
    }
    let chunked_result = result.and_then(|()| stream.finish());
    assert_eq!(whole_result.is_ok(), chunked_result.is_ok(), "whole: {whole_result:?}, chunked: {chunked_result:?}");
    if whole_result.is_ok() {
        assert_eq!(whole, chunked);
    }
});
