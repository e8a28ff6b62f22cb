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

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use webslm::model::Backend;
use webslm::{GenerateOptions, LoadOptions, Message, Session};

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const LOGIT_BUDGET: f32 = 0.5;
const WITHIN_BUDGET_SHARE: f64 = 0.95;
const LOGIT_MAX: f32 = 1.25;
const LOGIT_MEAN: f64 = 0.25;
const GAP_FOR_TOP1: f32 = 0.5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/smollm2-q4_1").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn model_path() -> PathBuf {
    let path = root().join("models").join(MODEL);
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
        .get_or_init(|| {
            let gpu = Gpu::new().expect("no GPU adapter: install a Vulkan driver (Debian: mesa-vulkan-drivers)");
            eprintln!("GPU: {}", gpu.adapter());
            Mutex::new(Session::load_path_on(gpu, model_path(), LoadOptions::default()).unwrap())
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Our logits for every vocabulary entry at each position that predicts
/// `tokens[n_prompt..]`.
fn teacher_forced<B: Backend>(s: &mut Session<B>, tokens: &[u32], n_prompt: usize) -> Vec<Vec<f32>> {
    let n_vocab = s.hparams().n_vocab;
    let score = s.score(tokens, n_prompt, n_vocab).unwrap();
    score
        .tokens
        .iter()
        .map(|t| {
            let mut row = vec![f32::NAN; n_vocab];
            for c in &t.top {
                row[c.id as usize] = c.logit;
            }
            row
        })
        .collect()
}

/// Differences between our logits and llama.cpp's, judged by the budgets above.
#[derive(Default)]
struct Agreement {
    logits: usize,
    within: usize,
    total: f64,
    worst: f32,
}

impl Agreement {
    fn add(&mut self, what: &str, ours: f32, theirs: f32) {
        let d = (ours - theirs).abs();
        assert!(d <= LOGIT_MAX, "{what}: logit {ours} vs llama.cpp {theirs}");
        self.worst = self.worst.max(d);
        self.total += d as f64;
        self.within += (d <= LOGIT_BUDGET) as usize;
        self.logits += 1;
    }

    fn check(&self) {
        let share = self.within as f64 / self.logits as f64;
        let mean = self.total / self.logits as f64;
        eprintln!(
            "{} logits: {} ({:.1}%) within {LOGIT_BUDGET}, mean difference {mean:.3}, max {:.3}",
            self.logits,
            self.within,
            share * 100.0,
            self.worst
        );
        assert!(share >= WITHIN_BUDGET_SHARE, "only {:.1}% of logits within {LOGIT_BUDGET}", share * 100.0);
        assert!(mean <= LOGIT_MEAN, "mean logit difference {mean:.3}");
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    every_reference_prompt(&mut session());
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_teacher_forced_logits_match_llama_cpp_on_every_reference_prompt() {
    every_reference_prompt(&mut gpu_session());
}

fn every_reference_prompt<B: Backend>(s: &mut Session<B>) {
    let greedy = fixture("reference_greedy.json");
    let mut checked = 0;
    let mut agreement = Agreement::default();
    for p in greedy["prompts"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let prompt = ids(&p["prompt_token_ids"]);
        let generated = ids(&p["generated_token_ids"]);
        let steps = p["step_top3"].as_array().unwrap();
        assert_eq!(steps.len(), generated.len());
        let tokens: Vec<u32> = prompt.iter().chain(&generated).copied().collect();
        let ours = teacher_forced(s, &tokens, prompt.len());
        assert_eq!(ours.len(), steps.len());
        for (pos, (row, step)) in ours.iter().zip(steps).enumerate() {
            let top3: Vec<(u32, f32)> = step
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
                .collect();
            for &(id, logit) in &top3 {
                agreement.add(&format!("{name} position {pos} token {id}"), row[id as usize], logit);
            }
            if top3[0].1 - top3[1].1 >= GAP_FOR_TOP1 {
                assert_eq!(argmax(row), top3[0].0, "{name} position {pos}: top-1 differs");
            }
            checked += 1;
        }
    }
    let expected: usize =
        greedy["prompts"].as_array().unwrap().iter().map(|p| p["generated_token_ids"].as_array().unwrap().len()).sum();
    assert_eq!(checked, expected);
    agreement.check();
}

#[test]
fn top20_after_the_capital_of_france() {
    capital_of_france(&mut session());
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_top20_after_the_capital_of_france() {
    capital_of_france(&mut gpu_session());
}

fn capital_of_france<B: Backend>(s: &mut Session<B>) {
    let reference = fixture("reference_logits.json");
    let prompt = ids(&reference["prompt_token_ids"]);
    assert_eq!(s.tokenize(reference["prompt"].as_str().unwrap(), true).unwrap(), prompt);
    // Score the prompt plus its top-1 token to get the logits after the prompt.
    let top = reference["top20"].as_array().unwrap();
    let mut tokens = prompt.clone();
    tokens.push(top[0]["token_id"].as_u64().unwrap() as u32);
    let row = &teacher_forced(s, &tokens, prompt.len())[0];
    assert_eq!(argmax(row), top[0]["token_id"].as_u64().unwrap() as u32);
    let mut agreement = Agreement::default();
    for t in top {
        let (id, logit) = (t["token_id"].as_u64().unwrap() as usize, t["logit"].as_f64().unwrap() as f32);
        agreement.add(&format!("token {id}"), row[id], logit);
    }
    agreement.check();
}

#[test]
fn prompts_tokenize_and_render_like_llama_cpp() {
    let greedy = fixture("reference_greedy.json");
    let s = session();
    for p in greedy["prompts"].as_array().unwrap() {
        let expected = ids(&p["prompt_token_ids"]);
        let text = p["user_text"].as_str().unwrap();
        let ours = match p["kind"].as_str().unwrap() {
            "chat" => s.chat_tokens(&[Message { role: "user".into(), content: text.into() }]).unwrap(),
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
    let greedy = fixture("reference_greedy.json");
    for p in greedy["prompts"].as_array().unwrap() {
        let prompt = ids(&p["prompt_token_ids"]);
        let expected = ids(&p["generated_token_ids"]);
        // Up to the first position where llama.cpp's own choice was a near-tie.
        let sure = p["step_top3"]
            .as_array()
            .unwrap()
            .iter()
            .take_while(|s| s[0][1].as_f64().unwrap() - s[1][1].as_f64().unwrap() >= GAP_FOR_TOP1 as f64)
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
