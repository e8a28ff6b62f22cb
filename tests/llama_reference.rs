//! Agreement with llama.cpp on SmolLM2-135M-Instruct Q4_1 (fixtures made with
//! llama-cpp-python 0.3.36; see tests/fixtures/README.md).
//!
//! Teacher-forced along llama.cpp's tokens, at every generated position of the
//! 5 reference prompts (243 positions, 729 top-3 logits):
//! - wherever llama.cpp's top-2 gap is at least 0.5 logit, our top-1 is its top-1;
//! - our logit for each of llama.cpp's top-3 tokens is within 0.5 of its value
//!   for at least 95% of them, never further than 1.25, and 0.25 on average.
//!
//! The same budgets hold for the top-20 after "The capital of France is".
//!
//! Why not "within 0.5 everywhere": this model amplifies float rounding (a
//! layer-11 activation in the tens of thousands meets 8-bit activation
//! quantization), so llama.cpp does not meet that bar against itself. Its own
//! AVX2 build, teacher-forced in one batch (as we run), differs from these
//! fixtures (AVX-512, one token at a time) by up to 1.03, by more than 0.5 for
//! 25 of the 729 logits (96.6% within), 0.168 on average; we measured ours at
//! 0.77, 14 (98.1%) and 0.159 when this test was written.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::reference::{self, fixture, ids, Budgets};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use webslm::model::Backend;
use webslm::{GenerateOptions, LoadOptions, Message, Session};

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const FIXTURES: &str = "smollm2-q4_1";
const BUDGETS: Budgets = Budgets { within: 0.5, share: 0.95, max: 1.25, mean: 0.25, gap_for_top1: 0.5 };

fn model_path() -> PathBuf {
    let path = reference::root().join("models").join(MODEL);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    path
}

/// The real model on the CPU, loaded once for all tests of this file.
fn session() -> std::sync::MutexGuard<'static, Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION
        .get_or_init(|| Mutex::new(Session::load_path(model_path(), LoadOptions::default()).unwrap()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The real model on the first GPU adapter (lavapipe in CI), loaded once.
#[cfg(feature = "gpu")]
fn gpu_session() -> std::sync::MutexGuard<'static, Session<webslm::gpu::Gpu>> {
    use webslm::gpu::Gpu;
    static SESSION: OnceLock<Mutex<Session<Gpu>>> = OnceLock::new();
    SESSION
        .get_or_init(|| Mutex::new(Session::load_path_on(common::gpu(), model_path(), LoadOptions::default()).unwrap()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[test]
fn teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    reference::every_reference_prompt(&mut session(), FIXTURES, "reference_greedy.json", &BUDGETS);
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    reference::every_reference_prompt(&mut gpu_session(), FIXTURES, "reference_greedy.json", &BUDGETS);
}

#[test]
fn top20_after_the_capital_of_france() {
    reference::top20(&mut session(), FIXTURES, &BUDGETS);
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_top20_after_the_capital_of_france() {
    reference::top20(&mut gpu_session(), FIXTURES, &BUDGETS);
}

#[test]
fn prompts_tokenize_and_render_like_llama_cpp() {
    let greedy = fixture(FIXTURES, "reference_greedy.json");
    let s = session();
    for p in greedy["prompts"].as_array().unwrap() {
        let expected = ids(&p["prompt_token_ids"]);
        let text = p["user_text"].as_str().unwrap();
        let ours = match p["kind"].as_str().unwrap() {
            "chat" => s.chat_tokens(&[Message::new("user", text)]).unwrap(),
            _ => s.tokenize(text, true).unwrap(),
        };
        assert_eq!(ours, expected, "{}", p["name"]);
    }
}

#[test]
fn greedy_generation_follows_llama_cpp_until_a_near_tie() {
    greedy_generation(&mut session());
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_greedy_generation_follows_llama_cpp_until_a_near_tie() {
    greedy_generation(&mut gpu_session());
}

fn greedy_generation<B: Backend>(s: &mut Session<B>) {
    let greedy = fixture(FIXTURES, "reference_greedy.json");
    for p in greedy["prompts"].as_array().unwrap() {
        let prompt = ids(&p["prompt_token_ids"]);
        let expected = ids(&p["generated_token_ids"]);
        // Up to the first position where llama.cpp's own choice was a near-tie.
        let sure = p["step_top3"]
            .as_array()
            .unwrap()
            .iter()
            .take_while(|s| s[0][1].as_f64().unwrap() - s[1][1].as_f64().unwrap() >= BUDGETS.gap_for_top1 as f64)
            .count();
        let options = GenerateOptions { max_tokens: expected.len(), ..GenerateOptions::default() };
        let ours: Vec<u32> = s.generate(&prompt, options).unwrap().map(|piece| piece.token).collect();
        assert_eq!(ours[..sure.min(ours.len())], expected[..sure], "{}", p["name"]);
        eprintln!(
            "{}: {sure} sure tokens agree; {} of {} overall",
            p["name"],
            ours.iter().zip(&expected).take_while(|(a, b)| a == b).count(),
            expected.len()
        );
    }
}
