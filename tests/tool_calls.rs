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
    let render_control_tokens = s.tool_syntax().unwrap().renders_control_tokens();
    let options = GenerateOptions {
        max_tokens: 300,
        response_format: format,
        render_control_tokens,
        ..GenerateOptions::default()
    };
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
    let tool = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}"));
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
        ("mistralai-Mistral-Nemo-Instruct-2407.jinja", ToolSyntax::MistralNemo),
        ("Mistral-Small-3.2-24B-Instruct-2506.jinja", ToolSyntax::Mistral { call_ids: true }),
        ("unsloth-mistral-Devstral-Small-2507.jinja", ToolSyntax::Mistral { call_ids: false }),
        ("meetkai-functionary-medium-v3.1.jinja", ToolSyntax::FunctionaryV31),
        ("meetkai-functionary-medium-v3.2.jinja", ToolSyntax::FunctionaryV32),
    ] {
        let mut s = session(template);
        assert_eq!(s.tool_syntax().unwrap(), syntax, "{template}");
        let (_, calls, prompt) = reply(&mut s, &ToolChoice::Required);
        assert!(
            prompt.contains("get_weather") && prompt.contains("fahrenheit"),
            "{template}: the tools are not in the prompt:\n{prompt}"
        );
        // Each syntax's own instructions, from the template or (generic) ours.
        let marker = match syntax {
            ToolSyntax::Hermes => "<tool_call>",
            ToolSyntax::Llama3 => "\"parameters\"",
            ToolSyntax::Generic => "Respond in JSON format",
            ToolSyntax::MistralNemo | ToolSyntax::Mistral { .. } => "[AVAILABLE_TOOLS]",
            ToolSyntax::FunctionaryV31 => "<function=example_function_name>",
            ToolSyntax::FunctionaryV32 => "Available functions:",
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

/// Mistral's templates refuse call ids that are not 9 letters and digits;
/// OpenAI's (`call_…`) reach them as such ids, the same for a call and its
/// result.
#[test]
fn openai_call_ids_reach_mistral_templates_as_theirs() {
    let call = serde_json::from_value::<webslm::ToolCall>(
        json!({ "id": "call_mxddmkcdzdtmly_0", "type": "function", "function": { "name": "get_time", "arguments": "{\"zone\": \"UTC\"}" } }),
    )
    .unwrap();
    let messages = [
        Message::new("user", "What time is it?"),
        Message { role: "assistant".into(), tool_calls: Some(vec![call]), ..Default::default() },
        Message {
            role: "tool".into(),
            tool_call_id: Some("call_mxddmkcdzdtmly_0".into()),
            name: Some("get_time".into()),
            content: Some("12:00".into()),
            ..Default::default()
        },
    ];
    for template in ["mistralai-Mistral-Nemo-Instruct-2407.jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja"] {
        let s = session(template);
        let (prompt, _) =
            s.tool_chat_tokens(&messages, &tools(), &ToolChoice::Auto).unwrap_or_else(|e| panic!("{template}: {e}"));
        let text = s.detokenize(&prompt);
        let after = ["\"id\": \"", "[CALL_ID]"].iter().find_map(|m| text.split_once(m)).map(|(_, after)| after);
        let id = after.and_then(|a| a.get(..9)).unwrap_or_else(|| panic!("{template}: no call id in {text}"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{template}: {id}");
        assert_eq!(text.matches(id).count(), 2, "{template}: the call's id and its result's: {text}");
        assert!(!text.contains("call_mxddmkcdzdtmly_0"), "{text}");
    }
}

/// Functionary v3.2's template writes a call's arguments as a string (the
/// others want the object): given either way, they reach it as JSON text.
#[test]
fn functionary_v3_2_takes_earlier_calls_arguments_as_text() {
    let s = session("meetkai-functionary-medium-v3.2.jinja");
    for arguments in [json!("{\"zone\": \"UTC\"}"), json!({ "zone": "UTC" })] {
        let call = webslm::ToolCall {
            id: Some("call_1".into()),
            kind: "function".into(),
            function: webslm::FunctionCall { name: "get_time".into(), arguments },
        };
        let messages = [
            Message::new("user", "What time is it?"),
            Message { role: "assistant".into(), tool_calls: Some(vec![call]), ..Default::default() },
            Message { role: "tool".into(), name: Some("get_time".into()), content: Some("12:00".into()), ..Default::default() },
        ];
        let (prompt, _) = s.tool_chat_tokens(&messages, &tools(), &ToolChoice::Auto).unwrap();
        let text = s.detokenize(&prompt);
        assert!(text.contains(">>>get_time\n{\"zone\":") && text.contains("UTC"), "{text}");
    }
}

/// Where the vocabulary has a syntax's marker as a control token, the
/// grammar asks for that token by id (`<[id]>`), and the reply, its control
/// tokens rendered, shows it: here Qwen's `<|im_start|>` stands in for
/// Mistral's `[TOOL_CALLS]`, which Qwen's vocabulary lacks.
#[test]
fn a_control_token_in_a_grammar_is_that_token_and_shows_in_the_reply() {
    let mut s = session("Qwen-Qwen2.5-7B-Instruct.jinja");
    let id = match s.tokenize("<|im_start|>", false).unwrap().as_slice() {
        &[id] => id,
        other => panic!("<|im_start|> is {other:?}"),
    };
    let format = webslm::constraint::ResponseFormat::Grammar(format!("start: <[{id}]> \"yes\""));
    for render_control_tokens in [true, false] {
        let options = GenerateOptions {
            max_tokens: 20,
            response_format: Some(format.clone()),
            render_control_tokens,
            ..GenerateOptions::default()
        };
        let pieces: Vec<_> = s.generate_text("Say yes", options).unwrap().collect();
        assert_eq!(pieces[0].token, id);
        let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(text, if render_control_tokens { "<|im_start|>yes" } else { "yes" });
    }
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
