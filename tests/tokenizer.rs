//! The tokenizer against llama.cpp's own output for the real models: every case
//! of tests/fixtures/*/tokenizer_fixture.json (ids with and without special
//! parsing, with BOS/EOS, per-token pieces and four detokenized forms), plus the
//! streaming decoder, which must add up to the full detokenization.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value as Json;
use webslm::gguf::Metadata;
use webslm::tokenizer::{StreamDecoder, Tokenizer};

fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn metadata(model_file: &str) -> Metadata {
    let path = manifest_path(&format!("models/{model_file}"));
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    webslm::gguf::read_header_path(&path).expect("the model's GGUF header reads").metadata
}

fn fixture(dir: &str) -> Json {
    let path = manifest_path(&format!("tests/fixtures/{dir}/tokenizer_fixture.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array().expect("id list").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn streamed(tokenizer: &Tokenizer, ids: &[u32], render_special: bool) -> String {
    let mut decoder = StreamDecoder::new(tokenizer, render_special);
    let mut text: String = ids.iter().map(|&id| decoder.push(id)).collect();
    text += &decoder.finish();
    text
}

/// Checks every case of a fixture and fails with the list of every mismatch.
fn check_fixture(model_file: &str, fixture_dir: &str) {
    let started = Instant::now();
    let tokenizer = Tokenizer::from_metadata(&metadata(model_file)).expect("tokenizer builds");
    eprintln!("{model_file}: header read and tokenizer built in {:.2?}", started.elapsed());
    let fixture = fixture(fixture_dir);
    let mut failures = Vec::new();
    let mut check = |case: &str, what: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{case}: {what}: {detail}"));
        }
    };

    check("vocab", "n_vocab", tokenizer.vocab_size() as u64 == fixture["n_vocab"].as_u64().unwrap(), String::new());
    check("vocab", "add_bos", tokenizer.add_bos() == fixture["add_bos_token"].as_bool().unwrap(), String::new());
    check("vocab", "bos", tokenizer.bos_id().map(u64::from) == fixture["bos_token_id"].as_u64(), String::new());
    check("vocab", "eos", tokenizer.eos_id().map(u64::from) == fixture["eos_token_id"].as_u64(), String::new());
    let specials = fixture["special_tokens"]["tokens"].as_array().unwrap();
    let expected_eog: Vec<u32> =
        specials.iter().filter(|t| t["is_eog"].as_bool().unwrap()).map(|t| t["id"].as_u64().unwrap() as u32).collect();
    check(
        "vocab",
        "eog ids",
        tokenizer.eog_ids() == expected_eog,
        format!("{:?} vs {expected_eog:?}", tokenizer.eog_ids()),
    );
    for t in specials {
        let id = t["id"].as_u64().unwrap() as u32;
        check("vocab", "special token text", tokenizer.token_text(id) == t["text"].as_str(), format!("id {id}"));
    }

    let cases = fixture["cases"].as_array().expect("cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let text = case["text"].as_str().unwrap();
        assert_eq!(text.as_bytes(), hex(case["text_utf8_hex"].as_str().unwrap()), "{name}: fixture text");

        for (field, add_special, parse_special) in [
            ("ids_parse_special", false, true),
            ("ids_no_parse_special", false, false),
            ("ids_add_special_parse_special", true, true),
        ] {
            let want = ids(&case[field]);
            let got = tokenizer.encode(text, add_special, parse_special).expect("encode");
            check(name, field, got == want, format!("got {got:?}, want {want:?}"));
        }

        let parsed = ids(&case["ids_parse_special"]);
        let plain = ids(&case["ids_no_parse_special"]);
        let with_bos = ids(&case["ids_add_special_parse_special"]);
        let pieces: Vec<Vec<u8>> =
            case["pieces_parse_special_hex"].as_array().unwrap().iter().map(|p| hex(p.as_str().unwrap())).collect();
        for (i, (&id, want)) in parsed.iter().zip(&pieces).enumerate() {
            let got = tokenizer.token_piece(id, true);
            check(name, "pieces_parse_special_hex", &got == want, format!("#{i} id {id}: got {got:?}, want {want:?}"));
        }
        check(name, "pieces count", parsed.len() == pieces.len(), String::new());

        for (field, ids, remove_special, render_special) in [
            ("detok_parse_special_ids__unparse_special", &parsed, false, true),
            ("detok_no_parse_special_ids__plain", &plain, false, false),
            ("detok_add_special_ids__render_special", &with_bos, false, true),
            ("detok_add_special_ids__remove_special", &with_bos, true, false),
        ] {
            let want = case[field].as_str().unwrap();
            let got = lossy(&tokenizer.detokenize(ids, remove_special, render_special));
            check(name, field, got == want, format!("got {got:?}, want {want:?}"));
        }
        if case["roundtrip_parse_special"].as_bool().unwrap() {
            check(name, "roundtrip_parse_special", tokenizer.decode(&parsed, true) == text.as_bytes(), String::new());
        }
        if case["roundtrip_no_parse_special"].as_bool().unwrap() {
            check(
                name,
                "roundtrip_no_parse_special",
                tokenizer.decode(&plain, false) == text.as_bytes(),
                String::new(),
            );
        }

        for (ids, render_special) in [(&parsed, true), (&plain, false), (&with_bos, true), (&with_bos, false)] {
            let want = lossy(&tokenizer.decode(ids, render_special));
            let got = streamed(&tokenizer, ids, render_special);
            check(name, "stream", got == want, format!("render_special {render_special}: got {got:?}, want {want:?}"));
        }
    }
    eprintln!("{fixture_dir}: {} cases, {} mismatches", cases.len(), failures.len());
    assert!(failures.is_empty(), "{} mismatches with llama.cpp:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn smollm2_matches_llama_cpp() {
    check_fixture("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-q4_1");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check_fixture("gemma-3-270m-q4_k_m.gguf", "gemma3-270m-q4_k_m");
}
