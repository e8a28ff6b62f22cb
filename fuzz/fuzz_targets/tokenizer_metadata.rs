//! A tokenizer built from a hostile header's `tokenizer.*` metadata: a
//! typed error, or a tokenizer that encodes and decodes without a panic and
//! gives only ids within its vocabulary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webslm::gguf::parse_header;
use webslm::tokenizer::Tokenizer;

const TEXTS: [&str; 4] = ["Hello, world! 123", " <s>[INST] héllo\n\n\twörld 🦙", "<|im_start|>user\nhi<|im_end|>", ""];

fuzz_target!(|data: &[u8]| {
    let Ok(Some(header)) = parse_header(data, 1 << 40) else { return };
    let Ok(tokenizer) = Tokenizer::from_metadata(&header.metadata) else { return };
    let n = tokenizer.vocab_size();
    for text in TEXTS {
        for (add, parse) in [(false, false), (true, true)] {
            if let Ok(ids) = tokenizer.encode(text, add, parse) {
                assert!(ids.iter().all(|&id| (id as usize) < n), "{text:?}: {ids:?} past {n}");
                tokenizer.decode(&ids, true);
                tokenizer.detokenize(&ids, true, false);
            }
        }
    }
    for id in (0..n.min(300) as u32).chain([n as u32, u32::MAX]) {
        tokenizer.token_piece(id, true);
        tokenizer.token_text(id);
        tokenizer.is_eog(id);
    }
});
