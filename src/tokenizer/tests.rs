use std::collections::HashMap;

use super::bpe::{byte_of_char, char_of_byte};
use super::stream::{clean_up_spaces, stable_clean_prefix};
use super::*;
use crate::gguf::Array;

fn strings(items: &[&str]) -> Value {
    Value::Array(Array::String(items.iter().collect()))
}

fn build(entries: Vec<(&str, Value)>) -> Result<Tokenizer, Error> {
    let map: HashMap<String, Value> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Tokenizer::from_lookup(&|key| map.get(key))
}

fn byte_tokens() -> Vec<String> {
    (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect()
}

/// A small SentencePiece vocabulary: ids 0..3 special, 4..259 bytes, then pieces.
fn spm_entries(extra: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<|turn|>"].map(String::from).to_vec();
    let mut types = vec![2, 3, 3, 3];
    tokens.extend(byte_tokens());
    types.extend([6; 256]);
    let pieces = [
        ("▁", 1),
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("ab", 1),
        ("▁a", 1),
        ("▁ab", 1),
        ("<u>", 4),
        ("xyz", 4),
        ("wx", 4),
        ("bc", 1),
        ("▁<", 1),
        ("<", 1),
        ("u", 1),
        (">", 1),
    ];
    for (text, ty) in pieces {
        tokens.push(text.to_string());
        types.push(ty);
    }
    let n = tokens.len();
    // Later pieces score lower, except "bc", which beats "ab".
    let scores: Vec<f32> = (0..n).map(|i| if tokens[i] == "bc" { 10.0 } else { -(i as f32) }).collect();
    let mut entries = vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens.into_iter().collect()))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types.to_vec()))),
    ];
    entries.extend(extra);
    entries
}

fn spm() -> Tokenizer {
    build(spm_entries(vec![])).unwrap()
}

fn id(t: &Tokenizer, text: &str) -> u32 {
    (0..t.vocab_size() as u32).find(|&i| t.token_text(i) == Some(text)).unwrap()
}

fn ids(t: &Tokenizer, texts: &[&str]) -> Vec<u32> {
    texts.iter().map(|s| id(t, s)).collect()
}

#[test]
fn spm_space_prefix_bos_and_scores() {
    let t = spm();
    assert_eq!((t.bos_id(), t.eos_id(), t.unk_id()), (Some(1), Some(2), Some(0)));
    assert!(t.add_bos());
    // "bc" outscores "ab", so "abc" is a + bc; the space prefix makes "▁".
    assert_eq!(t.encode("abc", true, false).unwrap(), [vec![1], ids(&t, &["▁a", "bc"])].concat());
    assert_eq!(t.encode("ab ab", false, false).unwrap(), ids(&t, &["▁ab", "▁ab"]));
    assert_eq!(t.decode(&t.encode("ab ab", false, false).unwrap(), false), b"ab ab");
    // A leading BOS that is removed keeps the space, as in llama.cpp.
    let with_bos = t.encode("ab", true, false).unwrap();
    assert_eq!(t.detokenize(&with_bos, true, false), b" ab");
    // Otherwise the BOS takes the one-time strip, as llama.cpp's detokenize does.
    assert_eq!(t.decode(&with_bos, true), b"<s> ab");
    assert_eq!(t.decode(&with_bos, false), b" ab");
}

#[test]
fn spm_byte_fallback() {
    let t = spm();
    let got = t.encode("é", false, false).unwrap();
    assert_eq!(got, ids(&t, &["▁", "<0xC3>", "<0xA9>"]));
    assert_eq!(t.token_piece(got[1], false), [0xc3]);
    assert_eq!(t.decode(&got, false), "é".as_bytes());
}

#[test]
fn spm_without_space_prefix() {
    let t = build(spm_entries(vec![("tokenizer.ggml.add_space_prefix", Value::Bool(false))])).unwrap();
    assert_eq!(t.encode("ab", false, false).unwrap(), ids(&t, &["ab"]));
    assert_eq!(t.decode(&ids(&t, &["▁ab"]), false), b" ab");
}

#[test]
fn partition_follows_special_parsing_rules() {
    let t = spm();
    let turn = id(&t, "<|turn|>");
    let user = id(&t, "<u>");
    // CONTROL text is plain text unless parse_special; USER_DEFINED always matches.
    assert_eq!(t.encode("<|turn|><u>", false, true).unwrap(), vec![turn, user]);
    let plain = t.encode("<|turn|><u>", false, false).unwrap();
    assert!(!plain.contains(&turn) && plain.ends_with(&[user]));
    // The space prefix goes only at the start and after a special token.
    assert_eq!(t.encode("a<u>a", false, false).unwrap(), ids(&t, &["▁a", "<u>", "▁a"]));
    // Longest token first over the whole text, not leftmost-longest.
    assert_eq!(t.encode("wxyz", false, false).unwrap(), ids(&t, &["▁", "<0x77>", "xyz"]));
    // Control tokens render only when asked.
    assert_eq!(t.decode(&[turn, user], false), b"<u>");
    assert_eq!(t.decode(&[turn, user], true), b"<|turn|><u>");
}

#[test]
fn rstrip_for_phi3() {
    let t = build(spm_entries(vec![("general.name", Value::String("Phi-3 mini".into()))])).unwrap();
    let turn = id(&t, "<|turn|>");
    // The spaces after the token are stripped; the SPM space prefix is then added back.
    assert_eq!(t.encode("<|turn|> \n ab", false, true).unwrap(), vec![turn, id(&t, "▁ab")]);
}

#[test]
fn end_of_generation_ids() {
    let t = spm();
    assert_eq!(t.eog_ids(), [2]);
    assert!(t.is_eog(2) && !t.is_eog(1));
    let t = build(spm_entries(vec![
        ("tokenizer.ggml.eos_token_id", Value::U32(3)),
        ("tokenizer.ggml.tokens", strings(&["<unk>", "<|im_end|>", "<end_of_turn>", "x", "y"])),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; 5]))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1; 5]))),
    ]))
    .unwrap();
    // By text (and made CONTROL), plus the EOS id.
    assert_eq!(t.eog_ids(), [1, 2, 3]);
    assert_eq!(t.eot_id(), Some(1));
    assert_eq!(t.decode(&[1, 3], false), b"x");
}

#[test]
fn decode_skips_ids_out_of_range() {
    let t = spm();
    assert_eq!(t.decode(&[u32::MAX, id(&t, "a")], false), b"a");
    assert!(t.token_piece(u32::MAX, true).is_empty());
}

#[test]
fn stream_holds_split_characters_and_replaces_invalid_bytes() {
    let t = spm();
    let euro = ids(&t, &["<0xE2>", "<0x82>", "<0xAC>"]);
    let mut stream = StreamDecoder::new(&t, false);
    assert_eq!(stream.push(euro[0]), "");
    assert_eq!(stream.push(euro[1]), "");
    assert_eq!(stream.push(euro[2]), "€");
    // A byte that can start nothing, then an unfinished character.
    assert_eq!(stream.push(id(&t, "<0xFF>")), "\u{FFFD}");
    assert_eq!(stream.push(euro[0]), "");
    assert_eq!(stream.push(id(&t, "a")), "\u{FFFD}a");
    assert_eq!(stream.push(euro[0]), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
}

#[test]
fn stream_drops_the_first_space_like_decode() {
    let t = std::rc::Rc::new(spm());
    let ids = t.encode("ab ab", false, false).unwrap();
    let mut stream = StreamDecoder::new(t.clone(), false);
    let text: String = ids.iter().map(|&i| stream.push(i)).collect::<String>() + &stream.finish();
    assert_eq!(text.as_bytes(), t.decode(&ids, false));
    assert_eq!(text, "ab ab");
}

/// Text is merged word by word, cut before each U+2581 that follows another
/// character, except where a token spans the cut (Gemma's `>▁</`).
#[test]
fn spm_merges_across_a_cut_that_a_token_spans() {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    tokens.extend(byte_tokens());
    let pieces = ["▁", "a", ">", "<", "/", "</", ">▁", ">▁</", "▁a"];
    tokens.extend(pieces.map(String::from));
    let mut types = vec![2, 3, 3];
    types.extend([6; 256]);
    types.extend([1; 9]);
    // No scores: tokens merge in the order of their ids.
    let t = build(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens.into_iter().collect()))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
    ])
    .unwrap();
    assert_eq!(t.encode("a> </a", false, false).unwrap(), ids(&t, &["▁a", ">▁</", "a"]));
    assert_eq!(t.encode("a> /a> </", false, false).unwrap(), ids(&t, &["▁a", ">▁", "/", "a", ">▁</"]));
}

/// GPT-2 byte-level vocabulary: the 256 byte symbols, then merged pieces.
fn gpt2_entries(pre: &str, merges: &[&str]) -> Vec<(&'static str, Value)> {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| char_of_byte(b).to_string()).collect();
    tokens.extend(["Ġa", "Ġb", "ab", "<|endoftext|>", "<|im_start|>"].map(String::from));
    let mut types = vec![1; tokens.len()];
    let n = types.len();
    types[n - 2] = 3;
    types[n - 1] = 3;
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens.into_iter().collect()))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types.to_vec()))),
        ("tokenizer.ggml.merges", strings(merges)),
    ]
}

#[test]
fn gpt2_byte_map_goes_both_ways() {
    for b in 0..=255u8 {
        assert_eq!(byte_of_char(char_of_byte(b)), Some(b));
    }
    assert_eq!((0..0x400).filter_map(char::from_u32).filter_map(byte_of_char).count(), 256);
}

#[test]
fn gpt2_byte_level_with_merges_and_clean_up() {
    let t = build(gpt2_entries("gpt-2", &["Ġ a", "Ġ b", "a b"])).unwrap();
    assert_eq!((t.bos_id(), t.add_bos(), t.unk_id()), (Some(11), false, None));
    let got = t.encode("ab a b<|endoftext|>", false, true).unwrap();
    assert_eq!(got, ids(&t, &["ab", "Ġa", "Ġb", "<|endoftext|>"]));
    assert_eq!(t.eog_ids(), [11, id(&t, "<|endoftext|>")]);
    // Bytes outside ASCII go through the byte map.
    let euro = t.encode("€", false, false).unwrap();
    assert_eq!(euro.len(), 3);
    assert_eq!(t.token_piece(euro[0], false), [0xe2]);
    // gpt-2 cleans up spaces on decode; the stream agrees.
    let text = "a . b 's it ' s";
    let ids = t.encode(text, false, false).unwrap();
    assert_eq!(t.decode(&ids, false), b"a. b's it's");
    let mut stream = StreamDecoder::new(&t, false);
    let streamed: String = ids.iter().map(|&i| stream.push(i)).collect::<String>() + &stream.finish();
    assert_eq!(streamed, "a. b's it's");
}

#[test]
fn pre_tokenizer_splits_digits_for_smollm() {
    let t = build(gpt2_entries("smollm", &["Ġ a", "Ġ b", "a b"])).unwrap();
    assert_eq!(t.encode("12", false, false).unwrap(), ids(&t, &["1", "2"]));
    assert_eq!(t.decode(&ids(&t, &["Ġa", "."]), false), b" a.");
}

#[test]
fn clean_up_is_stable_across_safe_cuts() {
    let alphabet = b" 'smrvetdl.?x";
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..20_000 {
        let raw: Vec<u8> = (0..next(12)).map(|_| alphabet[next(alphabet.len())]).collect();
        let later: Vec<u8> = (0..next(8)).map(|_| alphabet[next(alphabet.len())]).collect();
        let cut = stable_clean_prefix(&raw);
        let mut whole = [&raw[..], &later].concat();
        clean_up_spaces(&mut whole);
        let (mut head, mut tail) = (raw[..cut].to_vec(), [&raw[cut..], &later].concat());
        clean_up_spaces(&mut head);
        clean_up_spaces(&mut tail);
        assert_eq!(
            whole,
            [head, tail].concat(),
            "{:?} | {:?}",
            String::from_utf8_lossy(&raw),
            String::from_utf8_lossy(&later)
        );
    }
}

#[test]
fn malformed_metadata_is_a_clear_error() {
    let message = |r: Result<Tokenizer, Error>| match r {
        Err(Error::Tokenizer(m)) => m,
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("accepted bad metadata"),
    };
    let without = |key: &str| spm_entries(vec![]).into_iter().filter(|(k, _)| *k != key).collect();
    assert!(message(build(without("tokenizer.ggml.tokens"))).contains("tokenizer.ggml.tokens is missing"));
    assert!(message(build(without("tokenizer.ggml.model"))).contains("tokenizer.ggml.model is missing"));
    for model in ["rwkv", "plamo2"] {
        let m = message(build(spm_entries(vec![("tokenizer.ggml.model", Value::String(model.into()))])));
        assert!(m.contains(&format!("`{model}`")), "{m}");
    }
    let m =
        message(build(gpt2_entries("gpt-2", &[]).into_iter().filter(|(k, _)| *k != "tokenizer.ggml.merges").collect()));
    assert!(m.contains("merges is missing"), "{m}");
    let m = message(build(gpt2_entries("gpt-2", &["Ġ zz"])));
    assert!(m.contains("`zz`"), "{m}");
    let m = message(build(gpt2_entries("no-such-pre", &[])));
    assert!(m.contains("no-such-pre"), "{m}");
    let m = message(build(spm_entries(vec![("tokenizer.ggml.tokens", strings(&["a", "a"]))])));
    assert!(m.contains("duplicate"), "{m}");
}

/// A small WordPiece vocabulary in the GGUF's convention: U+2581 starts a word.
fn wpm_entries() -> Vec<(&'static str, Value)> {
    let tokens = ["[UNK]", "[CLS]", "[SEP]", "▁hello", "▁world", "▁wor", "ld", "▁!", "!"];
    let types = [2, 3, 3, 1, 1, 1, 1, 1, 1];
    vec![
        ("tokenizer.ggml.model", Value::String("bert".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types.to_vec()))),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.seperator_token_id", Value::U32(2)),
    ]
}

#[test]
fn wordpiece_normalizes_splits_and_wraps_in_cls_sep() {
    let t = build(wpm_entries()).unwrap();
    // Lowercased, accents stripped, punctuation alone; a word with no token is one UNK.
    let got = t.encode("Hello, WÓRLD! worldx", true, false).unwrap();
    assert_eq!(got, [vec![1], ids(&t, &["▁hello", "[UNK]", "▁world", "▁!", "[UNK]"]), vec![2]].concat());
    // Longest first from the left: "▁world" whole, then "ld".
    assert_eq!(t.encode("worldld", false, false).unwrap(), ids(&t, &["▁world", "ld"]));
    assert_eq!(t.decode(&t.encode("hello world", false, false).unwrap(), false), b" hello world");
}

/// A small Unigram vocabulary with a control, an unknown and a user-defined token.
fn ugm_entries(charsmap: Option<Vec<u8>>) -> Vec<(&'static str, Value)> {
    let tokens = ["<s>", "</s>", "<unk>", "<u>", "▁", "a", "b", "▁a", "ab"];
    let types = [3, 3, 2, 4, 1, 1, 1, 1, 1];
    let scores = [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, -1.0];
    let mut entries = vec![
        ("tokenizer.ggml.model", Value::String("t5".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types.to_vec()))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores.to_vec()))),
        ("tokenizer.ggml.eos_token_id", Value::U32(1)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(true)),
        ("tokenizer.ggml.remove_extra_whitespaces", Value::Bool(true)),
    ];
    if let Some(blob) = charsmap {
        entries.push(("tokenizer.ggml.precompiled_charsmap", Value::Array(Array::U8(blob))));
    }
    entries
}

#[test]
fn unigram_best_segmentation_spaces_and_unknowns() {
    let t = build(ugm_entries(None)).unwrap();
    // "▁a" + "▁" + "ab" (-3.5) beats "▁a" + "▁" + "a" + "b" (-6.5); spaces merge.
    assert_eq!(t.encode("  a   ab ", false, false).unwrap(), ids(&t, &["▁a", "▁", "ab"]));
    // Control text is not a piece: its characters are unknown, fused into one UNK.
    assert_eq!(t.encode("<s>", false, false).unwrap(), ids(&t, &["▁", "<unk>"]));
    // User-defined text is matched, and UGM adds EOS by default.
    assert_eq!(t.encode("a<u>", true, false).unwrap(), ids(&t, &["▁a", "<u>", "</s>"]));
}

#[test]
fn malformed_charsmap_is_an_error_not_a_panic() {
    let m = match build(ugm_entries(Some(vec![9, 0, 0, 0, 1]))) {
        Err(Error::Tokenizer(m)) => m,
        _ => panic!("accepted a charsmap shorter than its trie"),
    };
    assert!(m.contains("precompiled_charsmap"), "{m}");
    // A trie whose root points past its end: an error when text meets it.
    let mut blob = 4u32.to_le_bytes().to_vec();
    blob.extend(0xffff_fc00u32.to_le_bytes());
    blob.push(0);
    let t = build(ugm_entries(Some(blob))).unwrap();
    assert!(matches!(t.encode("a", false, false), Err(Error::Tokenizer(_))));
}
