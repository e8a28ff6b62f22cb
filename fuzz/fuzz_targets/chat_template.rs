//! A chat template from a hostile file, rendered: the input is the
//! template, a NUL, then the messages as JSON (a fixed conversation where
//! that part is not a list of messages). A typed error or a prompt within
//! the limits, in bounded time; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webslm::chat::tools::ToolSyntax;
use webslm::chat::ChatTemplate;
use webslm::Message;

fuzz_target!(|data: &[u8]| {
    let (source, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let source = String::from_utf8_lossy(source);
    ToolSyntax::of_template(&source);
    let Ok(template) = ChatTemplate::new(&source, "<s>", "</s>") else { return };
    let messages: Vec<Message> = serde_json::from_slice(rest).unwrap_or_else(|_| {
        vec![Message::new("system", "Be brief."), Message::new("user", "Hi"), Message::new("assistant", "Hello."), Message::new("user", "Again")]
    });
    let tools = serde_json::json!([{ "type": "function", "function": { "name": "f", "description": "d", "parameters": { "type": "object", "properties": { "x": { "type": "string" } } } } }]);
    let _ = template.render(&messages, true);
    let _ = template.render_with(&messages, Some(&tools), false);
});
