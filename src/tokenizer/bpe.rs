//! BPE with the file's merges: byte-level (`tokenizer.ggml.model` `gpt2`: the
//! pre-tokenizer's splits, then GPT-2's byte-to-character map) and Gemma 4's
//! (`gemma4`: spaces escaped to U+2581, characters left as they are).

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, SplitDelimiterBehavior};

use super::pre::PreTokenizer;
use super::{bad, hf_error, Lookup};
use crate::Error;

pub(super) fn build_byte_level(
    tokens: &[String],
    get: Lookup<'_>,
    pre: &PreTokenizer,
) -> Result<tokenizers::Tokenizer, Error> {
    let (vocab, merges) = read_merges(tokens, get)?;
    let bpe =
        BPE::builder().vocab_and_merges(vocab, merges).ignore_merges(pre.ignore_merges).build().map_err(hf_error)?;
    let mut steps = Vec::with_capacity(pre.regexes.len() + 1);
    for regex in pre.regexes {
        let split = Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(hf_error)?;
        steps.push(PreTokenizerWrapper::Split(split));
    }
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
    let mut hf = tokenizers::Tokenizer::new(bpe);
    hf.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(hf)
}

/// GPT-2's byte ⇄ character map, inverted: printable Latin-1 bytes stand for
/// themselves and the 68 others were moved to U+0100.. in byte order.
pub(super) fn byte_of_char(c: char) -> Option<u8> {
    let cp = c as u32;
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    match cp {
        _ if printable(cp) => Some(cp as u8),
        0x100..=0x120 => Some((cp - 0x100) as u8),
        0x121..=0x142 => Some((cp - 0x121 + 0x7f) as u8),
        0x143 => Some(0xad),
        _ => None,
    }
}

/// llama.cpp's `llama_decode_text`, including its marker for characters that
/// are not byte-level symbols.
pub(super) fn byte_level_decode(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match byte_of_char(c) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in c.encode_utf8(&mut utf8).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// `tokenizer.ggml.merges` as pairs of tokens, and the vocabulary they name.
fn read_merges(tokens: &[String], get: Lookup<'_>) -> Result<(Vocab, Vec<(String, String)>), Error> {
    let list = get("tokenizer.ggml.merges")
        .ok_or_else(|| bad("tokenizer.ggml.merges is missing (needed by BPE tokenizers)"))?
        .as_array()
        .and_then(|a| a.strings())
        .ok_or_else(|| bad("tokenizer.ggml.merges is not an array of strings"))?;
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
    let mut merges = Vec::with_capacity(list.len());
    for (i, merge) in list.iter().enumerate() {
        // As llama.cpp: the separator is the first space after the first byte.
        let (left, right) = merge
            .bytes()
            .skip(1)
            .position(|b| b == b' ')
            .map(|at| (&merge[..at + 1], &merge[at + 2..]))
            .ok_or_else(|| bad(format!("tokenizer.ggml.merges[{i}] `{merge}` is not two tokens")))?;
        for part in [left, right, &format!("{left}{right}")] {
            if !vocab.contains_key(part) {
                return Err(bad(format!("tokenizer.ggml.merges[{i}] `{merge}` names `{part}`, which is not a token")));
            }
        }
        merges.push((left.to_owned(), right.to_owned()));
    }
    Ok((vocab, merges))
}

/// Gemma 4's BPE, as llama.cpp's `LLAMA_VOCAB_PRE_TYPE_GEMMA4`: spaces become
/// U+2581, the text is cut into runs of newlines and runs of anything else, and
/// each run is merged from its characters; a character outside the vocabulary
/// becomes its `<0xXX>` byte tokens.
pub(super) struct EscapedBpe {
    bpe: BPE,
}

impl EscapedBpe {
    pub(super) fn new(tokens: &[String], get: Lookup<'_>) -> Result<Self, Error> {
        let (vocab, merges) = read_merges(tokens, get)?;
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).build().map_err(hf_error)?;
        Ok(EscapedBpe { bpe })
    }

    pub(super) fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), Error> {
        let escaped = text.replace(' ', "\u{2581}");
        let mut rest = escaped.as_str();
        while !rest.is_empty() {
            let newlines = rest.starts_with('\n');
            let end = rest.find(|c| (c == '\n') != newlines).unwrap_or(rest.len());
            let (run, after) = rest.split_at(end);
            rest = after;
            // A run of newlines that is a token is taken whole (llama.cpp PR 21343).
            match self.bpe.token_to_id(run) {
                Some(id) if newlines => out.push(id),
                _ => out.extend(self.bpe.tokenize(run).map_err(hf_error)?.iter().map(|t| t.id)),
            }
        }
        Ok(())
    }
}
