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
    /// Mistral's 2407 form (Nemo): `[TOOL_CALLS]` and a JSON array of
    /// `{"name": …, "arguments": {…}, "id": …}`.
    MistralNemo,
    /// Mistral's later form (Small 3.1 and 3.2, Devstral, Ministral):
    /// `[TOOL_CALLS]name[ARGS]{…}` a call, with `[CALL_ID]id` before
    /// `[ARGS]` where the template writes ids.
    Mistral { call_ids: bool },
    /// Functionary v3.1 (Llama 3.1): `<function=name>{…}</function>`.
    FunctionaryV31,
    /// Functionary v3.2: after the prompt's `>>>`, a recipient and a line
    /// break, then its text (`all`: the reply to the user) or a call's
    /// arguments (a function's name); `>>>` before each next.
    FunctionaryV32,
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
        let bad = || {
            Error::InvalidArgument(format!("tool_choice must be \"auto\", \"required\", \"none\" or {{type: \"function\", function: {{name}}}}, not {}", value.map_or("".into(), Value::to_string)))
        };
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
                let name = f["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| bad("every tool needs function.name"))?;
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
        } else if source.contains("[TOOL_CALLS]") {
            match source.contains("[ARGS]") {
                true => ToolSyntax::Mistral { call_ids: source.contains("[CALL_ID]") },
                false => ToolSyntax::MistralNemo,
            }
        } else if source.contains(">>>all") {
            ToolSyntax::FunctionaryV32
        } else if source.contains("<function=") {
            ToolSyntax::FunctionaryV31
        } else if source.contains("<|start_header_id|>") && source.contains("\"parameters\"") {
            ToolSyntax::Llama3
        } else {
            ToolSyntax::Generic
        }
    }

    /// Whether a reply's control tokens are to be rendered for [`ToolSyntax::read`]:
    /// Mistral's markers are control tokens.
    pub fn renders_control_tokens(self) -> bool {
        // Functionary's markers are text.
        matches!(self, ToolSyntax::MistralNemo | ToolSyntax::Mistral { .. })
    }

    /// The conversation as the template takes it. Earlier calls' arguments
    /// given as a JSON string (as OpenAI returns them) become the object
    /// that templates expect (transformers' documented form). Mistral's
    /// templates take only ids of 9 letters and digits: others (OpenAI's
    /// `call_…`) are replaced by one made from them, the same for a call
    /// and its result. For the
    /// generic syntax, whose template knows no tools: the tools offered in
    /// the system message, earlier calls as the JSON the model wrote, and
    /// their results as user turns `{"tool_response": {"name", "content"}}`.
    pub fn messages(self, messages: &[Message], tools: &[Tool], choice: &ToolChoice) -> Vec<Message> {
        let mut messages = messages.to_vec();
        for call in messages.iter_mut().flat_map(|m| m.tool_calls.iter_mut().flatten()) {
            if self == ToolSyntax::FunctionaryV32 {
                // Its template writes the arguments as a string.
                if call.function.arguments.is_object() {
                    call.function.arguments = Value::String(call.function.arguments.to_string());
                }
            } else if let Some(Ok(object @ Value::Object(_))) =
                call.function.arguments.as_str().map(serde_json::from_str)
            {
                call.function.arguments = object;
            }
        }
        if self.renders_control_tokens() {
            for m in &mut messages {
                for call in m.tool_calls.iter_mut().flatten() {
                    call.id = call.id.as_deref().map(mistral_id);
                }
                m.tool_call_id = m.tool_call_id.as_deref().map(mistral_id);
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
                let content =
                    m.content.as_deref().filter(|c| !c.is_empty()).map_or(offer.clone(), |c| format!("{c}\n\n{offer}"));
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
    /// `control` gives the id of a control token, by its text, where the
    /// vocabulary has it (Mistral's markers; otherwise they are spelled).
    pub fn response_format(
        self,
        tools: &[Tool],
        choice: &ToolChoice,
        control: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Option<ResponseFormat>, Error> {
        if tools.is_empty() && *choice == ToolChoice::Auto {
            return Ok(None);
        }
        let callable: Vec<&Tool> = match choice {
            ToolChoice::None => return Ok(None),
            ToolChoice::Function(name) => {
                let tool = tools.iter().find(|t| &t.name == name);
                vec![tool.ok_or_else(|| {
                    Error::InvalidArgument(format!("tool_choice names {name}, which is not among the tools"))
                })?]
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
                let schema =
                    serde_json::to_string(&with_bounded_whitespace(&call("arguments"))).expect("JSON serializes");
                Some(ResponseFormat::Grammar(format!("start: \"<tool_call>\\n\" %json {schema} \"\\n</tool_call>\"")))
            }
            (ToolSyntax::Llama3, _) => Some(ResponseFormat::JsonSchema(call("parameters"))),
            (ToolSyntax::FunctionaryV31 | ToolSyntax::FunctionaryV32, _) => {
                let (open, between, close) = if self == ToolSyntax::FunctionaryV31 {
                    ("<function=", ">", "</function>")
                } else {
                    ("", "\n", "")
                };
                let each: Vec<String> = callable
                    .iter()
                    .map(|tool| {
                        let schema =
                            serde_json::to_string(&with_bounded_whitespace(&tool.parameters)).expect("JSON serializes");
                        let head =
                            serde_json::to_string(&format!("{open}{}{between}", tool.name)).expect("JSON serializes");
                        format!("{head} %json {schema}")
                    })
                    .collect();
                let close = if close.is_empty() { String::new() } else { format!(" \"{close}\"") };
                Some(ResponseFormat::Grammar(format!("start: call{close}\ncall: {}", each.join(" | "))))
            }
            (ToolSyntax::MistralNemo, _) => {
                let mut calls = call("arguments");
                for each in calls["anyOf"].as_array_mut().expect("anyOf is a list") {
                    each["properties"]["id"] = json!({ "type": "string", "pattern": "^[a-zA-Z0-9]{9}$" });
                    each["required"] = json!(["name", "arguments", "id"]);
                }
                let array =
                    with_bounded_whitespace(&json!({ "type": "array", "items": calls, "minItems": 1, "maxItems": 1 }));
                let schema = serde_json::to_string(&array).expect("JSON serializes");
                Some(ResponseFormat::Grammar(format!("start: {} %json {schema}", marker(control, "[TOOL_CALLS]"))))
            }
            (ToolSyntax::Mistral { call_ids }, _) => {
                let id = if call_ids {
                    format!("{} /[a-zA-Z0-9]{{9}}/ ", marker(control, "[CALL_ID]"))
                } else {
                    String::new()
                };
                let args = marker(control, "[ARGS]");
                let mut grammar = format!("start: {} call\ncall: ", marker(control, "[TOOL_CALLS]"));
                for (i, tool) in callable.iter().enumerate() {
                    let schema =
                        serde_json::to_string(&with_bounded_whitespace(&tool.parameters)).expect("JSON serializes");
                    let name = serde_json::to_string(&tool.name).expect("JSON serializes");
                    grammar += &format!("{}{name} {id}{args} %json {schema}", if i > 0 { " | " } else { "" });
                }
                Some(ResponseFormat::Grammar(grammar))
            }
        })
    }

    /// A reply's text and the calls in it, each call's arguments parsed. A
    /// call that does not parse stays in the text, as the model wrote it.
    pub fn parse(self, reply: &str) -> (String, Vec<ToolCall>) {
        let Reading { content, calls } = self.read(reply, true);
        let calls = calls
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: Some(format!("call_{i}")),
                kind: "function".into(),
                function: FunctionCall {
                    name: c.name,
                    arguments: serde_json::from_str(&c.arguments).expect("a whole call's arguments are checked JSON"),
                },
            })
            .collect();
        (content, calls)
    }

    /// What a reply says so far, for streaming it: the text, and each call
    /// once its name is known, with its arguments as the model has written
    /// them up to now. While the reply goes on (`done` false), text that
    /// may be the start of a call is held back, and each reading extends
    /// the one before it, so that the difference is the delta to send.
    /// `done` reads the whole reply, where only a call that parses is a
    /// call ([`ToolSyntax::parse`]); a call that is cut off or broken stays
    /// in the text as written. (Streamed, such a call has already been
    /// sent: a model held to a format by `tool_choice` never writes one.)
    pub fn read(self, reply: &str, done: bool) -> Reading {
        match self {
            ToolSyntax::Hermes => read_tagged(reply, ("<tool_call>", "</tool_call>"), done, |body, whole| {
                read_call(body, "arguments", whole)
            }),
            ToolSyntax::Llama3 => {
                let tag = "<|python_tag|>";
                let start = reply.trim_start();
                let body = start.strip_prefix(tag).unwrap_or(start);
                let could_be_call =
                    body.trim_start().starts_with('{') || (!done && (body.trim().is_empty() || tag.starts_with(start)));
                let call = could_be_call
                    .then(|| read_call(body, "parameters", done).or_else(|| read_call(body, "arguments", done)))
                    .flatten();
                match call {
                    Some(call) => Reading { content: String::new(), calls: vec![call] },
                    None if could_be_call && !done => Reading::default(),
                    None => Reading { content: reply.to_string(), calls: Vec::new() },
                }
            }
            ToolSyntax::FunctionaryV31 => read_tagged(reply, ("<function=", "</function>"), done, |body, whole| {
                let (name, args) = body.split_once('>')?;
                // Cut off before its arguments begin, not yet a call.
                let arguments = read_args(args, whole).filter(|a| whole || !a.is_empty())?;
                Some(RawCall { name: name.to_string(), arguments })
            }),
            ToolSyntax::FunctionaryV32 => {
                let mut reading = Reading::default();
                let mut rest = reply;
                loop {
                    let (segment, next) = match rest.find(">>>") {
                        Some(at) => (&rest[..at], Some(&rest[at + 3..])),
                        None if done => (rest, None),
                        None => (&rest[..rest.len() - partial_suffix(rest, ">>>")], None),
                    };
                    let last = next.is_none();
                    let Some((recipient, body)) = segment.split_once('\n') else {
                        // No recipient yet; whole, a reply that ignored the format.
                        if done && !segment.trim().is_empty() {
                            return Reading { content: reply.trim().to_string(), calls: Vec::new() };
                        }
                        break;
                    };
                    if recipient.trim() == "all" {
                        reading.content.push_str(body);
                    } else {
                        match read_args(body, done || !last) {
                            Some(arguments) => {
                                reading.calls.push(RawCall { name: recipient.trim().to_string(), arguments })
                            }
                            None if done => return Reading { content: reply.trim().to_string(), calls: Vec::new() },
                            // Not JSON while the reply goes on: the call, sent
                            // once its name was, stays with what of its
                            // arguments there was, and nothing after it is
                            // read (whole, the reply is text).
                            None => {
                                let arguments = read_args(body, false).unwrap_or_default();
                                reading.calls.push(RawCall { name: recipient.trim().to_string(), arguments });
                                break;
                            }
                        }
                    }
                    match next {
                        Some(next) => rest = next,
                        None => break,
                    }
                }
                reading.content = reading.content.trim().to_string();
                reading
            }
            ToolSyntax::MistralNemo => read_marked_array(reply, "[TOOL_CALLS]", done),
            ToolSyntax::Mistral { .. } => {
                let mark = "[TOOL_CALLS]";
                let Some(start) = reply.find(mark) else {
                    let shown = if done { reply } else { &reply[..reply.len() - partial_suffix(reply, mark)] };
                    return Reading { content: shown.trim().to_string(), calls: Vec::new() };
                };
                let content = reply[..start].trim().to_string();
                match read_mistral_calls(&reply[start + mark.len()..], done) {
                    Some(calls) => Reading { content, calls },
                    None => Reading { content: reply.trim().to_string(), calls: Vec::new() },
                }
            }
            ToolSyntax::Generic => {
                let whole = || Reading { content: reply.to_string(), calls: Vec::new() };
                if done && serde_json::from_str::<Value>(reply).is_err() {
                    return whole();
                }
                let members = object_members(reply.trim());
                // While the reply goes on, a member is read as far as it goes
                // even once it is whole: should it prove broken, a reading
                // that drops it would undo what was streamed.
                let read = match members.first() {
                    Some(m) if m.key == "response" => json_string_prefix(m.value, m.complete && done)
                        .map(|text| Reading { content: text, calls: Vec::new() }),
                    Some(m) if m.key == "tool_call" => read_call(m.value, "arguments", m.complete && done)
                        .map(|call| Reading { content: String::new(), calls: vec![call] }),
                    Some(m) if m.key == "tool_calls" => {
                        read_call_array(m.value, done).map(|calls| Reading { content: String::new(), calls })
                    }
                    _ => None,
                };
                match read {
                    Some(read) => read,
                    None if done => whole(),
                    None => Reading::default(),
                }
            }
        }
    }
}

/// A reply read so far ([`ToolSyntax::read`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub content: String,
    pub calls: Vec<RawCall>,
}

/// A call as written: its name, and its arguments' JSON text as the model
/// wrote it (a prefix of it while the reply goes on).
#[derive(Clone, Debug, PartialEq)]
pub struct RawCall {
    pub name: String,
    pub arguments: String,
}

/// Calls between `open` and `close` tags, text around them (Hermes'
/// `<tool_call>`, Functionary v3.1's `<function=`). `call` reads what is
/// between them, whole or cut off. A block whose call does not parse stays
/// in the text; one cut off is held back until it is told.
fn read_tagged(
    reply: &str,
    (open, close): (&str, &str),
    done: bool,
    call: impl Fn(&str, bool) -> Option<RawCall>,
) -> Reading {
    let mut reading = Reading::default();
    let mut rest = reply;
    while let Some(start) = rest.find(open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(close) else {
            // What may be the close tag coming is not the call's.
            let body = if done { body } else { &body[..body.len() - partial_suffix(body, close)] };
            match call(body, done) {
                Some(call) => {
                    reading.content.push_str(&rest[..start]);
                    reading.calls.push(call);
                    rest = "";
                }
                None if done => {}
                // Not yet a call, perhaps never: held back (what comes
                // before it is text, even if it ends as the tag begins).
                None => {
                    reading.content.push_str(&rest[..start]);
                    rest = "";
                }
            }
            break;
        };
        match call(&body[..end], true) {
            Some(call) => {
                reading.content.push_str(&rest[..start]);
                reading.calls.push(call);
            }
            None => match (!done).then(|| call(&body[..end], false)).flatten() {
                // Broken while the reply goes on: the call stays as it was
                // sent, and nothing after it is read (whole, it is text).
                Some(call) => {
                    reading.content.push_str(&rest[..start]);
                    reading.calls.push(call);
                    rest = "";
                    break;
                }
                None => reading.content.push_str(&rest[..start + open.len() + end + close.len()]),
            },
        }
        rest = &body[end + close.len()..];
    }
    if !done {
        rest = &rest[..rest.len() - partial_suffix(rest, open)];
    }
    reading.content.push_str(rest);
    reading.content = reading.content.trim().to_string();
    reading
}

/// Calls as a JSON array of `{"name", "arguments"}` after `mark`, text
/// before it (Mistral Nemo's `[TOOL_CALLS]`).
/// Whole (`done`), the array must parse and hold only calls, or the reply
/// is all text.
fn read_marked_array(reply: &str, mark: &str, done: bool) -> Reading {
    let Some(start) = reply.find(mark) else {
        let shown = if done { reply } else { &reply[..reply.len() - partial_suffix(reply, mark)] };
        return Reading { content: shown.trim().to_string(), calls: Vec::new() };
    };
    let body = &reply[start + mark.len()..];
    // Whole, nothing may follow the array either.
    match read_call_array(body.trim(), done).filter(|_| !done || serde_json::from_str::<Vec<Value>>(body).is_ok()) {
        Some(calls) => Reading { content: reply[..start].trim().to_string(), calls },
        None => Reading { content: reply.trim().to_string(), calls: Vec::new() },
    }
}

/// The calls in a JSON array of `{"name", "arguments"}` that `text` starts:
/// whole (`done`), every item must be a call, and there must be one; cut
/// off, the calls so far.
fn read_call_array(text: &str, done: bool) -> Option<Vec<RawCall>> {
    let items = array_items(text);
    // While the reply goes on, an item is read as far as it goes even once
    // it is whole: should it prove broken, dropping it would undo what was sent.
    let calls: Vec<RawCall> =
        items.iter().map_while(|&(item, whole)| read_call(item, "arguments", whole && done)).collect();
    let all = calls.len() == items.len() && !calls.is_empty();
    (all || !done).then_some(calls)
}

/// A call's arguments as written: whole (`complete`), a JSON object and
/// nothing after it; cut off, what there is of one so far.
fn read_args(text: &str, complete: bool) -> Option<String> {
    let text = text.trim();
    if complete {
        return serde_json::from_str::<serde_json::Map<String, Value>>(text).is_ok().then(|| text.to_string());
    }
    // What follows a whole object is not the arguments (a close tag, say).
    (text.is_empty() || text.starts_with('{')).then(|| text[..value_len(text).unwrap_or(text.len())].to_string())
}

/// Mistral's later calls after the first `[TOOL_CALLS]`:
/// `name[CALL_ID]id[ARGS]{…}`, `[TOOL_CALLS]` again (or not) before each
/// next. Whole (`done`), every call's arguments must be a JSON object, or
/// the reply is not calls (`None`); cut off, a call once its `[ARGS]` (or
/// `[CALL_ID]`) shows its name.
fn read_mistral_calls(body: &str, done: bool) -> Option<Vec<RawCall>> {
    let mut calls = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start();
        rest = rest.strip_prefix("[TOOL_CALLS]").unwrap_or(rest);
        if rest.is_empty() {
            return (!done || !calls.is_empty()).then_some(calls);
        }
        let name_end = [rest.find("[CALL_ID]"), rest.find("[ARGS]")].into_iter().flatten().min();
        let Some(name_end) = name_end else { return (!done).then_some(calls) };
        let name = rest[..name_end].trim().to_string();
        let Some(args_at) = rest.find("[ARGS]") else {
            calls.push(RawCall { name, arguments: String::new() });
            return (!done).then_some(calls);
        };
        let args = rest[args_at + "[ARGS]".len()..].trim_start();
        match value_len(args) {
            Some(len) if serde_json::from_str::<serde_json::Map<String, Value>>(&args[..len]).is_ok() => {
                calls.push(RawCall { name, arguments: args[..len].to_string() });
                rest = &args[len..];
            }
            // Broken while the reply goes on: the call stays as it was
            // sent, and nothing after it is read (whole, it is text).
            Some(len) if !done => {
                calls.push(RawCall { name, arguments: args[..len].to_string() });
                return Some(calls);
            }
            Some(_) => return None,
            None if done => return None,
            None => {
                calls.push(RawCall { name, arguments: args.trim_end().to_string() });
                return Some(calls);
            }
        }
    }
}

/// A control token as a Lark grammar atom: by id where the vocabulary has
/// it, else its text spelled.
fn marker(control: &dyn Fn(&str) -> Option<u32>, text: &str) -> String {
    control(text).map_or_else(|| format!("\"{text}\""), |id| format!("<[{id}]>"))
}

/// A call id of 9 letters and digits, as Mistral's templates require: `id`
/// itself where it is one, else one made from it (FNV-1a, in base 62).
fn mistral_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    let mut hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..9)
        .map(|_| {
            let d = digits[(hash % 62) as usize] as char;
            hash /= 62;
            d
        })
        .collect()
}

/// `{"name": …, <args>: {…}}` as a call. Whole (`complete`), it must parse,
/// with an object for arguments (absent: `{}`); cut off, it is a call once
/// its name is known, with the arguments written so far.
fn read_call(text: &str, args: &str, complete: bool) -> Option<RawCall> {
    let text = text.trim();
    if complete {
        let value: Value = serde_json::from_str(text).ok()?;
        let name = value.get("name")?.as_str()?.to_string();
        let arguments = match value.get(args) {
            None => "{}".to_string(),
            Some(Value::Object(_)) => object_members(text).into_iter().find(|m| m.key == args)?.value.to_string(),
            Some(_) => return None,
        };
        return Some(RawCall { name, arguments });
    }
    let members = object_members(text);
    let name = members
        .iter()
        .find(|m| m.key == "name" && m.complete)
        .and_then(|m| serde_json::from_str::<String>(m.value).ok())?;
    let arguments = members.iter().find(|m| m.key == args).map_or("", |m| m.value);
    Some(RawCall { name, arguments: arguments.to_string() })
}

/// One member of a JSON object as written: its key, and its value's text
/// (all there is of it, where it is cut off).
struct Member<'a> {
    key: String,
    value: &'a str,
    complete: bool,
}

/// The members of the JSON object that `text` starts, as far as it goes
/// (it may be cut off anywhere); none if it does not start one.
fn object_members(text: &str) -> Vec<Member<'_>> {
    let mut members = Vec::new();
    let Some(mut rest) = text.strip_prefix('{') else { return members };
    loop {
        rest = rest.trim_start();
        let Some(key_len) = value_len(rest).filter(|_| rest.starts_with('"')) else { return members };
        let Ok(key) = serde_json::from_str::<String>(&rest[..key_len]) else { return members };
        rest = rest[key_len..].trim_start();
        let Some(after) = rest.strip_prefix(':') else { return members };
        rest = after.trim_start();
        if rest.is_empty() {
            return members;
        }
        let Some(len) = value_len(rest) else {
            members.push(Member { key, value: rest.trim_end(), complete: false });
            return members;
        };
        members.push(Member { key, value: &rest[..len], complete: true });
        match rest[len..].trim_start().strip_prefix(',') {
            Some(after) => rest = after,
            None => return members,
        }
    }
}

/// The items of the JSON array that `text` starts, as far as it goes, each
/// with whether it is whole.
fn array_items(text: &str) -> Vec<(&str, bool)> {
    let mut items = Vec::new();
    let Some(mut rest) = text.strip_prefix('[') else { return items };
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest.starts_with(']') {
            return items;
        }
        let Some(len) = value_len(rest) else {
            items.push((rest.trim_end(), false));
            return items;
        };
        items.push((&rest[..len], true));
        match rest[len..].trim_start().strip_prefix(',') {
            Some(after) => rest = after,
            None => return items,
        }
    }
}

/// The length of the JSON value that `text` starts, if it ends within
/// `text`: brackets and strings are followed, not checked. A number or a
/// literal ends at the first byte that cannot be part of it.
fn value_len(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 && !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')) => {
                return (i > 0).then_some(i)
            }
            _ => {}
        }
    }
    None
}

/// The text of the JSON string that `value` starts, as far as it goes:
/// short of an escape that is cut off, or of anything JSON does not allow
/// (from there on the string can only be broken, and stays where it was, so
/// that a longer prefix never reads as less); whole (`complete`), it must
/// parse.
fn json_string_prefix(value: &str, complete: bool) -> Option<String> {
    if complete {
        return serde_json::from_str(value).ok();
    }
    let mut rest = value.strip_prefix('"')?;
    let mut text = String::new();
    let hex = |s: &str| {
        s.get(..4).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())).and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    while let Some(c) = rest.chars().next() {
        let (decoded, len) = match c {
            '"' | '\u{0}'..='\u{1f}' => break,
            '\\' => match rest.as_bytes().get(1) {
                Some(b'"') => ('"', 2),
                Some(b'\\') => ('\\', 2),
                Some(b'/') => ('/', 2),
                Some(b'b') => ('\u{8}', 2),
                Some(b'f') => ('\u{c}', 2),
                Some(b'n') => ('\n', 2),
                Some(b'r') => ('\r', 2),
                Some(b't') => ('\t', 2),
                Some(b'u') => {
                    let Some(high) = hex(&rest[2..]) else { break };
                    match high {
                        0xd800..=0xdbff => {
                            // A pair: `\uD83D\uDE00`.
                            let low = rest.get(6..8).filter(|&u| u == "\\u").and_then(|_| hex(&rest[8..]));
                            match low {
                                Some(low @ 0xdc00..=0xdfff) => (
                                    char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)).expect("a pair"),
                                    12,
                                ),
                                _ => break,
                            }
                        }
                        0xdc00..=0xdfff => break,
                        _ => (char::from_u32(high).expect("not a surrogate"), 6),
                    }
                }
                _ => break,
            },
            c => (c, c.len_utf8()),
        };
        text.push(decoded);
        rest = &rest[len..];
    }
    Some(text)
}

/// How many bytes at the end of `text` begin `marker` (and may yet become it).
fn partial_suffix(text: &str, marker: &str) -> usize {
    (1..marker.len()).rev().find(|&n| text.ends_with(&marker[..n])).unwrap_or(0)
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
        let (_, calls) = ToolSyntax::Generic
            .parse(r#"{"tool_calls": [{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]}"#);
        assert_eq!(calls.len(), 2);
        assert_eq!(ToolSyntax::Generic.parse(r#"{"response": "Hi!"}"#), ("Hi!".into(), vec![]));
        assert_eq!(ToolSyntax::Generic.parse("not json").0, "not json");
    }

    /// Replies that prove broken as they grow (found by fuzz/'s tool_calls
    /// target): no reading takes back what an earlier one showed, though the
    /// whole reply may then read as text.
    #[test]
    fn a_reply_that_proves_broken_takes_nothing_back() {
        let cases = [
            // An escape JSON does not have; a lone surrogate.
            (ToolSyntax::Generic, "{\"response\": \"Caf\\u00e. more\"}"),
            (ToolSyntax::Generic, "{\"response\": \"Caf\\u00e9 \\ud83d\\u0041 x\", \"y\": 1}"),
            // Arguments that are not JSON, after the call was sent; a
            // body that is not.
            (ToolSyntax::FunctionaryV32, "all\nI will check.>>>get_weather\n{\"city\"slo\"}>>>now\n{}"),
            (ToolSyntax::FunctionaryV32, "l\nla"),
            (ToolSyntax::FunctionaryV31, "Checking.<function=get_weather>{\"city\": =now>{}</function>"),
            (ToolSyntax::FunctionaryV31, "<function=gw>{>{\"city\":% \"Oslo\"}</function><function=now>{}</function>"),
            (ToolSyntax::MistralNemo, "Sure.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": +{\"8a\": e1, {}]}, ]"),
            (ToolSyntax::Mistral { call_ids: true }, "[TOOL_CALLS]w[CALL_ID]abcdefghi[ARGS]{\"city\":\u{96}\"Rome\"}[TOOL_CALLS]now[CALL_ID]123456789[ARGS]{}"),
            // Text that ends as the tag begins, before the tag.
            (ToolSyntax::Hermes, "I will l<tool<tool_call>{\"respo\u{a1}nse\": \"x\"}\n{\"name\": \"get_weather\""),
        ];
        for (syntax, reply) in cases {
            let mut last = Reading::default();
            for end in (0..=reply.len()).filter(|&e| reply.is_char_boundary(e)) {
                let now = syntax.read(&reply[..end], false);
                assert!(now.content.starts_with(&last.content), "{reply:?} at {end}: {last:?} then {now:?}");
                assert!(now.calls.len() >= last.calls.len(), "{reply:?} at {end}: {last:?} then {now:?}");
                for (a, b) in last.calls.iter().zip(&now.calls) {
                    assert!(
                        a.name == b.name && b.arguments.starts_with(&a.arguments),
                        "{reply:?} at {end}: {a:?} then {b:?}"
                    );
                }
                last = now;
            }
        }
    }

    /// Every reading of a growing reply extends the one before, and the
    /// last, of the whole reply, is what `parse` reads: the deltas a stream
    /// sends add up to the call.
    #[test]
    fn readings_of_a_growing_reply_extend_each_other() {
        let extends = |later: &Reading, earlier: &Reading, at: &str| {
            assert!(
                later.content.starts_with(&earlier.content),
                "content {:?} then {:?} at {at:?}",
                earlier.content,
                later.content
            );
            assert!(later.calls.len() >= earlier.calls.len(), "calls {earlier:?} then {later:?} at {at:?}");
            for (a, b) in earlier.calls.iter().zip(&later.calls) {
                assert!(a.name == b.name && b.arguments.starts_with(&a.arguments), "{a:?} then {b:?} at {at:?}");
            }
        };
        let cases = [
            (ToolSyntax::Hermes, "I will look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rio de Janeiro\", \"days\": [1, 2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>", 2),
            (ToolSyntax::Hermes, "A < b, and <tool> is no call.", 0),
            (ToolSyntax::Llama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"q\": \"a \\\"b\\\"\", \"n\": -1.5e3}}", 1),
            (ToolSyntax::Llama3, "Hello {there}", 0),
            (ToolSyntax::Generic, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"x\": true}}, {\"name\": \"g\", \"arguments\": {}}]}", 2),
            (ToolSyntax::Generic, "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"s\": \"}{\"}}}", 1),
            (ToolSyntax::MistralNemo, "Sure.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, {}]}, \"id\": \"abcdefghi\"}]", 1),
            (ToolSyntax::MistralNemo, "[TOOL_CALLS] is how I call.", 0),
            (ToolSyntax::Mistral { call_ids: true }, "[TOOL_CALLS]get_weather[CALL_ID]abcdefghi[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]now[CALL_ID]123456789[ARGS]{}", 2),
            (ToolSyntax::Mistral { call_ids: false }, "Let me see.[TOOL_CALLS]f[ARGS]{\"q\": \"[ARGS]\"}", 1),
            (ToolSyntax::Mistral { call_ids: false }, "A plain [ARGS] reply", 0),
            (ToolSyntax::FunctionaryV31, "Checking.<function=get_weather>{\"city\": \"Oslo\"}</function><function=now>{}</function>", 2),
            (ToolSyntax::FunctionaryV31, "<function=broken>[1]</function> stays", 0),
            (ToolSyntax::FunctionaryV32, "all\nI will check.>>>get_weather\n{\"city\": \"Oslo\"}>>>now\n{}", 2),
            (ToolSyntax::FunctionaryV32, "all\nHello > there >> friend", 0),
            (ToolSyntax::Generic, "{\"response\": \"Caf\\u00e9 \\ud83d\\ude00 \\\"quoted\\\"\\nbye\"}", 0),
        ];
        for (syntax, reply, n) in cases {
            let mut last = Reading::default();
            for end in (0..=reply.len()).filter(|&e| reply.is_char_boundary(e)) {
                let now = syntax.read(&reply[..end], false);
                extends(&now, &last, &reply[..end]);
                last = now;
            }
            let whole = syntax.read(reply, true);
            extends(&whole, &last, reply);
            assert_eq!(whole.calls.len(), n, "{reply}");
            let (content, calls) = syntax.parse(reply);
            assert_eq!(content, whole.content);
            for (raw, call) in whole.calls.iter().zip(&calls) {
                assert_eq!(serde_json::from_str::<Value>(&raw.arguments).unwrap(), call.function.arguments);
            }
        }
        // Mid-reply: the arguments as far as written, a maybe-marker held back.
        let cut = ToolSyntax::Hermes.read("Sure <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"Par", false);
        assert_eq!((cut.content.as_str(), cut.calls[0].arguments.as_str()), ("Sure", "{\"a\": \"Par"));
        assert_eq!(ToolSyntax::Hermes.read("Sure <tool_c", false).content, "Sure");
        assert_eq!(ToolSyntax::Generic.read("{\"response\": \"Caf\\u00", false).content, "Caf");
        let cut = ToolSyntax::Mistral { call_ids: true }.read("Ok.[TOOL_CALLS]f[CALL_ID]abc", false);
        assert_eq!(
            (cut.content.as_str(), cut.calls[0].name.as_str(), cut.calls[0].arguments.as_str()),
            ("Ok.", "f", "")
        );
        assert_eq!(ToolSyntax::MistralNemo.read("Ok.[TOOL_C", false).content, "Ok.");
        let cut = ToolSyntax::FunctionaryV32.read("all\nLet me look.>>>get_weather\n{\"ci", false);
        assert_eq!(
            (cut.content.as_str(), cut.calls[0].name.as_str(), cut.calls[0].arguments.as_str()),
            ("Let me look.", "get_weather", "{\"ci")
        );
        assert_eq!(ToolSyntax::FunctionaryV32.read("all\nHi >>", false).content, "Hi");
        assert_eq!(
            ToolSyntax::FunctionaryV31.read("Hi <function=get_w", false),
            Reading { content: "Hi".into(), calls: vec![] }
        );
    }

    #[test]
    fn mistral_call_ids_are_nine_letters_and_digits() {
        assert_eq!(mistral_id("abcdefghi"), "abcdefghi");
        let id = mistral_id("call_mxddmkcdzdtmly_0");
        assert!(id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        assert_eq!(id, mistral_id("call_mxddmkcdzdtmly_0"));
        assert_ne!(id, mistral_id("call_mxddmkcdzdtmly_1"));
    }

    #[test]
    fn templates_tell_their_syntax() {
        assert_eq!(ToolSyntax::of_template("{{ '<tool_call>\\n' }}"), ToolSyntax::Hermes);
        assert_eq!(ToolSyntax::of_template("<|start_header_id|>{{ '\"parameters\": ' }}"), ToolSyntax::Llama3);
        assert_eq!(ToolSyntax::of_template("<start_of_turn>user"), ToolSyntax::Generic);
        assert_eq!(ToolSyntax::of_template("{{ '[TOOL_CALLS][' }}"), ToolSyntax::MistralNemo);
        assert_eq!(
            ToolSyntax::of_template("'[TOOL_CALLS]' + name + '[CALL_ID]' + id + '[ARGS]'"),
            ToolSyntax::Mistral { call_ids: true }
        );
        assert_eq!(
            ToolSyntax::of_template("'[TOOL_CALLS]' + name + '[ARGS]'"),
            ToolSyntax::Mistral { call_ids: false }
        );
        assert_eq!(ToolSyntax::of_template("<|start_header_id|>{{ '>>>all\\n' }}"), ToolSyntax::FunctionaryV32);
        assert_eq!(ToolSyntax::of_template("<|start_header_id|>{{ '<function=' }}"), ToolSyntax::FunctionaryV31);
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
        let e = ToolSyntax::Hermes.response_format(&tools, &ToolChoice::Function("g".into()), &|_| None).unwrap_err();
        assert!(e.to_string().contains("not among the tools"), "{e}");
        assert_eq!(ToolSyntax::Hermes.response_format(&tools, &ToolChoice::Auto, &|_| None).unwrap(), None);
        assert_eq!(
            ToolSyntax::Hermes.response_format(&[], &ToolChoice::Required, &|_| None).unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
    }

    #[test]
    fn the_generic_syntax_offers_tools_in_the_system_message_and_replays_calls_as_json() {
        let tools = vec![Tool { name: "f".into(), parameters: json!({ "type": "object" }) }];
        let call = ToolCall {
            id: Some("1".into()),
            kind: "function".into(),
            function: FunctionCall { name: "f".into(), arguments: json!({}) },
        };
        let messages = vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Do f."),
            Message { role: "assistant".into(), tool_calls: Some(vec![call]), ..Default::default() },
            Message { role: "tool".into(), name: Some("f".into()), content: Some("42".into()), ..Default::default() },
        ];
        let out = ToolSyntax::Generic.messages(&messages, &tools, &ToolChoice::Auto);
        let system = out[0].content.as_deref().unwrap();
        assert!(
            system.starts_with("Be brief.\n\nRespond in JSON format") && system.contains("\"const\": \"f\""),
            "{system}"
        );
        assert_eq!(out[2].content.as_deref(), Some(r#"{"tool_call":{"name":"f","arguments":{}}}"#));
        assert_eq!(
            (out[3].role.as_str(), out[3].content.as_deref()),
            ("user", Some(r#"{"tool_response":{"name":"f","content":"42"}}"#))
        );
        assert_eq!(ToolSyntax::Hermes.messages(&messages, &tools, &ToolChoice::Auto), messages);
        // OpenAI's JSON-string arguments reach the template as the object.
        let mut openai = messages.clone();
        openai[2].tool_calls.as_mut().unwrap()[0].function.arguments = json!("{\"x\": 1}");
        let out = ToolSyntax::Hermes.messages(&openai, &tools, &ToolChoice::Auto);
        assert_eq!(out[2].tool_calls.as_ref().unwrap()[0].function.arguments, json!({ "x": 1 }));
    }
}
