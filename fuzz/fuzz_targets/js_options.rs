//! What a page passes to `generate` and `chatCompletions`, as JSON: the
//! generate options (`{maxTokens, temperature, responseFormat, ...}`), or a
//! tool turn (`{messages, tools, toolChoice, options}`), read as the wasm
//! edge reads them and run for a few tokens on the tests' tiny model. A
//! typed error or a generation; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};
use webslm::chat::tools::ToolChoice;
use webslm::options::JsGenerateOptions;
use webslm::{LoadOptions, Message, Session};

fn session() -> std::sync::MutexGuard<'static, Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION
        .get_or_init(|| Mutex::new(Session::load_bytes(&webslm_fuzz::common::tiny_llama(), LoadOptions::default()).expect("the tiny model loads")))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let mut s = session();
    let turn = request.get("messages").map(|messages| {
        let messages: Vec<Message> = serde_json::from_value(messages.clone()).map_err(|_| ())?;
        let tools = request.get("tools").cloned().unwrap_or(serde_json::Value::Null);
        let choice = ToolChoice::from_json(request.get("toolChoice")).map_err(|_| ())?;
        s.tool_chat_tokens(&messages, &tools, &choice).map_err(|_| ())
    });
    let (prompt, format) = match turn {
        Some(Ok(turn)) => turn,
        Some(Err(())) => return,
        None => (s.tokenize("hello there", true).expect("plain text tokenizes"), None),
    };
    let Ok(mut options) = JsGenerateOptions::from_json(request.get("options").unwrap_or(&request)) else { return };
    options.max_tokens = options.max_tokens.min(4);
    if format.is_some() {
        options.response_format = format;
    }
    if let Ok(generation) = s.generate(&prompt, options) {
        generation.for_each(drop);
    }
});
