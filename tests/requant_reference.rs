//! Every weight format on a real model: SmolLM2-135M-Instruct requantized
//! from its Q4_1 file as llama.cpp's quantizer does it (tests/common/requant.rs;
//! fixtures by scripts/reference/requant.py), teacher-forced against
//! llama.cpp on that file along the 5 reference prompts' tokens, within the
//! budgets of tests/llama_reference.rs: top-1 equal wherever llama.cpp's
//! top-2 gap is at least 0.5, 95% of its top-3 logits within 0.5, none past
//! 1.25, 0.25 apart on average.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::reference::{self, fixture, Budgets};
use common::requant::{requantize, tensor_hash, tensors};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use webslm::{LoadOptions, Session};

const BUDGETS: Budgets = Budgets { within: 0.5, share: 0.95, max: 1.25, mean: 0.25, gap_for_top1: 0.5 };
const FIXTURES: &str = "smollm2-requant";

/// The Q4_1 file's tensors, read once.
fn source() -> &'static common::requant::Tensors {
    static SOURCE: OnceLock<common::requant::Tensors> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = reference::root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
        tensors(&std::fs::read(path).unwrap())
    })
}

fn check(format: &str) {
    let file = format!("{format}.json");
    let f = fixture(FIXTURES, &file);
    let types: BTreeMap<String, String> = serde_json::from_value(f["types"].clone()).unwrap();
    let bytes = requantize(source(), &types);
    assert_eq!(
        tensor_hash(&tensors(&bytes)),
        f["tensor_hash"].as_str().unwrap(),
        "{format}: not the tensors llama.cpp read"
    );
    let mut session = Session::load_bytes(&bytes, LoadOptions::default()).unwrap();
    eprint!("{format}: ");
    reference::every_reference_prompt(&mut session, FIXTURES, &file, &BUDGETS);
}

macro_rules! formats {
    ($($name:ident => $format:literal),*) => {
        $(
            #[test]
            fn $name() {
                check($format);
            }
        )*
    };
}

formats!(f16 => "F16", q8_0 => "Q8_0", q4_0 => "Q4_0", q5_0 => "Q5_0", q5_1 => "Q5_1", q6_k => "Q6_K", q4_k_m => "Q4_K_M");
