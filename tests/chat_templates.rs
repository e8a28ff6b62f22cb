//! llama.cpp's collection of real chat templates (models/llama.cpp/templates,
//! from scripts/fetch-models.sh) rendered by chat.rs must equal Jinja2's
//! renderings as transformers sets Jinja2 up (tests/fixtures/templates/jinja2.json,
//! from scripts/reference/templates.py) for its five conversations: two
//! plain (one with text to trim and escape), one with a tool call whose
//! arguments are an object (transformers' form), the same as OpenAI sends it
//! (a JSON string, no content), and two calls in one turn. Where Jinja2
//! raised, chat.rs must fail too.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use webslm::chat::ChatTemplate;
use webslm::Message;

/// Renderings that differ from Jinja2's: (template, conversations, why).
/// The test fails if one of them stops differing. None today: functionary
/// v3.1's `'x'|safe + text`, the last, is rewritten as Jinja2 evaluates it
/// (src/chat/jinja2.rs).
const KNOWN_DIFFERENCES: &[(&str, &[&str], &str)] = &[];

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `a` and `b` first differ, with a little of each around it.
fn first_difference(a: &str, b: &str) -> String {
    let at = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let around = |s: &str| format!("{:?}", s.chars().skip(at.saturating_sub(30)).take(60).collect::<String>());
    format!("at char {at}: ours {} vs jinja2 {}", around(a), around(b))
}

#[test]
fn templates_render_like_jinja2() {
    let dir = root().join("models/llama.cpp/templates");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/templates/jinja2.json")).unwrap())
            .unwrap();
    let bos = fixture["bos_token"].as_str().unwrap();
    let eos = fixture["eos_token"].as_str().unwrap();
    let expected = fixture["templates"].as_object().unwrap();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-models.sh", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".jinja"))
        .collect();
    let in_fixture: BTreeSet<String> = expected.keys().cloned().collect();
    assert_eq!(on_disk, in_fixture, "templates on disk vs in the fixture: run scripts/fetch-models.sh");
    assert_eq!(in_fixture.len(), 70);

    let mut failures = Vec::new();
    let mut known_differences = Vec::new();
    // Per conversation: identical texts, and errors where Jinja2 raised too.
    let mut agreed = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for (name, results) in expected {
        let source = std::fs::read_to_string(dir.join(name)).unwrap();
        let template = ChatTemplate::new(&source, bos, eos);
        for (key, conversation) in fixture["conversations"].as_object().unwrap() {
            let messages: Vec<Message> = serde_json::from_value(conversation["messages"].clone()).unwrap();
            let tools = Some(&conversation["tools"]).filter(|t| !t.is_null());
            let add_generation_prompt = conversation["add_generation_prompt"].as_bool().unwrap();
            let ours = template
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|t| t.render_with(&messages, tools, add_generation_prompt).map_err(|e| e.to_string()));
            let problem = match (&ours, results[key]["text"].as_str(), results[key]["error"].as_str()) {
                (Ok(ours), Some(theirs), _) if ours == theirs => None,
                (Ok(ours), Some(theirs), _) => Some(first_difference(ours, theirs)),
                (Err(_), None, Some(_)) => None,
                (Err(e), Some(_), _) => Some(format!("we failed: {e}")),
                (Ok(_), None, Some(theirs)) => Some(format!("jinja2 raised {theirs}, we rendered")),
                _ => panic!("{name} {key}: the fixture has neither text nor error"),
            };
            let known = KNOWN_DIFFERENCES.iter().find(|(n, keys, _)| n == name && keys.contains(&key.as_str()));
            match problem {
                None if known.is_some() => {
                    failures.push(format!("{name} {key}: listed as a known difference, but matches"))
                }
                None => {
                    let counts = agreed.entry(key.as_str()).or_default();
                    if ours.is_ok() {
                        counts.0 += 1
                    } else {
                        counts.1 += 1
                    }
                }
                Some(problem) if known.is_some() => {
                    known_differences.push(format!("{name} {key}: {} ({problem})", known.unwrap().2))
                }
                Some(problem) => failures.push(format!("{name} {key}: {problem}")),
            }
        }
    }
    for (key, (texts, errors)) in &agreed {
        eprintln!("{key}: {texts} identical texts, {errors} errors where Jinja2 raised too");
    }
    eprintln!("{} known differences:\n{}", known_differences.len(), known_differences.join("\n"));
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// The limits a template runs under (chat.rs) leave room for the real ones:
/// every template of the collection renders 81 turns and a nested tool
/// without reaching one (some fail for reasons of their own, as in Jinja2).
#[test]
fn real_templates_render_long_conversations_within_the_limits() {
    let dir = root().join("models/llama.cpp/templates");
    let schema = serde_json::json!({ "type": "object", "properties": {
        "city": { "type": "string", "description": "A city" },
        "filters": { "type": "object", "properties": { "days": { "type": "array", "items": { "type": "object",
            "properties": { "day": { "type": "integer" }, "hours": { "type": "array", "items": { "type": "integer" } } } } } } } },
        "required": ["city"] });
    let tools = serde_json::json!([{ "type": "function", "function": { "name": "get_weather", "description": "The weather", "parameters": schema } }]);
    let mut messages = vec![Message::new("system", "Be brief.")];
    for i in 0..40 {
        messages.push(Message::new("user", format!("Question {i}?")));
        messages.push(Message::new("assistant", format!("Answer {i}.")));
    }
    messages.push(Message::new("user", "Last?"));
    let mut rendered = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jinja") {
            continue;
        }
        let template = ChatTemplate::new(&std::fs::read_to_string(&path).unwrap(), "<s>", "</s>").unwrap();
        match template.render_with(&messages, Some(&tools), true) {
            Ok(_) => rendered += 1,
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains("limit"), "{}: {e}", path.display());
            }
        }
    }
    assert!(rendered >= 60, "{rendered} templates rendered");
}
