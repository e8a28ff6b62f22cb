//! The core on wasm32 (+simd128), run in Node by wasm-bindgen-test: load the
//! tiny generated model from chunks, tokenize, run forward passes, generate.
#![cfg(target_arch = "wasm32")]

mod common;

use common::tiny_llama;
use wasm_bindgen_test::wasm_bindgen_test;
use webslm::chat::ChatTemplate;
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
    let chat = s.chat_tokens(&[Message::new("user", "hi")]).unwrap();
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

/// Memory a freed model held counts as free again, though wasm memory never
/// shrinks: the check before a load must not refuse a model the engine held
/// a moment ago.
#[wasm_bindgen_test]
fn freed_memory_counts_as_free_again() {
    let before = webslm::heap::in_use();
    let held = std::hint::black_box(vec![1u8; 64 << 20]);
    assert!(webslm::heap::in_use() >= before + (64 << 20));
    let pages = core::arch::wasm32::memory_size(0);
    drop(held);
    assert!(webslm::heap::in_use() < before + (1 << 20), "{} then {}", before, webslm::heap::in_use());
    assert_eq!(core::arch::wasm32::memory_size(0), pages, "wasm memory does not shrink");
}

mod js_api {
    use super::common::tiny_llama;
    use js_sys::{Object, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_test::wasm_bindgen_test;
    use webslm::web::{Engine, ModelLoader};

    fn get(v: &JsValue, key: &str) -> JsValue {
        Reflect::get(v, &key.into()).unwrap()
    }

    fn code(e: JsValue) -> String {
        assert!(e.is_instance_of::<js_sys::Error>(), "errors are Error objects");
        get(&e, "code").as_string().unwrap()
    }

    fn options(pairs: &[(&str, JsValue)]) -> JsValue {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &(*k).into(), v).unwrap();
        }
        o.into()
    }

    fn engine(context: Option<u32>) -> Engine {
        let bytes = tiny_llama();
        let mut loader = ModelLoader::new(bytes.len() as f64, context, None, None, None).unwrap();
        // Pushed as the glue pushes: JS arrays, here of a size that is not the engine's 1 MiB piece.
        for chunk in bytes.chunks(4096) {
            loader.push(&js_sys::Uint8Array::from(chunk)).unwrap();
        }
        assert_eq!(loader.position(), bytes.len() as f64);
        loader.finish().unwrap()
    }

    #[wasm_bindgen_test]
    fn generates_through_the_js_classes() {
        let mut e = engine(None);
        assert_eq!(get(&e.info(), "architecture").as_string().unwrap(), "llama");
        let prompt = e.tokenize("hello there", true).unwrap();
        e.start(&prompt, options(&[("maxTokens", 6.into()), ("temperature", 0.8.into()), ("seed", 3.into())])).unwrap();
        assert_eq!(code(e.start(&prompt, JsValue::UNDEFINED).unwrap_err()), "BUSY");
        // The prompt, shorter than a batch, runs in the first call.
        let prefill = get(&e.next_piece().unwrap(), "prefill");
        assert_eq!(get(&prefill, "done").as_f64().unwrap() as usize, prompt.len());
        assert_eq!(get(&prefill, "total").as_f64().unwrap() as usize, prompt.len());
        let mut tokens = Vec::new();
        loop {
            let piece = e.next_piece().unwrap();
            if piece.is_null() {
                break;
            }
            tokens.push(get(&piece, "token").as_f64().unwrap() as u32);
            assert!(get(&piece, "text").is_string());
        }
        assert!(!tokens.is_empty() && tokens.len() <= 6);
        let stats = e.stats();
        assert_eq!(get(&stats, "generatedTokens").as_f64().unwrap() as usize, tokens.len());
        assert_eq!(get(&stats, "promptTokens").as_f64().unwrap() as usize, prompt.len());

        // A cancelled generation leaves the engine usable, and the next request reuses the cache.
        e.start(&prompt, JsValue::UNDEFINED).unwrap();
        assert!(!e.next_piece().unwrap().is_null());
        e.cancel();
        e.start(&prompt, JsValue::UNDEFINED).unwrap();
        assert_eq!(get(&e.stats(), "reusedTokens").as_f64().unwrap() as usize, prompt.len() - 1);

        let messages = js_sys::JSON::parse(r#"[{"role":"user","content":"hi"}]"#).unwrap();
        assert!(!e.chat_tokens(messages, JsValue::UNDEFINED).unwrap().is_empty());
        e.cancel();
        let score = e.score(&prompt, 1, 3).unwrap();
        assert!(get(&score, "perplexity").as_f64().unwrap() > 0.0);
    }

    #[wasm_bindgen_test]
    fn errors_carry_stable_codes() {
        let mut e = engine(Some(8));
        let long = e.tokenize(&"hello there ".repeat(8), true).unwrap();
        assert_eq!(code(e.start(&long, JsValue::UNDEFINED).unwrap_err()), "CONTEXT_OVERFLOW");
        assert_eq!(code(e.start(&[1], options(&[("maxTokenz", 3.into())])).unwrap_err()), "INVALID_ARGUMENT");
        let messages = js_sys::JSON::parse(r#"[{"content":"hi"}]"#).unwrap();
        assert_eq!(code(e.chat_tokens(messages, JsValue::UNDEFINED).unwrap_err()), "INVALID_ARGUMENT");

        let mut loader = ModelLoader::new(12.0, None, None, None, None).unwrap();
        assert_eq!(
            code(loader.push(&js_sys::Uint8Array::from(&b"GGML\x03\0\0\0\0\0\0\0"[..])).unwrap_err()),
            "INVALID_GGUF"
        );
        // A download that stops early.
        let bytes = tiny_llama();
        let mut loader = ModelLoader::new(bytes.len() as f64, None, None, None, None).unwrap();
        loader.push(&js_sys::Uint8Array::from(&bytes[..50])).unwrap();
        assert_eq!(code(loader.finish().err().unwrap()), "INVALID_GGUF");
        assert_eq!(code(ModelLoader::new(-1.0, None, None, None, None).err().unwrap()), "INVALID_ARGUMENT");
    }
}

/// A template that recurses without end stops at the nesting limit within
/// wasm's 1 MiB stack, and one that loops without end at the instruction
/// limit: errors, not a trap or a hung tab (src/chat.rs has the rest).
#[wasm_bindgen_test]
fn hostile_templates_stop_at_their_limits() {
    for (source, why) in [
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion limit exceeded"),
        ("{% macro f(n) %}{% for i in [1] %}{% if true %}{{ f(n + 1) }}{% endif %}{% endfor %}{% endmacro %}{{ f(0) }}", "recursion limit exceeded"),
        ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "instructions"),
    ] {
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let e = template.render(&[Message::new("user", "hi")], true).unwrap_err();
        assert!(e.to_string().contains(why), "{source}: {e}");
    }
}
