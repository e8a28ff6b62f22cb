//! Tool calls through real chat templates (llama.cpp's models/templates) on
//! the tiny qwen2 model (tests/common/arch.rs; random weights, Qwen's
//! vocabulary): each template's syntax is told from its source, the tools
//! reach the prompt as it offers them, and a required or named call is
//! always a call of that function whose arguments validate against its
//! parameters (checked with the `jsonschema` crate), whatever the model.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::arch::tiny;
use common::reference::root;
use serde_json::{json, Value};
use webslm::chat::tools::{ToolChoice, ToolSyntax};
use webslm::quant::GgmlType;
use webslm::session::FinishReason;
use webslm::{GenerateOptions, LoadOptions, Message, Session};

fn tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "get_weather", "description": "The weather in a city",
          "parameters": { "type": "object", "properties": {
              "city": { "type": "string", "maxLength": 16 },
              "unit": { "enum": ["celsius", "fahrenheit"] },
              "days": { "type": "integer", "minimum": 1, "maximum": 7 } },
            "required": ["city", "unit"], "additionalProperties": false } } },
        { "type": "function", "function": { "name": "get_time", "description": "The time in a time zone",
          "parameters": { "type": "object", "properties": { "zone": { "enum": ["UTC", "CET"] } },
            "required": ["zone"], "additionalProperties": false } } }
    ])
}

fn session(template: &str) -> Session {
    let source = std::fs::read_to_string(root().join("models/llama.cpp/templates").join(template)).unwrap();
    let options = LoadOptions { chat_template: Some(source), context_length: Some(2048), ..LoadOptions::default() };
    Session::load_bytes(&tiny("qwen2", GgmlType::Q8_0), options).unwrap()
}

/// The reply to a weather question under `choice`, read back into calls.
fn reply(s: &mut Session, choice: &ToolChoice) -> (String, Vec<webslm::ToolCall>, String) {
    let messages = [Message::new("user", "What is the weather in Paris?")];
    let (prompt, format) = s.tool_chat_tokens(&messages, &tools(), choice).unwrap();
    let prompt_text = s.detokenize(&prompt);
    let options = GenerateOptions { max_tokens: 300, response_format: format, ..GenerateOptions::default() };
    let mut g = s.generate(&prompt, options).unwrap();
    let text: String = g.by_ref().map(|p| p.text).collect();
    assert!(g.error().is_none(), "{:?}", g.error());
    assert_eq!(g.finish_reason(), Some(FinishReason::EndOfGeneration), "{text}");
    drop(g);
    let (content, calls) = s.parse_tool_calls(&text).unwrap();
    (content, calls, prompt_text)
}

fn validates(name: &str, arguments: &Value) {
    let tools = tools();
    let tool = tools.as_array().unwrap().iter().find(|t| t["function"]["name"] == name).unwrap_or_else(|| panic!("no tool {name}"));
    let validator = jsonschema::validator_for(&tool["function"]["parameters"]).unwrap();
    assert!(validator.is_valid(arguments), "{name}({arguments})");
}

#[test]
fn forced_calls_validate_in_every_syntax() {
    for (template, syntax) in [
        ("Qwen-Qwen2.5-7B-Instruct.jinja", ToolSyntax::Hermes),
        ("Qwen-Qwen3-0.6B.jinja", ToolSyntax::Hermes),
        ("meta-llama-Llama-3.2-3B-Instruct.jinja", ToolSyntax::Llama3),
        ("microsoft-Phi-3.5-mini-instruct.jinja", ToolSyntax::Generic),
    ] {
        let mut s = session(template);
        let (_, calls, prompt) = reply(&mut s, &ToolChoice::Required);
        assert!(prompt.contains("get_weather") && prompt.contains("fahrenheit"), "{template}: the tools are not in the prompt:\n{prompt}");
        // Each syntax's own instructions, from the template or (generic) ours.
        let marker = match syntax {
            ToolSyntax::Hermes => "<tool_call>",
            ToolSyntax::Llama3 => "\"parameters\"",
            ToolSyntax::Generic => "Respond in JSON format",
        };
        assert!(prompt.contains(marker), "{template}: no {marker} in the prompt:\n{prompt}");
        assert_eq!(calls.len(), 1, "{template}");
        validates(&calls[0].function.name, &calls[0].function.arguments);

        let (_, calls, _) = reply(&mut s, &ToolChoice::Function("get_time".into()));
        assert_eq!(calls.len(), 1, "{template}");
        assert_eq!(calls[0].function.name, "get_time", "{template}");
        validates("get_time", &calls[0].function.arguments);
        eprintln!("{template} ({syntax:?}): {:?}", calls[0]);
    }
}

#[test]
fn the_generic_syntax_replies_in_its_json_when_calls_are_optional() {
    let mut s = session("microsoft-Phi-3.5-mini-instruct.jinja");
    let (content, calls, _) = reply(&mut s, &ToolChoice::Auto);
    match calls.as_slice() {
        [] => assert!(!content.starts_with('{'), "a response is its text: {content}"),
        [call] => validates(&call.function.name, &call.function.arguments),
        more => panic!("{more:?}"),
    }
    // With no call allowed, nothing is offered and the reply is free.
    let messages = [Message::new("user", "Hi")];
    let (prompt, format) = s.tool_chat_tokens(&messages, &tools(), &ToolChoice::None).unwrap();
    assert_eq!(format, None);
    assert!(!s.detokenize(&prompt).contains("get_weather"));
}

#[test]
fn a_template_given_at_load_replaces_the_files_and_a_broken_one_fails_the_load() {
    let s = session("Qwen-Qwen2.5-7B-Instruct.jinja");
    let text = s.detokenize(&s.chat_tokens(&[Message::new("user", "Hi")]).unwrap());
    assert!(text.contains("You are Qwen, created by Alibaba Cloud"), "{text}");
    let options = LoadOptions { chat_template: Some("{% if %}".into()), ..LoadOptions::default() };
    let e = Session::load_bytes(&tiny("qwen2", GgmlType::Q8_0), options).err().expect("a broken template loads");
    assert_eq!(e.code(), "CHAT_TEMPLATE", "{e}");
}
