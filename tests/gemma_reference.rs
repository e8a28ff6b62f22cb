//! Agreement with llama.cpp on gemma-3-270m Q4_K_M (fixtures made with
//! llama-cpp-python 0.3.36; see tests/fixtures/README.md), on the CPU and,
//! with the `gpu` feature (the `gpu_` tests), on the GPU backend.
//! Skipped, with a note, where `models/gemma-3-270m-q4_k_m.gguf` is absent.
//!
//! Teacher-forced along llama.cpp's tokens, at every generated position of the
//! 10 reference prompts (480 positions, 1440 top-3 logits):
//! - wherever llama.cpp's top-2 gap is at least 0.5 logit, our top-1 is its top-1;
//! - our logit for each of llama.cpp's top-3 tokens is within 0.5 of its value
//!   for at least 85% of them, never further than 4.0, and 0.3 on average.
//!
//! The same budgets hold for the top-20 after "The capital of France is".
//!
//! Why these, looser than SmolLM2's: this model turns rounding into logits.
//! Its residual stream runs into the hundreds (norm weights up to 283) and
//! meets 8-bit activation quantization in every product. Rounding alone moves
//! its logits as far as we are from llama.cpp: our own forward pass with GELU
//! in f32 instead of through ggml's f16 table (a 2^-11 relative change of one
//! op) differs from itself by 0.246 on average, up to 2.05, with 88.4% of
//! these 1440 logits within 0.5. Against the fixtures (one token at a time,
//! AVX-512, repacked weights) we measured 0.266 on average, up to 3.41, 87.2%
//! within 0.5, top-1 equal at all 412 positions whose gap is at least 0.5
//! (468 of 480 in all); the top-20 at 0.288 on average, up to 0.40. The
//! differences change sign from step to step and do not grow along a
//! sequence. These prompts (at most 98 tokens) never reach the 512-position
//! window; two more of 782 and 820 tokens (reference_long.json, 16 steps
//! each) do, under the same budgets: we measured 100% within 0.5, mean 0.166,
//! max 0.48, top-1 equal at 31 of 32 positions (all 22 whose gap is at least
//! 0.5), and llama.cpp recalls there a word stated 800 tokens earlier.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::reference::{self, Budgets};
use std::sync::{Mutex, OnceLock};
use webslm::{LoadOptions, Message, Session};

const MODEL: &str = "gemma-3-270m-q4_k_m.gguf";
const FIXTURES: &str = "gemma3-270m-q4_k_m";
const BUDGETS: Budgets = Budgets { within: 0.5, share: 0.85, max: 4.0, mean: 0.3, gap_for_top1: 0.5 };

/// The real model on the CPU, loaded once for all tests of this file; `None`
/// (and a note) where the file is absent.
fn session() -> Option<std::sync::MutexGuard<'static, Session>> {
    static SESSION: OnceLock<Option<Mutex<Session>>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let path = reference::root().join("models").join(MODEL);
            if !path.exists() {
                eprintln!("skipped: {} is missing (scripts/fetch-models.sh)", path.display());
                return None;
            }
            Some(Mutex::new(Session::load_path(path, LoadOptions::default()).unwrap()))
        })
        .as_ref()
        .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
}

#[test]
fn teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    if let Some(mut s) = session() {
        reference::every_reference_prompt(&mut s, FIXTURES, "reference_greedy.json", &BUDGETS);
    }
}

/// Two prompts of 782 and 820 tokens, past the 512-position window: the local
/// layers must forget what the global ones still see (one asks for a fact
/// stated 800 tokens earlier).
#[test]
fn teacher_forced_logits_match_llama_cpp_past_the_window() {
    if let Some(mut s) = session() {
        long_prompts(&mut s);
    }
}

fn long_prompts<B: webslm::model::Backend>(s: &mut Session<B>) {
    let long = reference::fixture(FIXTURES, "reference_long.json");
    for p in long["prompts"].as_array().unwrap() {
        let ids = reference::ids(&p["prompt_token_ids"]);
        assert!(ids.len() > 600);
        assert_eq!(s.tokenize(p["formatted"].as_str().unwrap(), true).unwrap(), ids);
    }
    reference::every_reference_prompt(s, FIXTURES, "reference_long.json", &BUDGETS);
}

#[test]
fn top20_after_the_capital_of_france() {
    if let Some(mut s) = session() {
        reference::top20(&mut s, FIXTURES, &BUDGETS);
    }
}

/// At the default context of 4096, the 15 local layers keep rings of
/// 512 + 256 - 1 positions and the 3 global ones every position, 256 keys
/// and 256 values in f16 each: 23.2 MiB, not the 72 MiB of 18 full layers.
#[test]
fn the_cache_of_the_local_layers_is_bounded_by_the_window() {
    if let Some(s) = session() {
        assert_eq!(s.info().context_length, 4096);
        assert_eq!(s.info().kv_cache_bytes, (3 * 4096 + 15 * 767) * 256 * 2 * 2);
    }
}

/// This GGUF has no `tokenizer.chat_template`: chat falls back to Gemma 3's
/// own, whose rendering of one user message is the fixture's `turn_markup`
/// prompt, tokenized by llama.cpp.
#[test]
fn chat_uses_gemma3_template() {
    if let Some(s) = session() {
        let greedy = reference::fixture(FIXTURES, "reference_greedy.json");
        let p = greedy["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "turn_markup").unwrap();
        assert_eq!(
            p["formatted"],
            "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"
        );
        let messages = [Message::new("user", "What is the capital of France?")];
        assert_eq!(s.chat_tokens(&messages).unwrap(), reference::ids(&p["prompt_token_ids"]));
    }
}

/// The real model on the GPU backend (lavapipe in CI), loaded once.
#[cfg(feature = "gpu")]
fn gpu_session() -> Option<std::sync::MutexGuard<'static, Session<webslm::gpu::Gpu>>> {
    static SESSION: OnceLock<Option<Mutex<Session<webslm::gpu::Gpu>>>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let path = reference::root().join("models").join(MODEL);
            if !path.exists() {
                eprintln!("skipped: {} is missing (scripts/fetch-models.sh)", path.display());
                return None;
            }
            let gpu = common::gpu();
            Some(Mutex::new(Session::load_path_on(gpu, path, LoadOptions::default()).unwrap()))
        })
        .as_ref()
        .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(feature = "gpu")]
#[test]
#[ignore = "minutes on lavapipe: by hand, with --include-ignored"]
fn gpu_teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    if let Some(mut s) = gpu_session() {
        reference::every_reference_prompt(&mut s, FIXTURES, "reference_greedy.json", &BUDGETS);
    }
}

#[cfg(feature = "gpu")]
#[test]
#[ignore = "minutes on lavapipe: by hand, with --include-ignored"]
fn gpu_teacher_forced_logits_match_llama_cpp_past_the_window() {
    if let Some(mut s) = gpu_session() {
        long_prompts(&mut s);
    }
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_top20_after_the_capital_of_france() {
    if let Some(mut s) = gpu_session() {
        reference::top20(&mut s, FIXTURES, &BUDGETS);
    }
}
