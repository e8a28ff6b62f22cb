//! The readers of tool calls in a model's reply (which a prompt can steer),
//! in every syntax: no panic; readings of the reply as it grows (at a
//! quarter, a half, three quarters) extend one another, as a stream's deltas
//! must; the reading of the whole reply is what `parse` reads, every call's
//! arguments a JSON object. (The whole reading need not extend the others:
//! a call that proves broken stays in the text as written, as
//! `ToolSyntax::read` says; serde_json, which checks them, also refuses a
//! lone surrogate escape, `"\udc00"`, that JSON's grammar allows.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use webslm::chat::tools::{Reading, ToolSyntax};

const SYNTAXES: [ToolSyntax; 8] = [
    ToolSyntax::Hermes,
    ToolSyntax::Llama3,
    ToolSyntax::MistralNemo,
    ToolSyntax::Mistral { call_ids: true },
    ToolSyntax::Mistral { call_ids: false },
    ToolSyntax::FunctionaryV31,
    ToolSyntax::FunctionaryV32,
    ToolSyntax::Generic,
];

fn extends(later: &Reading, earlier: &Reading) {
    assert!(later.content.starts_with(&earlier.content), "content {:?} then {:?}", earlier.content, later.content);
    assert!(later.calls.len() >= earlier.calls.len(), "calls {earlier:?} then {later:?}");
    for (a, b) in earlier.calls.iter().zip(&later.calls) {
        assert!(a.name == b.name && b.arguments.starts_with(&a.arguments), "{a:?} then {b:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let syntax = SYNTAXES[which as usize % SYNTAXES.len()];
    let reply = String::from_utf8_lossy(rest);
    let mut last = Reading::default();
    for quarter in 1..4 {
        let end = (0..=reply.len() * quarter / 4).rev().find(|&i| reply.is_char_boundary(i)).unwrap_or(0);
        let now = syntax.read(&reply[..end], false);
        extends(&now, &last);
        last = now;
    }
    let whole = syntax.read(&reply, true);
    let (content, calls) = syntax.parse(&reply);
    assert_eq!(content, whole.content);
    assert_eq!(calls.len(), whole.calls.len());
    for (raw, call) in whole.calls.iter().zip(&calls) {
        assert_eq!(raw.name, call.function.name);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&raw.arguments).ok().as_ref(), Some(&call.function.arguments));
    }
});
