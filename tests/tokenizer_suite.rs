//! llama.cpp's own tokenizer suite: each `models/llama.cpp/ggml-vocab-*.gguf`
//! (a vocabulary without tensors) with the cases of its `.inp` file and
//! llama.cpp's ids in its `.out` file, as `tests/test-tokenizer-0.cpp` reads
//! them: cases split on `\n__ggml_vocab_test__\n`, tokenized with
//! `add_special = false, parse_special = false`. Each vocabulary also runs
//! `tests/fixtures/vocab/extra.inp`, harder cases (NUL and other controls,
//! Unicode spaces, accents and compatibility forms, special tokens' texts, long
//! words), against llama.cpp's ids in `tests/fixtures/vocab/extra/`: as the
//! suite (`<name>.out`), and with both flags true (`<name>.special.out`).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use webslm::tokenizer::Tokenizer;

/// The vocabularies, each with the vocabulary whose `.inp` it runs: its own,
/// but for nomic-bert-moe, for which llama.cpp ships no `.inp`/`.out` and
/// whose ids for qwen35's cases were made with llama.cpp by
/// scripts/reference/tokenize.cpp (see tests/fixtures/README.md).
const SUITE: &[(&str, &str)] = &[
    ("bert-bge", "bert-bge"),
    ("command-r", "command-r"),
    ("deepseek-coder", "deepseek-coder"),
    ("deepseek-llm", "deepseek-llm"),
    ("falcon", "falcon"),
    ("gemma-4", "gemma-4"),
    ("gpt-2", "gpt-2"),
    ("llama-bpe", "llama-bpe"),
    ("llama-spm", "llama-spm"),
    ("mpt", "mpt"),
    ("phi-3", "phi-3"),
    ("qwen2", "qwen2"),
    ("qwen35", "qwen35"),
    ("refact", "refact"),
    ("starcoder", "starcoder"),
    ("nomic-bert-moe", "qwen35"),
];

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
    let extra_inp = read(&manifest_path("tests/fixtures/vocab/extra.inp"));
    let mut failures = Vec::new();
    for &(name, inp_from) in SUITE {
        let started = Instant::now();
        let vocab = manifest_path(&format!("models/llama.cpp/ggml-vocab-{name}.gguf"));
        let inp = read(&manifest_path(&format!("models/llama.cpp/ggml-vocab-{inp_from}.gguf.inp")));
        let out = if name == inp_from {
            vocab.with_extension("gguf.out")
        } else {
            manifest_path(&format!("tests/fixtures/vocab/ggml-vocab-{name}.gguf.out"))
        };
        let extra = |file: &str| read(&manifest_path(&format!("tests/fixtures/vocab/extra/{name}{file}")));
        // (name, cases, add_special and parse_special)
        let sets = [
            ("suite", cases(&inp, &read(&out)), false),
            ("extra", cases(&extra_inp, &extra(".out")), false),
            ("extra special", cases(&extra_inp, &extra(".special.out")), true),
        ];
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
        let mut counts = Vec::new();
        for (set, cases, special) in &sets {
            let mut identical = 0;
            for (text, ids) in cases {
                match tokenizer.encode(text, *special, *special) {
                    Ok(got) if got == *ids => identical += 1,
                    got => failures.push(format!("{name} ({set}): {text:?}: expected {ids:?}, got {got:?}")),
                }
            }
            counts.push(format!("{identical} of {} {set} cases", cases.len()));
        }
        eprintln!("{name}: {} identical ({:.2?})", counts.join(", "), started.elapsed());
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
