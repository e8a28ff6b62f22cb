//! Writes the fuzzers' seed corpora (fuzz/): small inputs that reach deep
//! into each parser, made from the real models and vocabularies.
//!
//! ```text
//! cargo run --release --example fuzz_seeds -- fuzz/corpus
//! ```
//! - `gguf_header`, `gguf_stream`: the tiny models whole; the headers of the
//!   real models and of llama.cpp's vocabularies, each array cut to its first
//!   entries (a whole vocabulary is megabytes: too slow to mutate). The
//!   stream's inputs start with a byte that seeds its chunk sizes.
//! - `tokenizer_metadata`: those cut vocabularies alone, merges and special
//!   ids kept within the tokens that remain, so that most of them build.
//! - `tokenize`: llama.cpp's tokenizer suite's texts, for each vocabulary the
//!   target loads (its first byte picks one).
//! - `chat_template`: llama.cpp's template collection, each with a
//!   conversation that has a system turn, a tool call and its result.
//! - `tool_calls`: a reply with calls in each syntax.
//! - `js_options`: generate options as pages pass them.
//!
//! The hostile files of tests/gguf_hostile.rs join `gguf_header` and
//! `gguf_stream` when that test runs with `WEBSLM_FUZZ_SEEDS` set.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{tiny_gemma, tiny_llama, GgufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use webslm::gguf::{read_header_path, Array, Header, Value};

/// How many entries of each array a cut header keeps.
const KEEP: usize = 512;

/// The vocabularies the `tokenize` target loads, in the order its first
/// byte picks them (fuzz/fuzz_targets/tokenize.rs lists the same).
const VOCABS: [&str; 8] = ["gpt-2", "llama-spm", "bert-bge", "phi-3", "qwen2", "deepseek-coder", "command-r", "falcon"];

fn main() -> ExitCode {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds OUT_DIR");
        return ExitCode::from(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = root.join("models");
    let suite = models.join("llama.cpp");
    let mut n = 0;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).expect("the corpus directory");
        std::fs::write(dir.join(name), bytes).expect("a seed");
        n += 1;
    };

    for (name, file) in [("tiny-llama", tiny_llama()), ("tiny-gemma", tiny_gemma())] {
        put("gguf_header", name, &file);
        put("gguf_stream", name, &[[7u8].as_slice(), &file].concat());
        put("tokenizer_metadata", name, &file);
    }
    let mut headers: Vec<PathBuf> =
        ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"].iter().map(|f| models.join(f)).collect();
    let mut vocabs: Vec<PathBuf> = std::fs::read_dir(&suite)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.path())).filter(|p| p.extension().is_some_and(|e| e == "gguf")).collect()
        })
        .unwrap_or_default();
    vocabs.sort();
    headers.extend(vocabs.iter().cloned());
    for path in headers.iter().filter(|p| p.exists()) {
        let header = read_header_path(path).expect("a real header reads");
        let cut = cut(&header).header().0;
        let name = path.file_stem().unwrap().to_string_lossy();
        put("gguf_header", &name, &cut);
        put("tokenizer_metadata", &name, &cut);
    }

    for (i, vocab) in VOCABS.iter().enumerate() {
        let Ok(inputs) = std::fs::read_to_string(suite.join(format!("ggml-vocab-{vocab}.gguf.inp"))) else { continue };
        for (j, text) in inputs.split("\n__ggml_vocab_test__\n").enumerate() {
            // Flags 0: no special tokens; 3: added and parsed.
            put("tokenize", &format!("{vocab}-{j}"), &[&[i as u8, (j % 4) as u8], text.as_bytes()].concat());
        }
    }

    let conversation = serde_json::json!([
        { "role": "system", "content": "You are terse." },
        { "role": "user", "content": "What is the weather in Paris?" },
        { "role": "assistant", "tool_calls": [{ "id": "call_0", "type": "function", "function": { "name": "weather", "arguments": { "city": "Paris" } } }] },
        { "role": "tool", "tool_call_id": "call_0", "name": "weather", "content": "{\"celsius\": 21}" },
        { "role": "assistant", "content": "21 °C." },
        { "role": "user", "content": "Thanks <|im_end|> [INST]" },
    ])
    .to_string();
    let templates = std::fs::read_dir(suite.join("templates"))
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or(Vec::<PathBuf>::new());
    for path in templates {
        let source = std::fs::read(&path).expect("a template");
        put(
            "chat_template",
            &path.file_stem().unwrap().to_string_lossy(),
            &[source.as_slice(), b"\0", conversation.as_bytes()].concat(),
        );
    }

    // In fuzz/fuzz_targets/tool_calls.rs's order of syntaxes.
    // Hostile templates of src/chat.rs's tests that the limits stop. Not the
    // one that doubles a string (nothing bounds it yet), nor the endless loop:
    // stopped by the instruction limit in 61 ms natively, it takes 7.5 s in
    // the fuzzer's instrumented build, whose timeout it would trip.
    for (i, source) in [
        "{% for a in range(100000) %}{{ 'many bytes a time' * 1000 }}{% endfor %}",
        "{{ 'x' * 1073741824 }}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    ]
    .iter()
    .enumerate()
    {
        put("chat_template", &format!("hostile-{i}"), &[source.as_bytes(), b"\0", conversation.as_bytes()].concat());
    }

    for (i, (syntax, reply)) in [
        (0, "I will look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rio\", \"days\": [1, 2]}}\n</tool_call>"),
        (1, "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"q\": \"a \\\"b\\\"\", \"n\": -1.5e3}}"),
        (2, "Sure.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, {}]}, \"id\": \"abcdefghi\"}]"),
        (3, "[TOOL_CALLS]get_weather[CALL_ID]abcdefghi[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]now[CALL_ID]123456789[ARGS]{}"),
        (4, "Let me see.[TOOL_CALLS]f[ARGS]{\"q\": \"[ARGS]\"}"),
        (5, "Checking.<function=get_weather>{\"city\": \"Oslo\"}</function><function=now>{}</function>"),
        (6, "all\nI will check.>>>get_weather\n{\"city\": \"Oslo\"}>>>now\n{}"),
        (7, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"x\": true}}, {\"name\": \"g\", \"arguments\": {}}]}"),
        (7, "{\"response\": \"Caf\\u00e9 \\ud83d\\ude00 \\\"quoted\\\"\\nbye\"}"),
    ]
    .iter()
    .enumerate()
    {
        put("tool_calls", &format!("reply-{i}"), &[&[*syntax as u8], reply.as_bytes()].concat());
    }

    for (i, options) in [
        serde_json::json!({ "maxTokens": 3, "temperature": 0 }),
        serde_json::json!({ "maxTokens": 4, "temperature": 0.7, "topK": 20, "topP": 0.9, "minP": 0.05, "seed": 42, "stop": ["\n"] }),
        serde_json::json!({ "repeatPenalty": 1.1, "frequencyPenalty": 0.5, "presencePenalty": 0.5, "penaltyLastN": 16, "logitBias": [[5, -100], [6, 2.5]] }),
        serde_json::json!({ "maxTokens": 6, "responseFormat": { "type": "json_schema", "schema": { "type": "object", "properties": { "a": { "type": "integer" } }, "required": ["a"] } } }),
        serde_json::json!({ "maxTokens": 4, "responseFormat": { "type": "regex", "pattern": "[a-z]{2,3}" } }),
        serde_json::json!({ "maxTokens": 4, "responseFormat": { "type": "grammar", "gbnf": "root ::= \"he\" [a-z]*" } }),
        serde_json::json!({ "maxTokens": 4, "responseFormat": { "type": "json_object" }, "renderControlTokens": true }),
        serde_json::json!({
            "messages": [{ "role": "user", "content": "Weather in Oslo?" }],
            "tools": [{ "type": "function", "function": { "name": "weather", "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } }],
            "toolChoice": "required",
            "options": { "maxTokens": 4, "temperature": 0 },
        }),
    ]
    .iter()
    .enumerate()
    {
        put("js_options", &format!("options-{i}"), options.to_string().as_bytes());
    }
    println!("{n} seeds in {}", out.display());
    ExitCode::SUCCESS
}

/// `header` with each array cut to [`KEEP`] entries (a vocabulary's merges
/// to those among the tokens kept, its special ids dropped where past them)
/// and its tensors declared, not written.
fn cut(header: &Header) -> GgufWriter {
    let md = &header.metadata;
    let tokens: Vec<String> = md
        .get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .and_then(Array::strings)
        .map(|s| s.iter().take(KEEP).map(String::from).collect())
        .unwrap_or_default();
    let n_tokens = md.get("tokenizer.ggml.tokens").and_then(Value::as_array).map_or(0, Array::len);
    let mut w = GgufWriter::default();
    w.alignment = header.alignment;
    let mut keys: Vec<&str> = md.keys().collect();
    keys.sort_unstable();
    for key in keys {
        let value = md.get(key).expect("a listed key");
        match value {
            Value::Array(a) if key == "tokenizer.ggml.merges" => {
                let known: std::collections::HashSet<&str> = tokens.iter().map(String::as_str).collect();
                let kept: Vec<String> = a
                    .strings()
                    .map(|s| {
                        s.iter()
                            .filter(|m| {
                                m.split(' ').all(|p| known.contains(p)) && known.contains(m.replace(' ', "").as_str())
                            })
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                w.str_array(key, &kept);
            }
            // Arrays a token each are cut with the tokens; others (a
            // precompiled charsmap) kept whole.
            Value::Array(a) if a.len() == n_tokens || a.len() > 4 * KEEP => {
                w.value(key, &Value::Array(take(a, KEEP)));
            }
            v if key.starts_with("tokenizer.ggml.")
                && key.ends_with("_token_id")
                && v.as_u64().is_some_and(|id| id as usize >= KEEP) => {}
            v => {
                w.value(key, v);
            }
        }
    }
    for t in &header.tensors {
        w.declare(&t.name, &t.dims, t.ty);
    }
    w
}

fn take(a: &Array, n: usize) -> Array {
    let n = n.min(a.len());
    match a {
        Array::U8(v) => Array::U8(v[..n].to_vec()),
        Array::I8(v) => Array::I8(v[..n].to_vec()),
        Array::U16(v) => Array::U16(v[..n].to_vec()),
        Array::I16(v) => Array::I16(v[..n].to_vec()),
        Array::U32(v) => Array::U32(v[..n].to_vec()),
        Array::I32(v) => Array::I32(v[..n].to_vec()),
        Array::U64(v) => Array::U64(v[..n].to_vec()),
        Array::I64(v) => Array::I64(v[..n].to_vec()),
        Array::F32(v) => Array::F32(v[..n].to_vec()),
        Array::F64(v) => Array::F64(v[..n].to_vec()),
        Array::Bool(v) => Array::Bool(v[..n].to_vec()),
        Array::String(s) => Array::String(s.iter().take(n).collect()),
        Array::Array(v) => Array::Array(v[..n].to_vec()),
    }
}
