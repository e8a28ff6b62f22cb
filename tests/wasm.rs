//! The core on wasm32 (+simd128), run in Node by wasm-bindgen-test: load the
//! tiny generated model from chunks, tokenize, run forward passes, generate.
#![cfg(target_arch = "wasm32")]

mod common;

use common::tiny_llama;
use wasm_bindgen_test::wasm_bindgen_test;
use webslm::cpu::Cpu;
use webslm::session::Loader;
use webslm::{GenerateOptions, LoadOptions, Message, Session};

#[wasm_bindgen_test]
fn tokenizes_runs_forward_passes_and_generates() {
    let bytes = tiny_llama();
    let mut loader = Loader::new(Cpu::default(), bytes.len() as u64, LoadOptions::default());
    for chunk in bytes.chunks(1000) {
        loader.push(chunk).unwrap();
    }
    let mut s = loader.finish().unwrap();

    let ids = s.tokenize("hello there", true).unwrap();
    assert_eq!(s.detokenize(&ids), "hello there");
    let chat = s.chat_tokens(&[Message { role: "user".into(), content: "hi".into() }]).unwrap();
    assert_eq!(chat[0], 1, "<|im_start|> is parsed as a special token");

    // Batched prefill and one token at a time agree.
    let n = s.hparams().n_vocab;
    let batched = s.score(&ids, 1, n).unwrap();
    let mut step = Session::load_bytes(&bytes, LoadOptions::default()).unwrap();
    for end in 2..=ids.len() {
        let one = step.score(&ids[..end], end - 1, n).unwrap();
        let (a, b) = (&batched.tokens[end - 2], &one.tokens[0]);
        assert_eq!(a.id, b.id);
        assert!((a.logit - b.logit).abs() < 1e-4, "position {end}: {} vs {}", a.logit, b.logit);
        assert!(a.top.iter().all(|c| c.logit.is_finite()));
    }

    let pieces: Vec<_> =
        s.generate(&ids, GenerateOptions { max_tokens: 8, ..GenerateOptions::default() }).unwrap().collect();
    assert!(!pieces.is_empty());
    assert!(s.stats().generated_tokens == pieces.len());
}
