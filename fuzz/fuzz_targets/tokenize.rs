//! `encode` and `decode` on any text and any ids, with real vocabularies
//! (llama.cpp's suite and the two real models'; the first byte picks one,
//! the second the flags): ids within the vocabulary, no panic, and on
//! byte-level BPE vocabularies pieces that spell the text, where it has no
//! control characters (llama.cpp drops some, U+0013 among them, and so do
//! we). Not its decoding: GPT-2's, as llama.cpp's, cleans up spaces (" ?"
//! to "?").
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use webslm::gguf::read_header_path;
use webslm::tokenizer::Tokenizer;

/// In examples/fuzz_seeds.rs's order; the last two are the models'.
const VOCABS: [&str; 10] = [
    "llama.cpp/ggml-vocab-gpt-2.gguf",
    "llama.cpp/ggml-vocab-llama-spm.gguf",
    "llama.cpp/ggml-vocab-bert-bge.gguf",
    "llama.cpp/ggml-vocab-phi-3.gguf",
    "llama.cpp/ggml-vocab-qwen2.gguf",
    "llama.cpp/ggml-vocab-deepseek-coder.gguf",
    "llama.cpp/ggml-vocab-command-r.gguf",
    "llama.cpp/ggml-vocab-falcon.gguf",
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
];
/// Byte-level BPE: every text is some sequence of tokens that decodes to it.
const BYTE_LEVEL: [usize; 3] = [0, 4, 8];

fn vocab(i: usize) -> Option<&'static Tokenizer> {
    static VOCAB: [OnceLock<Option<Tokenizer>>; 10] = [const { OnceLock::new() }; 10];
    VOCAB[i]
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(VOCABS[i]);
            let header = read_header_path(&path).ok()?;
            Some(Tokenizer::from_metadata(&header.metadata).expect("a real vocabulary builds"))
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let [which, flags, rest @ ..] = data else { return };
    let i = *which as usize % VOCABS.len();
    let Some(tokenizer) = vocab(i) else { return };
    let n = tokenizer.vocab_size();
    let (add, parse) = (flags & 1 != 0, flags & 2 != 0);
    let text = String::from_utf8_lossy(rest);
    if let Ok(ids) = tokenizer.encode(&text, add, parse) {
        assert!(ids.iter().all(|&id| (id as usize) < n), "{ids:?} past {n}");
        tokenizer.decode(&ids, true);
        let plain = !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
        if BYTE_LEVEL.contains(&i) && !add && !parse && plain {
            let pieces: Vec<u8> = ids.iter().flat_map(|&id| tokenizer.token_piece(id, false)).collect();
            assert_eq!(String::from_utf8_lossy(&pieces), text, "{ids:?}");
        }
    }
    // The same bytes as ids, some past the vocabulary.
    let ids: Vec<u32> = rest.chunks_exact(3).map(|c| u32::from_le_bytes([c[0], c[1], c[2], 0]) % (n as u32 + 16)).collect();
    tokenizer.decode(&ids, flags & 4 != 0);
    tokenizer.detokenize(&ids, flags & 8 != 0, flags & 4 != 0);
});
