//! llama.cpp's own tokenizer suite: each `models/llama.cpp/ggml-vocab-*.gguf`
//! (a vocabulary without tensors) with the cases of its `.inp` file and
//! llama.cpp's ids in its `.out` file, as `tests/test-tokenizer-0.cpp` reads
//! them: cases split on `\n__ggml_vocab_test__\n`, tokenized with
//! `add_special = false, parse_special = false`.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use webslm::tokenizer::Tokenizer;

/// The vocabularies, and where each one's expected ids are: llama.cpp ships
/// the `.out` files but none for nomic-bert-moe, whose ids were made with
/// llama.cpp by scripts/reference/tokenize.cpp (see tests/fixtures/vocab/README.md).
const SUITE: &[(&str, Expected)] = &[
    ("bert-bge", Expected::Shipped),
    ("command-r", Expected::Shipped),
    ("deepseek-coder", Expected::Shipped),
    ("deepseek-llm", Expected::Shipped),
    ("falcon", Expected::Shipped),
    ("gemma-4", Expected::Shipped),
    ("gpt-2", Expected::Shipped),
    ("llama-bpe", Expected::Shipped),
    ("llama-spm", Expected::Shipped),
    ("mpt", Expected::Shipped),
    ("phi-3", Expected::Shipped),
    ("qwen2", Expected::Shipped),
    ("qwen35", Expected::Shipped),
    ("refact", Expected::Shipped),
    ("starcoder", Expected::Shipped),
    ("nomic-bert-moe", Expected::Fixture { inp_from: "qwen35" }),
];

enum Expected {
    /// `models/llama.cpp/ggml-vocab-<name>.gguf.inp` and `.out`.
    Shipped,
    /// Another vocabulary's `.inp`, ids in `tests/fixtures/vocab/ggml-vocab-<name>.gguf.out`.
    Fixture { inp_from: &'static str },
}

fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &PathBuf) -> String {
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cases of one vocabulary, as `read_tests`: a map, so a repeated input
/// keeps its last ids, and each `.out` line is stripped and split on spaces.
fn cases(inp: &str, out: &str) -> BTreeMap<String, Vec<u32>> {
    // A separator at the very end opens no case.
    let mut inputs: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    if inputs.last() == Some(&"") {
        inputs.pop();
    }
    let outputs: Vec<&str> = out.lines().collect();
    assert_eq!(inputs.len(), outputs.len(), "the .inp and .out files hold different numbers of cases");
    let ids = |line: &str| -> Vec<u32> {
        line.split_whitespace().map(|t| t.parse().unwrap_or_else(|_| panic!("bad id `{t}` in .out"))).collect()
    };
    inputs.into_iter().map(String::from).zip(outputs.into_iter().map(ids)).collect()
}

#[test]
fn every_vocabulary_matches_llama_cpp() {
    let mut failures = Vec::new();
    for (name, expected) in SUITE {
        let started = Instant::now();
        let vocab = manifest_path(&format!("models/llama.cpp/ggml-vocab-{name}.gguf"));
        let (inp, out) = match expected {
            Expected::Shipped => (vocab.with_extension("gguf.inp"), vocab.with_extension("gguf.out")),
            Expected::Fixture { inp_from } => (
                manifest_path(&format!("models/llama.cpp/ggml-vocab-{inp_from}.gguf.inp")),
                manifest_path(&format!("tests/fixtures/vocab/ggml-vocab-{name}.gguf.out")),
            ),
        };
        let cases = cases(&read(&inp), &read(&out));
        assert!(vocab.exists(), "{} is missing: run scripts/fetch-models.sh", vocab.display());
        let header = webslm::gguf::read_header_path(&vocab).expect("the vocabulary's GGUF header reads");
        let tokenizer = match Tokenizer::from_metadata(&header.metadata) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: does not load: {e}");
                failures.push(format!("{name}: does not load: {e}"));
                continue;
            }
        };
        let mut wrong = 0;
        for (text, ids) in &cases {
            match tokenizer.encode(text, false, false) {
                Ok(got) if got == *ids => {}
                got => {
                    wrong += 1;
                    failures.push(format!("{name}: {text:?}: expected {ids:?}, got {got:?}"));
                }
            }
        }
        eprintln!("{name}: {} of {} cases identical ({:.2?})", cases.len() - wrong, cases.len(), started.elapsed());
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
