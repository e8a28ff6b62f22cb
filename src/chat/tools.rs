//! Tool calls in a model family's own syntax: which one a chat template
//! speaks (told from its source), how calls are read back out of a reply,
//! and the response format that makes a reply a call whose arguments
//! validate against the function's parameters (`tool_choice: "required"` or
//! a named function), after llama.cpp's `common/chat.cpp` for the same
//! families.

use super::{FunctionCall, Message, ToolCall};
use crate::constraint::{with_bounded_whitespace, ResponseFormat};
use crate::Error;
use serde_json::{json, Value};

/// How a template's model writes its calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSyntax {
    /// `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, a block a
    /// call: Hermes 2 Pro and 3, Qwen 2.5, Qwen 3 and their kin.
    Hermes,
    /// One JSON object, `{"name": …, "parameters": {…}}`: Llama 3.1 to 3.3.
    Llama3,
    /// A template that knows no tools (Gemma 3, SmolLM2): the tools are
    /// described in the system message, and the reply is one JSON object,
    /// `{"tool_call": {"name": …, "arguments": {…}}}` or
    /// `{"response": "…"}`, which the reply is held to (as llama.cpp's
    /// generic format).
    Generic,
}

/// What the caller allows: OpenAI's `tool_choice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// Text or calls, as the model likes.
    Auto,
    /// At least one call.
    Required,
    /// A call of this function.
    Function(String),
    /// No call: the tools are not offered.
    None,
}

impl ToolChoice {
    /// OpenAI's `tool_choice`: `"auto"`, `"required"`, `"none"` or
    /// `{"type": "function", "function": {"name": …}}`; absent is auto.
    pub fn from_json(value: Option<&Value>) -> Result<ToolChoice, Error> {
        let bad = || Error::InvalidArgument(format!("tool_choice must be \"auto\", \"required\", \"none\" or {{type: \"function\", function: {{name}}}}, not {}", value.map_or("".into(), Value::to_string)));
        match value {
            None | Some(Value::Null) => Ok(ToolChoice::Auto),
            Some(Value::String(s)) => match s.as_str() {
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                "none" => Ok(ToolChoice::None),
                _ => Err(bad()),
            },
            Some(v) => v["function"]["name"].as_str().map(|n| ToolChoice::Function(n.to_string())).ok_or_else(bad),
        }
    }
}

/// A function the model may call: an OpenAI tool object's name and
/// parameter schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub parameters: Value,
}

impl Tool {
    /// OpenAI's `tools`: `[{type: "function", function: {name, description?, parameters?}}]`.
    pub fn list_from_json(tools: &Value) -> Result<Vec<Tool>, Error> {
        let bad = |why: &str| Error::InvalidArgument(format!("tools: {why}"));
        let list = tools.as_array().ok_or_else(|| bad("must be an array of tool objects"))?;
        list.iter()
            .map(|t| {
                let f = &t["function"];
                let name = f["name"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| bad("every tool needs function.name"))?;
                let parameters = match &f["parameters"] {
                    Value::Null => json!({ "type": "object", "properties": {} }),
                    p if p.is_object() => p.clone(),
                    _ => return Err(bad(&format!("{name}'s parameters must be a JSON schema object"))),
                };
                Ok(Tool { name: name.to_string(), parameters })
            })
            .collect()
    }
}

impl ToolSyntax {
    /// The syntax a template's source asks its model for.
    pub fn of_template(source: &str) -> ToolSyntax {
        if source.contains("<tool_call>") {
            ToolSyntax::Hermes
        } else if source.contains("<|start_header_id|>") && source.contains("\"parameters\"") {
            ToolSyntax::Llama3
        } else {
            ToolSyntax::Generic
        }
    }

    /// The conversation as the template takes it. Earlier calls' arguments
    /// given as a JSON string (as OpenAI returns them) become the object
    /// that templates expect (transformers' documented form). For the
    /// generic syntax, whose template knows no tools: the tools offered in
    /// the system message, earlier calls as the JSON the model wrote, and
    /// their results as user turns `{"tool_response": {"name", "content"}}`.
    pub fn messages(self, messages: &[Message], tools: &[Tool], choice: &ToolChoice) -> Vec<Message> {
        let mut messages = messages.to_vec();
        for call in messages.iter_mut().flat_map(|m| m.tool_calls.iter_mut().flatten()) {
            if let Some(Ok(object @ Value::Object(_))) = call.function.arguments.as_str().map(serde_json::from_str) {
                call.function.arguments = object;
            }
        }
        if self != ToolSyntax::Generic || tools.is_empty() || *choice == ToolChoice::None {
            return messages;
        }
        let schema = serde_json::to_string_pretty(&generic_schema(tools, choice)).expect("JSON serializes");
        let offer = format!(
            "Respond in JSON format, either with `tool_call` (a request to call one of the tools) or with `response` (a reply to the user's request), following this schema:\n{schema}"
        );
        let mut out = Vec::with_capacity(messages.len() + 1);
        match messages.first() {
            Some(m) if m.role == "system" => {
                let content = m.content.as_deref().filter(|c| !c.is_empty()).map_or(offer.clone(), |c| format!("{c}\n\n{offer}"));
                out.push(Message::new("system", content));
            }
            _ => out.push(Message::new("system", offer)),
        }
        let skip = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        for m in &messages[skip..] {
            out.push(match (m.role.as_str(), &m.tool_calls) {
                ("assistant", Some(calls)) if !calls.is_empty() => {
                    let call = |c: &ToolCall| json!({ "name": c.function.name, "arguments": c.function.arguments });
                    let json = match calls.as_slice() {
                        [one] => json!({ "tool_call": call(one) }),
                        many => json!({ "tool_calls": many.iter().map(call).collect::<Vec<_>>() }),
                    };
                    Message::new("assistant", json.to_string())
                }
                ("tool", _) => {
                    let result = json!({ "tool_response": { "name": m.name, "content": m.content } });
                    Message::new("user", result.to_string())
                }
                _ => m.clone(),
            });
        }
        out
    }

    /// The format a reply is held to: for a required or named call, one
    /// call whose arguments follow the function's parameters; for the
    /// generic syntax, its JSON always; `None` where the reply is free.
    pub fn response_format(self, tools: &[Tool], choice: &ToolChoice) -> Result<Option<ResponseFormat>, Error> {
        if tools.is_empty() && *choice == ToolChoice::Auto {
            return Ok(None);
        }
        let callable: Vec<&Tool> = match choice {
            ToolChoice::None => return Ok(None),
            ToolChoice::Function(name) => {
                let tool = tools.iter().find(|t| &t.name == name);
                vec![tool.ok_or_else(|| Error::InvalidArgument(format!("tool_choice names {name}, which is not among the tools")))?]
            }
            _ => tools.iter().collect(),
        };
        if callable.is_empty() && *choice != ToolChoice::Auto {
            return Err(Error::InvalidArgument("tool_choice asks for a call, but there are no tools".into()));
        }
        let call = |args: &str| -> Value {
            let each: Vec<Value> = callable
                .iter()
                .map(|t| {
                    json!({
                        "type": "object",
                        "properties": { "name": { "const": t.name }, args: t.parameters },
                        "required": ["name", args],
                        "additionalProperties": false,
                    })
                })
                .collect();
            json!({ "anyOf": each })
        };
        Ok(match (self, choice) {
            (ToolSyntax::Generic, _) => Some(ResponseFormat::JsonSchema(generic_schema(tools, choice))),
            (_, ToolChoice::Auto) => None,
            (ToolSyntax::Hermes, _) => {
                // Embedded JSON takes the same bounded whitespace as a JSON format.
                let schema = serde_json::to_string(&with_bounded_whitespace(&call("arguments"))).expect("JSON serializes");
                Some(ResponseFormat::Grammar(format!("start: \"<tool_call>\\n\" %json {schema} \"\\n</tool_call>\"")))
            }
            (ToolSyntax::Llama3, _) => Some(ResponseFormat::JsonSchema(call("parameters"))),
        })
    }

    /// A reply's text and the calls in it. A call that does not parse stays
    /// in the text, as the model wrote it.
    pub fn parse(self, reply: &str) -> (String, Vec<ToolCall>) {
        let mut calls = Vec::new();
        let content = match self {
            ToolSyntax::Hermes => {
                let mut content = String::new();
                let mut rest = reply;
                while let Some(start) = rest.find("<tool_call>") {
                    let body = &rest[start + "<tool_call>".len()..];
                    let (inner, after) = match body.find("</tool_call>") {
                        Some(end) => (&body[..end], &body[end + "</tool_call>".len()..]),
                        None => (body, ""),
                    };
                    match call_of(inner, "arguments") {
                        Some(call) => {
                            content.push_str(&rest[..start]);
                            calls.push(call);
                        }
                        None => content.push_str(&rest[..rest.len() - after.len()]),
                    }
                    rest = after;
                }
                content.push_str(rest);
                content.trim().to_string()
            }
            ToolSyntax::Llama3 => {
                let body = reply.trim().trim_start_matches("<|python_tag|>");
                match call_of(body, "parameters").or_else(|| call_of(body, "arguments")) {
                    Some(call) => {
                        calls.push(call);
                        String::new()
                    }
                    None => reply.to_string(),
                }
            }
            ToolSyntax::Generic => {
                let reply_json = serde_json::from_str::<Value>(reply.trim()).ok();
                let listed: Vec<&Value> = match reply_json.as_ref() {
                    Some(Value::Object(o)) => match (o.get("tool_call"), o.get("tool_calls")) {
                        (Some(call), _) => vec![call],
                        (None, Some(Value::Array(many))) => many.iter().collect(),
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let parsed: Option<Vec<ToolCall>> = listed.into_iter().map(|c| call_from(c, "arguments")).collect();
                let response = reply_json.as_ref().and_then(|v| v.get("response")).and_then(Value::as_str);
                match (parsed, response) {
                    (Some(found), _) if !found.is_empty() => {
                        calls = found;
                        String::new()
                    }
                    (_, Some(response)) => response.to_string(),
                    _ => reply.to_string(),
                }
            }
        };
        for (i, call) in calls.iter_mut().enumerate() {
            call.id = Some(format!("call_{i}"));
        }
        (content, calls)
    }
}

/// `{"name": …, <args>: {…}}` as a call; `None` if it is not one.
fn call_of(text: &str, args: &str) -> Option<ToolCall> {
    call_from(&serde_json::from_str(text.trim()).ok()?, args)
}

fn call_from(v: &Value, args: &str) -> Option<ToolCall> {
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = v.get(args).cloned().unwrap_or_else(|| json!({}));
    arguments.is_object().then(|| ToolCall { id: None, kind: "function".into(), function: FunctionCall { name, arguments } })
}

/// The generic syntax's reply: a call of one of the tools, or (unless a
/// call is required) a response.
fn generic_schema(tools: &[Tool], choice: &ToolChoice) -> Value {
    let callable = tools.iter().filter(|t| match choice {
        ToolChoice::Function(name) => &t.name == name,
        _ => true,
    });
    let call = json!({
        "type": "object",
        "properties": {
            "tool_call": {
                "anyOf": callable.map(|t| json!({
                    "type": "object",
                    "properties": { "name": { "const": t.name }, "arguments": t.parameters },
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                })).collect::<Vec<_>>()
            }
        },
        "required": ["tool_call"],
        "additionalProperties": false,
    });
    let response = json!({
        "type": "object",
        "properties": { "response": { "type": "string" } },
        "required": ["response"],
        "additionalProperties": false,
    });
    match choice {
        ToolChoice::Auto | ToolChoice::None => json!({ "anyOf": [call, response] }),
        _ => call,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(calls: &[ToolCall]) -> Vec<(&str, String)> {
        calls.iter().map(|c| (c.function.name.as_str(), c.function.arguments.to_string())).collect()
    }

    #[test]
    fn hermes_calls_are_read_out_of_the_text() {
        let reply = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>";
        let (content, calls) = ToolSyntax::Hermes.parse(reply);
        assert_eq!(content, "Let me check.");
        assert_eq!(names(&calls), [("get_weather", r#"{"city":"Paris"}"#.into()), ("now", "{}".into())]);
        assert_eq!(calls[1].id.as_deref(), Some("call_1"));
        // What does not parse stays as written.
        let broken = "<tool_call>{\"name\": \"x\", \"arguments\": [1]}</tool_call> after";
        assert_eq!(ToolSyntax::Hermes.parse(broken), (broken.to_string(), vec![]));
        assert_eq!(ToolSyntax::Hermes.parse("Just text."), ("Just text.".into(), vec![]));
    }

    #[test]
    fn llama3_and_generic_calls_are_whole_json_replies() {
        let (content, calls) = ToolSyntax::Llama3.parse("<|python_tag|>{\"name\": \"f\", \"parameters\": {\"a\": 1}}");
        assert_eq!((content.as_str(), names(&calls)), ("", vec![("f", r#"{"a":1}"#.into())]));
        assert_eq!(ToolSyntax::Llama3.parse("Hello {there}").1, vec![]);
        let (_, calls) = ToolSyntax::Generic.parse(r#"{"tool_call": {"name": "f", "arguments": {"b": true}}}"#);
        assert_eq!(names(&calls), [("f", r#"{"b":true}"#.into())]);
        let (_, calls) = ToolSyntax::Generic.parse(r#"{"tool_calls": [{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]}"#);
        assert_eq!(calls.len(), 2);
        assert_eq!(ToolSyntax::Generic.parse(r#"{"response": "Hi!"}"#), ("Hi!".into(), vec![]));
        assert_eq!(ToolSyntax::Generic.parse("not json").0, "not json");
    }

    #[test]
    fn templates_tell_their_syntax() {
        assert_eq!(ToolSyntax::of_template("{{ '<tool_call>\\n' }}"), ToolSyntax::Hermes);
        assert_eq!(ToolSyntax::of_template("<|start_header_id|>{{ '\"parameters\": ' }}"), ToolSyntax::Llama3);
        assert_eq!(ToolSyntax::of_template("<start_of_turn>user"), ToolSyntax::Generic);
    }

    #[test]
    fn choices_and_tools_read_as_openai_spells_them() {
        assert_eq!(ToolChoice::from_json(None).unwrap(), ToolChoice::Auto);
        assert_eq!(ToolChoice::from_json(Some(&json!("required"))).unwrap(), ToolChoice::Required);
        let named = json!({ "type": "function", "function": { "name": "f" } });
        assert_eq!(ToolChoice::from_json(Some(&named)).unwrap(), ToolChoice::Function("f".into()));
        assert_eq!(ToolChoice::from_json(Some(&json!("always"))).unwrap_err().code(), "INVALID_ARGUMENT");
        let tools = Tool::list_from_json(&json!([{ "type": "function", "function": { "name": "f" } }])).unwrap();
        assert_eq!(tools[0].parameters, json!({ "type": "object", "properties": {} }));
        for bad in [json!({}), json!([{ "function": {} }]), json!([{ "function": { "name": "f", "parameters": 3 } }])] {
            assert_eq!(Tool::list_from_json(&bad).unwrap_err().code(), "INVALID_ARGUMENT", "{bad}");
        }
        let e = ToolSyntax::Hermes.response_format(&tools, &ToolChoice::Function("g".into())).unwrap_err();
        assert!(e.to_string().contains("not among the tools"), "{e}");
        assert_eq!(ToolSyntax::Hermes.response_format(&tools, &ToolChoice::Auto).unwrap(), None);
        assert_eq!(ToolSyntax::Hermes.response_format(&[], &ToolChoice::Required).unwrap_err().code(), "INVALID_ARGUMENT");
    }

    #[test]
    fn the_generic_syntax_offers_tools_in_the_system_message_and_replays_calls_as_json() {
        let tools = vec![Tool { name: "f".into(), parameters: json!({ "type": "object" }) }];
        let call = ToolCall { id: Some("1".into()), kind: "function".into(), function: FunctionCall { name: "f".into(), arguments: json!({}) } };
        let messages = vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Do f."),
            Message { role: "assistant".into(), tool_calls: Some(vec![call]), ..Default::default() },
            Message { role: "tool".into(), name: Some("f".into()), content: Some("42".into()), ..Default::default() },
        ];
        let out = ToolSyntax::Generic.messages(&messages, &tools, &ToolChoice::Auto);
        let system = out[0].content.as_deref().unwrap();
        assert!(system.starts_with("Be brief.\n\nRespond in JSON format") && system.contains("\"const\": \"f\""), "{system}");
        assert_eq!(out[2].content.as_deref(), Some(r#"{"tool_call":{"name":"f","arguments":{}}}"#));
        assert_eq!((out[3].role.as_str(), out[3].content.as_deref()), ("user", Some(r#"{"tool_response":{"name":"f","content":"42"}}"#)));
        assert_eq!(ToolSyntax::Hermes.messages(&messages, &tools, &ToolChoice::Auto), messages);
        // OpenAI's JSON-string arguments reach the template as the object.
        let mut openai = messages.clone();
        openai[2].tool_calls.as_mut().unwrap()[0].function.arguments = json!("{\"x\": 1}");
        let out = ToolSyntax::Hermes.messages(&openai, &tools, &ToolChoice::Auto);
        assert_eq!(out[2].tool_calls.as_ref().unwrap()[0].function.arguments, json!({ "x": 1 }));
    }
}
