//! Chat templates: renders a GGUF's `tokenizer.chat_template` (a Hugging Face
//! Jinja template) with minijinja, set up the way transformers sets up Jinja2:
//! `trim_blocks` and `lstrip_blocks` on, Python string/dict methods
//! (`.strip()`, `.startswith()`, `.items()`, ...), `raise_exception(msg)`,
//! `strftime_now(fmt)`, `tojson` as `json.dumps` (pyjson.rs), the
//! `{% generation %}` tag, Jinja2's tests and lazy filters where minijinja's
//! differ (jinja2.rs), and the variables `messages`, `add_generation_prompt`,
//! `bos_token`, `eos_token`, `tools` (OpenAI tool objects, or None) and
//! `documents` (None). tests/chat_templates.rs checks llama.cpp's collection
//! of real templates against Jinja2's renderings.

mod jinja2;
mod pyjson;
pub mod tools;

use crate::Error;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde};
use minijinja::{Environment, ErrorKind, State, Value};

/// One chat turn, shaped like an OpenAI chat message. Templates see the
/// fields that are set (`None` ones are left out, as transformers drops
/// `None` values), in this order.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The functions an assistant turn calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// In a `tool` turn, the call this is the result of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// In a `tool` turn, the function that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A turn with just a role and text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: Some(content.into()), ..Default::default() }
    }
}

/// A function call in an assistant turn: `{id, type: "function", function: {name, arguments}}`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `"function"`, OpenAI's only kind (filled in when absent).
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_kind() -> String {
    "function".into()
}

/// What a [`ToolCall`] calls.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// Passed to the template as given. OpenAI sends a JSON string; most
    /// Hugging Face templates expect the object (transformers' documented
    /// form), so parse it first for those.
    pub arguments: serde_json::Value,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    tools: tools::ToolSyntax,
}

const TEMPLATE_NAME: &str = "chat_template";

/// A template comes with the model file, from anyone: a program run on
/// every chat turn. These bound one rendering, so that a hostile one fails
/// with `CHAT_TEMPLATE` instead of hanging the tab. Instructions: the real
/// templates of llama.cpp's collection take at most 36 000 for a
/// conversation of 81 turns with a nested tool (tests/chat_templates.rs), so
/// 2 million is some 4 000 turns. An endless loop stops within a second
/// even under the fuzzer's AddressSanitizer (10 million took 3.9 s there).
const MAX_INSTRUCTIONS: u64 = 2_000_000;
/// Nested frames (macro calls, loops): Kimi K3's template prints a tool's
/// schema with a macro that recurses a level of JSON at a time, about 9
/// frames a level, so 64 was too few for a tool 7 levels deep. 200 leaves
/// room for deeper schemas and margin on wasm's 1 MiB stack (tests/wasm.rs;
/// minijinja's own 500 also fit it there, in a release build).
const MAX_NESTING: usize = 200;
/// The prompt's text: 16 MiB is far beyond any context a model here takes.
const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// What `strftime_now` reports unless [`ChatTemplate::with_date`] says
/// otherwise: 26 Jul 2024, the date Llama 3.x templates fall back to
/// themselves, so they render the same whether or not the function exists.
const DEFAULT_DATE: (i32, u32, u32) = (2024, 7, 26);

impl ChatTemplate {
    /// `bos_token`/`eos_token` are the texts of the model's BOS/EOS tokens (templates use them).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_fuel(Some(MAX_INSTRUCTIONS));
        env.set_recursion_limit(MAX_NESTING);
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(to_error)?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", pyjson::tojson);
        jinja2::install(&mut env);
        env.add_function(GENERATION, generation);
        env.add_global("bos_token", bos_token);
        env.add_global("eos_token", eos_token);
        // transformers passes this as None: `documents is not none` must be false.
        env.add_global("documents", jinja2::none());
        let tools = tools::ToolSyntax::of_template(source);
        let source = jinja2::markup_concat(&generation_as_call(source));
        env.add_template_owned(TEMPLATE_NAME, source).map_err(to_error)?;
        Ok(ChatTemplate { env, tools }.with_date(DEFAULT_DATE.0, DEFAULT_DATE.1, DEFAULT_DATE.2))
    }

    /// How the template's model writes tool calls.
    pub fn tool_syntax(&self) -> tools::ToolSyntax {
        self.tools
    }

    /// Sets the date `strftime_now` formats (month 1-12, day 1-31; out-of-range
    /// values are clamped). There is no clock here: std has none on
    /// wasm32-unknown-unknown, and a fixed date keeps prompts reproducible. The
    /// time of day is always midnight.
    pub fn with_date(mut self, year: i32, month: u32, day: u32) -> Self {
        let date = (year, month.clamp(1, 12), day.clamp(1, 31));
        self.env.add_function("strftime_now", move |format: String| strftime(&format, date));
        self
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, Error> {
        self.render_with(messages, None, add_generation_prompt)
    }

    /// [`ChatTemplate::render`] with `tools`: a list of OpenAI tool objects
    /// (`{type: "function", function: {name, description, parameters}}`),
    /// which templates receive as given (they are `none` without them).
    pub fn render_with(
        &self,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String, Error> {
        let context = Value::from_pairs([
            ("messages", Value::from(Serde(messages))),
            ("tools", tools.map_or_else(jinja2::none, |t| Value::from(Serde(t)))),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
        ]);
        let mut out = Bounded { text: Vec::new(), full: false };
        let rendered =
            self.env.get_template(TEMPLATE_NAME).and_then(|t| t.render_captured_to(context, &mut out).map(drop));
        match rendered {
            Ok(()) => Ok(String::from_utf8(out.text).expect("templates write UTF-8")),
            Err(_) if out.full => Err(Error::ChatTemplate(format!(
                "the chat template wrote more than its limit of {} MiB of prompt",
                MAX_OUTPUT_BYTES >> 20
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(Error::ChatTemplate(format!(
                "the chat template ran past its limit of {MAX_INSTRUCTIONS} instructions (an endless loop?)"
            ))),
            Err(e) => Err(to_error(e)),
        }
    }
}

/// The template to use for an `architecture` whose GGUF carries none: its
/// family's own, where it has one format (Gemma 3: some GGUFs of it, this
/// project's test model among them, ship without `tokenizer.chat_template`).
pub fn builtin(architecture: &str) -> Option<&'static str> {
    match architecture {
        "gemma3" => Some(GEMMA3),
        _ => None,
    }
}

/// Gemma 3's chat template as Google publishes it with the instruction-tuned
/// models (its text-only parts): a system message becomes the first user
/// turn's prefix, the assistant is `model`.
const GEMMA3: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- if messages[0]['content'] is string -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
{%- else -%}
    {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
{%- endif -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = "" -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
{%- endif -%}
{%- if (message['role'] == 'assistant') -%}
    {%- set role = "model" -%}
{%- else -%}
    {%- set role = message['role'] -%}
{%- endif -%}
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
{%- if message['content'] is string -%}
    {{ message['content'] | trim }}
{%- elif message['content'] is iterable -%}
    {%- for item in message['content'] -%}
        {%- if item['type'] == 'image' -%}
            {{ '<start_of_image>' }}
        {%- elif item['type'] == 'text' -%}
            {{ item['text'] | trim }}
        {%- endif -%}
    {%- endfor -%}
{%- else -%}
    {{ raise_exception("Invalid content type") }}
{%- endif -%}
{{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

/// transformers' `{% generation %}...{% endgeneration %}` tag marks the
/// assistant's text for training masks and renders its body, as a call
/// block (its own scope). minijinja has no custom tags, so the tags become
/// `{% call GENERATION() %}...{% endcall %}`, whitespace control kept.
const GENERATION: &str = "_generation";

fn generation(state: &mut State, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let caller: Value = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    caller.call(state, &[])
}

/// `source` with each `{%- generation -%}`/`{% endgeneration %}` tag (any
/// whitespace control) turned into a call block.
fn generation_as_call(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag[2..].find("%}").map(|end| end + 4) else {
            rest = tag;
            break;
        };
        let inner = tag[2..end - 2].trim_start_matches(['-', '+']).trim_end_matches(['-', '+']).trim();
        let replacement = match inner {
            "generation" => format!("call {GENERATION}()"),
            "endgeneration" => "endcall".to_owned(),
            _ => {
                out.push_str(&tag[..2]);
                rest = &tag[2..];
                continue;
            }
        };
        out.push_str(&tag[..end].replacen(inner, &replacement, 1));
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

/// A rendering's output, refused past [`MAX_OUTPUT_BYTES`].
struct Bounded {
    text: Vec<u8>,
    full: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + bytes.len() > MAX_OUTPUT_BYTES {
            self.full = true;
            return Err(std::io::Error::other("the prompt is too long"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Templates call this to reject a conversation; the message becomes the error.
fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

/// The error with its causes, e.g. `syntax error: unexpected end of input (in chat_template:3)`.
fn to_error(err: minijinja::Error) -> Error {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    Error::ChatTemplate(message)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// The subset of Python's `strftime` chat templates use: `%d %m %Y %y %b %B %a
/// %A %H %M %S %%`, with glibc's `%-d`-style unpadded numbers. Other directives
/// are copied through unchanged.
fn strftime(format: &str, (year, month, day): (i32, u32, u32)) -> String {
    let month_name = MONTHS[month as usize - 1];
    let weekday_name = WEEKDAYS[weekday(year, month, day)];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut directive = chars.next();
        let padded = directive != Some('-');
        if !padded {
            directive = chars.next();
        }
        let number = |n: u32| {
            if padded {
                format!("{n:02}")
            } else {
                n.to_string()
            }
        };
        match directive {
            Some('d') => out += &number(day),
            Some('m') => out += &number(month),
            Some('Y') => out += &year.to_string(),
            Some('y') => out += &number(year.rem_euclid(100) as u32),
            Some('b') => out += &month_name[..3],
            Some('B') => out += month_name,
            Some('a') => out += &weekday_name[..3],
            Some('A') => out += weekday_name,
            Some('H' | 'M' | 'S') => out += &number(0),
            Some('%') => out.push('%'),
            Some(other) => {
                out += if padded { "%" } else { "%-" };
                out.push(other);
            }
            None => out += if padded { "%" } else { "%-" },
        }
    }
    out
}

/// Day of the week, 0 = Sunday (Sakamoto's method, proleptic Gregorian).
fn weekday(year: i32, month: u32, day: u32) -> usize {
    const OFFSETS: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if month < 3 { year - 1 } else { year };
    let days = y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400) + OFFSETS[month as usize - 1] + day as i32;
    days.rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile templates (a GGUF's is anyone's): an endless loop, a prompt
    /// past every context, a 1 GiB string, endless recursion. Each fails
    /// with CHAT_TEMPLATE naming what it ran into (tests/wasm.rs runs the
    /// loop and the recursion in wasm, whose stack is smaller). minijinja
    /// refuses to repeat a string past 100 MB but not to concatenate one:
    /// the doubling loop builds its 1 GiB (4.5 s here) before the output
    /// limit refuses it.
    #[test]
    fn hostile_templates_fail_naming_the_limit() {
        let cases = [
            ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "instructions"),
            ("{% for a in range(100000) %}{{ 'many bytes a time' * 1000 }}{% endfor %}", "MiB of prompt"),
            ("{{ 'x' * 1073741824 }}", "repeated string is too large"),
            ("{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "MiB of prompt"),
            ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion limit exceeded"),
        ];
        for (source, why) in cases {
            let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
            let e = template.render(&[Message::new("user", "hi")], true).unwrap_err();
            assert_eq!(e.code(), "CHAT_TEMPLATE");
            assert!(e.to_string().contains(why), "{source}: {e}");
        }
    }

    fn msg(role: &str, content: &str) -> Message {
        Message::new(role, content)
    }

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/smollm2-q4_1/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn error_text(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::ChatTemplate(message)) => message,
            other => panic!("expected a chat template error, got {other:?}"),
        }
    }

    #[test]
    fn smollm2_template_matches_reference_prompts() {
        let source = fixture("prompts.json")["chat_template"].as_str().unwrap().to_owned();
        let template = ChatTemplate::new(&source, "<|im_start|>", "<|im_end|>").unwrap();
        let reference = fixture("reference_greedy.json");
        let chats: Vec<_> = reference["prompts"].as_array().unwrap().iter().filter(|p| p["kind"] == "chat").collect();
        assert_eq!(chats.len(), 3);
        for prompt in chats {
            let messages = [msg("user", prompt["user_text"].as_str().unwrap())];
            assert_eq!(template.render(&messages, true).unwrap(), prompt["formatted"].as_str().unwrap());
        }
        // An explicit system message replaces the default one.
        let rendered = template.render(&[msg("system", "Be brief."), msg("user", "Hi")], false).unwrap();
        assert_eq!(rendered, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    }

    #[test]
    fn gemma3_template() {
        let template = ChatTemplate::new(GEMMA3, "<bos>", "<eos>").unwrap();
        let conversation =
            [msg("system", "Be helpful."), msg("user", " Hello "), msg("assistant", "Hi!"), msg("user", "Bye")];
        assert_eq!(
            template.render(&conversation, true).unwrap(),
            "<bos><start_of_turn>user\nBe helpful.\n\nHello<end_of_turn>\n\
             <start_of_turn>model\nHi!<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n\
             <start_of_turn>model\n"
        );
        assert_eq!(
            template.render(&[msg("user", "Hello")], false).unwrap(),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n"
        );
        let error = error_text(template.render(&[msg("user", "a"), msg("user", "b")], true));
        assert!(error.contains("Conversation roles must alternate user/assistant/user/assistant/..."), "{error}");
    }

    /// Llama 3 style: whitespace-controlled `set`, `.strip()`, a date from `strftime_now`.
    const LLAMA3: &str = r#"{{- bos_token }}
{%- if strftime_now is defined -%}
    {%- set date_string = strftime_now("%d %b %Y") -%}
{%- else -%}
    {%- set date_string = "unknown" -%}
{%- endif -%}
{%- if messages[0]['role'] == 'system' -%}
    {%- set system_message = messages[0]['content'].strip() -%}
    {%- set messages = messages[1:] -%}
{%- else -%}
    {%- set system_message = "" -%}
{%- endif -%}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message.content.startswith('!') %}{% continue %}{% endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"#;

    #[test]
    fn llama3_style_template() {
        let template = ChatTemplate::new(LLAMA3, "<|begin_of_text|>", "<|eot_id|>").unwrap();
        let conversation = [msg("system", "  Be terse.\n"), msg("user", "Hi\n"), msg("user", "!skipped")];
        let expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
                        Today Date: 26 Jul 2024\n\nBe terse.<|eot_id|>\
                        <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
                        <|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_eq!(template.render(&conversation, true).unwrap(), expected);

        let dated = template.with_date(2025, 3, 9);
        let rendered = dated.render(&[msg("user", "Hi")], false).unwrap();
        assert!(rendered.contains("Today Date: 09 Mar 2025\n\n<|eot_id|>"), "{rendered}");
    }

    #[test]
    fn blocks_are_trimmed_like_transformers() {
        let source = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU: {{ m.content }}\n    {% endif %}\n{% endfor %}\n";
        let template = ChatTemplate::new(source, "", "").unwrap();
        assert_eq!(
            template.render(&[msg("user", "a"), msg("bot", "b"), msg("user", "c")], false).unwrap(),
            "U: a\nU: c\n"
        );
    }

    #[test]
    fn python_methods_and_message_order() {
        let source =
            "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v.upper() }};{% endfor %}{% endfor %}\
                      {% if eos_token.startswith('</') %}ok{% endif %}";
        let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        assert_eq!(template.render(&[msg("user", "hi")], false).unwrap(), "role=USER;content=HI;ok");
    }

    #[test]
    fn generation_tags_become_call_blocks() {
        assert_eq!(
            generation_as_call("a{%- generation -%}b{%+endgeneration%} {% if x %}{%}{% y"),
            "a{%- call _generation() -%}b{%+endcall%} {% if x %}{%}{% y"
        );
        let template = ChatTemplate::new(
            "{% for m in messages %}\n  {%- generation %}\n{% set x = 1 %}[{{ m.content }}]\n  {% endgeneration -%}\n{{ x | default('unset') }}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        // The body renders in its own scope, as Jinja2's call blocks do.
        assert_eq!(template.render(&[msg("user", "a")], false).unwrap(), "[a]\nunset");
    }

    /// JS sends OpenAI's shape; templates see only the fields that are set, in order.
    #[test]
    fn messages_and_tools_reach_the_template_as_openai_shapes() {
        let messages: Vec<Message> = serde_json::from_str(
            r#"[{"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "2"}]"#,
        )
        .unwrap();
        assert_eq!(messages[0], msg("user", "hi"));
        let tools =
            serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": 2}}}]);
        let template =
            ChatTemplate::new("{{ messages | tojson }} {{ tools | tojson }} {{ tools is none }}", "", "").unwrap();
        assert_eq!(
            template.render_with(&messages, Some(&tools), false).unwrap(),
            r#"[{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "#
                .to_owned()
                + r#""function": {"name": "f", "arguments": "{\"x\": 1}"}}]}, "#
                + r#"{"role": "tool", "content": "2", "tool_call_id": "c1", "name": "f"}] "#
                + r#"[{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": 2}}}] False"#
        );
        assert_eq!(template.render(&messages[..1], false).unwrap(), r#"[{"role": "user", "content": "hi"}] null True"#);
    }

    /// Without tools, `tools` is Python's None: false, printed `None`, not iterable.
    #[test]
    fn absent_tools_are_python_none() {
        let source = "{{ tools }} {{ tools is none }} {{ not tools }} {{ tools | tojson }} \
                      {{ tools | selectattr('x') | list }} {{ tools | map('upper') | list }} {{ tools is iterable }} \
                      {{ tools is mapping }} {{ tools ~ '!' }} {{ documents is none }} {{ tools or [] }}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        assert_eq!(template.render(&[], false).unwrap(), "None True True null [] [] False False None! True []");
        for source in ["{% for t in tools %}{% endfor %}", "{{ tools | length }}", "{{ tools | list }}"] {
            assert!(ChatTemplate::new(source, "", "").unwrap().render(&[], false).is_err(), "{source}");
        }
    }

    /// Where minijinja's builtins differ from Jinja2's, ours follow Jinja2.
    #[test]
    fn tests_and_filters_behave_like_jinja2() {
        let source = "{{ tools is iterable }} {{ messages is iterable }} {{ 'ab' is sequence }} \
                      {{ messages[0] is sequence }} {{ 1 is sequence }} {{ missing | length }} \
                      {{ messages | map(attribute='role') | join(',') }} {{ messages | selectattr('role') | list | length }} \
                      {{ messages[1:] | length }} {{ messages[1:] | tojson }}";
        let template = ChatTemplate::new(source, "", "").unwrap();
        assert_eq!(
            template.render(&[msg("user", "a"), msg("bot", "b")], false).unwrap(),
            "False True True True False 0 user,bot 2 1 [{\"role\": \"bot\", \"content\": \"b\"}]"
        );
        for lazy in ["map(attribute='role')", "select", "reject", "selectattr('role')", "rejectattr('role')"] {
            for consumer in ["length", "tojson"] {
                let source = format!("{{{{ messages | {lazy} | {consumer} }}}}");
                let template = ChatTemplate::new(&source, "", "").unwrap();
                assert!(template.render(&[msg("user", "a")], false).is_err(), "{source}");
            }
        }
    }

    #[test]
    fn raise_exception_becomes_an_error() {
        let template = ChatTemplate::new("{{ raise_exception('no system role, please') }}", "", "").unwrap();
        let error = error_text(template.render(&[], true));
        assert!(error.contains("no system role, please"), "{error}");
    }

    #[test]
    fn broken_template_fails_at_new() {
        let error = error_text(ChatTemplate::new("{% for m in messages %}{{ m.content }}", "", "").map(|_| ()));
        assert!(error.contains("syntax error"), "{error}");
        let error = error_text(ChatTemplate::new("{{ messages[0] ", "", "").map(|_| ()));
        assert!(error.contains("syntax error"), "{error}");
    }

    #[test]
    fn strftime_subset() {
        let date = (2025, 3, 9); // a Sunday
        assert_eq!(strftime("%A %a %d %-d %B %b %m %-m %Y %y", date), "Sunday Sun 09 9 March Mar 03 3 2025 25");
        assert_eq!(strftime("%H:%M:%S 100%% %Q %", date), "00:00:00 100% %Q %");
        assert_eq!(strftime("%A", DEFAULT_DATE), "Friday");
        assert_eq!(strftime("%A", (2000, 2, 29)), "Tuesday");
    }
}
