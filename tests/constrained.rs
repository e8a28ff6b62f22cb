//! Constrained decoding on the real models: every output of a response
//! format parses and validates (against the `jsonschema` crate, not the
//! llguidance that produced it), regexes and grammars match, bad formats are
//! `INVALID_ARGUMENT`, and every sampler setting still applies.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::reference;
use serde_json::{json, Value};
use std::sync::{Mutex, OnceLock};
use webslm::constraint::ResponseFormat;
use webslm::session::FinishReason;
use webslm::{GenerateOptions, LoadOptions, Message, SamplerConfig, Session};

fn session(model: &str) -> std::sync::MutexGuard<'static, Session> {
    static SESSIONS: OnceLock<Mutex<Vec<(String, &'static Mutex<Session>)>>> = OnceLock::new();
    let mut all = SESSIONS.get_or_init(Default::default).lock().unwrap();
    let found = all.iter().find(|(m, _)| m == model).map(|(_, s)| *s);
    let s = found.unwrap_or_else(|| {
        let path = reference::root().join("models").join(model);
        assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
        let s: &'static Mutex<Session> = Box::leak(Box::new(Mutex::new(Session::load_path(path, LoadOptions::default()).unwrap())));
        all.push((model.to_string(), s));
        s
    });
    drop(all);
    s.lock().unwrap_or_else(|e| e.into_inner())
}

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The reply to `prompt` under `format`, and why it ended.
fn reply(s: &mut Session, prompt: &str, format: ResponseFormat, max_tokens: usize, sampler: SamplerConfig) -> (String, Option<FinishReason>) {
    let messages = [Message::new("user", prompt)];
    let options = GenerateOptions { max_tokens, sampler, response_format: Some(format), ..GenerateOptions::default() };
    let mut g = s.chat(&messages, options).unwrap();
    let text: String = g.by_ref().map(|p| p.text).collect();
    assert!(g.error().is_none(), "{:?}", g.error());
    (text, g.finish_reason())
}

/// Every `step`th of `schemas.json`'s cases (natively the CPU backend
/// runs its scalar kernels: Gemma 3 takes about 250 ms a token here, so it
/// runs a fifth of them; the package tests run them all in wasm).
fn schemas_hold(model: &str, step: usize) {
    let cases: Vec<Value> = serde_json::from_str(include_str!("fixtures/schemas.json")).unwrap();
    let mut s = session(model);
    for case in cases.iter().step_by(step) {
        let (name, schema) = (case["name"].as_str().unwrap(), &case["schema"]);
        let format = ResponseFormat::JsonSchema(schema.clone());
        let (text, finish) = reply(&mut s, case["prompt"].as_str().unwrap(), format, 400, SamplerConfig::default());
        assert_eq!(finish, Some(FinishReason::EndOfGeneration), "{model}, {name}: {text}");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{model}, {name}: {e}: {text}"));
        let validator = jsonschema::options().should_validate_formats(true).build(schema).unwrap();
        if let Err(e) = validator.validate(&value) {
            panic!("{model}, {name}: {text} does not validate: {e}");
        }
        let st = s.stats();
        eprintln!(
            "{model}, {name}: {} tokens, decode {:.0} ms, masks {:.0} ms: {text}",
            st.generated_tokens, st.decode_ms, st.constraint_ms
        );
    }
}

#[test]
fn smollm2_outputs_validate_against_every_schema() {
    schemas_hold(SMOLLM2, 1);
}

#[test]
fn gemma3_outputs_validate_against_every_fifth_schema() {
    schemas_hold(GEMMA3, 5);
}

#[test]
fn regexes_grammars_and_json_objects_hold() {
    let mut s = session(SMOLLM2);
    let greedy = SamplerConfig::default;
    let (text, finish) = reply(&mut s, "When was the Eiffel Tower built?", ResponseFormat::Regex("[0-9]{4}".into()), 50, greedy());
    assert!(text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()), "{text}");
    assert_eq!(finish, Some(FinishReason::EndOfGeneration));

    let lark = r#"start: "The answer is " ANSWER "."
ANSWER: "yes" | "no""#;
    let (text, _) = reply(&mut s, "Is water wet?", ResponseFormat::Grammar(lark.into()), 50, greedy());
    assert!(text == "The answer is yes." || text == "The answer is no.", "{text}");

    let gbnf = r#"root ::= item ("," " "? item){2}
item ::= [a-z]+"#;
    let (text, _) = reply(&mut s, "Name three colours.", ResponseFormat::Grammar(gbnf.into()), 50, greedy());
    let items: Vec<&str> = text.split(',').map(str::trim_start).collect();
    assert!(items.len() == 3 && items.iter().all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_lowercase())), "{text}");

    let (text, _) = reply(&mut s, "Describe a dog.", ResponseFormat::JsonObject, 300, greedy());
    assert!(serde_json::from_str::<Value>(&text).unwrap().is_object(), "{text}");
}

#[test]
fn sampling_settings_apply_within_the_format() {
    let mut s = session(SMOLLM2);
    let format = || ResponseFormat::JsonSchema(json!({ "type": "object", "properties": { "colour": { "enum": ["red", "green", "blue", "yellow"] } }, "required": ["colour"], "additionalProperties": false }));
    let sampled = |s: &mut Session, seed| {
        let sampler = SamplerConfig { temperature: 1.5, top_k: 40, seed, ..SamplerConfig::default() };
        reply(s, "Pick a colour.", format(), 40, sampler).0
    };
    let texts: Vec<String> = (0..8).map(|seed| sampled(&mut s, seed)).collect();
    for t in &texts {
        let v: Value = serde_json::from_str(t).unwrap();
        assert!(["red", "green", "blue", "yellow"].contains(&v["colour"].as_str().unwrap()), "{t}");
    }
    // The seed still decides: the same seed, the same text.
    assert_eq!(sampled(&mut s, 3), texts[3]);
    // A logit bias still applies among the allowed tokens: banning the
    // first token of every colour but one leaves that one.
    let only_blue = {
        let tok = |w: &str| s.tokenize(w, false).unwrap()[0];
        let banned: Vec<(u32, f32)> = ["red", "green", "yellow"].iter().map(|w| (tok(w), f32::NEG_INFINITY)).collect();
        banned
    };
    let sampler = SamplerConfig { logit_bias: only_blue, ..SamplerConfig::default() };
    let (text, _) = reply(&mut s, "Pick a colour: red.", format(), 40, sampler);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["colour"], "blue", "{text}");
}

#[test]
fn max_tokens_first_ends_with_max_tokens() {
    let mut s = session(SMOLLM2);
    let format = ResponseFormat::JsonSchema(json!({ "type": "array", "items": { "type": "string" }, "minItems": 30 }));
    let (text, finish) = reply(&mut s, "List animals.", format, 10, SamplerConfig::default());
    assert_eq!(finish, Some(FinishReason::MaxTokens), "{text}");
    assert!(text.starts_with('['), "{text}");
}

#[test]
fn formats_llguidance_rejects_are_invalid_arguments() {
    let mut s = session(SMOLLM2);
    for format in [
        ResponseFormat::JsonSchema(json!({ "type": "object", "properties": { "a": { "$ref": "#/$defs/missing" } } })),
        ResponseFormat::JsonSchema(json!({ "type": "integer", "minimum": 5, "maximum": 1 })),
        ResponseFormat::Regex("(unclosed".into()),
        ResponseFormat::Grammar("start: undefined_rule".into()),
        ResponseFormat::Grammar("root ::= \"a".into()),
    ] {
        let options = GenerateOptions { response_format: Some(format.clone()), ..GenerateOptions::default() };
        let e = s.chat(&[Message::new("user", "hi")], options).err().unwrap_or_else(|| panic!("{format:?} was accepted"));
        assert_eq!(e.code(), "INVALID_ARGUMENT", "{format:?}: {e}");
        eprintln!("{format:?}: {e}");
    }
    // The session goes on.
    let (text, _) = reply(&mut s, "Yes or no?", ResponseFormat::Regex("yes|no".into()), 5, SamplerConfig::default());
    assert!(text == "yes" || text == "no", "{text}");
}
