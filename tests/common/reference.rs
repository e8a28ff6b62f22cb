//! Agreement with llama.cpp's reference outputs (`tests/fixtures/<model>/`,
//! see tests/fixtures/README.md): teacher-forced logits judged by a model's
//! budgets.

use serde_json::Value;
use std::path::PathBuf;
use webslm::model::Backend;
use webslm::Session;

/// How close our logits must be to llama.cpp's.
pub struct Budgets {
    /// A logit is "within" when this close.
    pub within: f32,
    /// Share of logits that must be within.
    pub share: f64,
    /// No logit may be further.
    pub max: f32,
    /// Bound on the mean difference.
    pub mean: f64,
    /// Where llama.cpp's top-2 gap is at least this, our top-1 is its top-1.
    pub gap_for_top1: f32,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(dir: &str, name: &str) -> Value {
    let path = root().join("tests/fixtures").join(dir).join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Our logits for every vocabulary entry at each position that predicts
/// `tokens[n_prompt..]`.
pub fn teacher_forced<B: Backend>(s: &mut Session<B>, tokens: &[u32], n_prompt: usize) -> Vec<Vec<f32>> {
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

pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Differences between our logits and llama.cpp's, judged by `budgets`.
pub struct Agreement<'a> {
    budgets: &'a Budgets,
    logits: usize,
    within: usize,
    total: f64,
    worst: f32,
}

impl<'a> Agreement<'a> {
    pub fn new(budgets: &'a Budgets) -> Self {
        Agreement { budgets, logits: 0, within: 0, total: 0.0, worst: 0.0 }
    }

    pub fn add(&mut self, what: &str, ours: f32, theirs: f32) {
        let d = (ours - theirs).abs();
        assert!(d <= self.budgets.max, "{what}: logit {ours} vs llama.cpp {theirs}");
        self.worst = self.worst.max(d);
        self.total += d as f64;
        self.within += (d <= self.budgets.within) as usize;
        self.logits += 1;
    }

    pub fn check(&self) {
        let b = self.budgets;
        let share = self.within as f64 / self.logits as f64;
        let mean = self.total / self.logits as f64;
        eprintln!(
            "{} logits: {} ({:.1}%) within {}, mean difference {mean:.3}, max {:.3}",
            self.logits,
            self.within,
            share * 100.0,
            b.within,
            self.worst
        );
        assert!(share >= b.share, "only {:.1}% of logits within {}", share * 100.0, b.within);
        assert!(mean <= b.mean, "mean logit difference {mean:.3}");
    }
}

/// Teacher-forced along llama.cpp's greedy tokens of every prompt of
/// `dir/file` (reference_greedy.json's format): its top-3 logits at every step.
pub fn every_reference_prompt<B: Backend>(s: &mut Session<B>, dir: &str, file: &str, budgets: &Budgets) {
    let greedy = fixture(dir, file);
    let mut checked = 0;
    let (mut sure, mut top1_agree) = (0, 0);
    let mut agreement = Agreement::new(budgets);
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
            if top3[0].1 - top3[1].1 >= budgets.gap_for_top1 {
                assert_eq!(argmax(row), top3[0].0, "{name} position {pos}: top-1 differs");
                sure += 1;
            }
            top1_agree += (argmax(row) == top3[0].0) as usize;
            checked += 1;
        }
    }
    let expected: usize =
        greedy["prompts"].as_array().unwrap().iter().map(|p| p["generated_token_ids"].as_array().unwrap().len()).sum();
    assert_eq!(checked, expected);
    eprintln!(
        "{checked} positions: top-1 agrees at all {sure} with a top-2 gap of at least {}, at {top1_agree} of {checked} in all",
        budgets.gap_for_top1
    );
    agreement.check();
}

/// The top-20 of `dir/reference_logits.json` after its prompt.
pub fn top20<B: Backend>(s: &mut Session<B>, dir: &str, budgets: &Budgets) {
    let reference = fixture(dir, "reference_logits.json");
    let prompt = ids(&reference["prompt_token_ids"]);
    assert_eq!(s.tokenize(reference["prompt"].as_str().unwrap(), true).unwrap(), prompt);
    // Score the prompt plus its top-1 token to get the logits after the prompt.
    let top = reference["top20"].as_array().unwrap();
    let mut tokens = prompt.clone();
    tokens.push(top[0]["token_id"].as_u64().unwrap() as u32);
    let row = &teacher_forced(s, &tokens, prompt.len())[0];
    assert_eq!(argmax(row), top[0]["token_id"].as_u64().unwrap() as u32);
    let mut agreement = Agreement::new(budgets);
    for t in top {
        let (id, logit) = (t["token_id"].as_u64().unwrap() as usize, t["logit"].as_f64().unwrap() as f32);
        agreement.add(&format!("token {id}"), row[id], logit);
    }
    agreement.check();
}
