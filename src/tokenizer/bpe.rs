//! BPE with the file's merges: byte-level (`tokenizer.ggml.model` `gpt2`: the
//! pre-tokenizer's splits, then GPT-2's byte-to-character map) and Gemma 4's
//! (`gemma4`: spaces escaped to U+2581, characters left as they are).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::merge::{self, ByteTokens, Merge, Seen};
use super::pre::{PreTokenizer, Splitter};
use super::vocab::Vocab;
use super::words::Cuts;
use super::{bad, Lookup};
use crate::Error;

/// `tokenizer.ggml.merges` as token ids: each merge's three ids once, in
/// order, and a hash table of 4-byte ranks over them (Gemma 4's 514,906
/// merges take 11 MiB).
struct Merges {
    /// Each merge by rank: its left and right tokens and the token they make.
    list: Vec<[u32; 3]>,
    /// Ranks, hashed by their pair.
    ranks: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Merges {
    fn new(vocab: &Vocab, get: Lookup<'_>) -> Result<Merges, Error> {
        let strings = get("tokenizer.ggml.merges")
            .ok_or_else(|| bad("tokenizer.ggml.merges is missing (needed by BPE tokenizers)"))?
            .as_array()
            .and_then(|a| a.strings())
            .ok_or_else(|| bad("tokenizer.ggml.merges is not an array of strings"))?;
        let hasher = DefaultHashBuilder::default();
        let mut list = Vec::with_capacity(strings.len());
        let mut ranks = HashTable::with_capacity(strings.len());
        let mut joined = String::new();
        for (i, merge) in strings.iter().enumerate() {
            // As llama.cpp: the separator is the first space after the first byte.
            let (left, right) = merge
                .bytes()
                .skip(1)
                .position(|b| b == b' ')
                .map(|at| (&merge[..at + 1], &merge[at + 2..]))
                .ok_or_else(|| bad(format!("tokenizer.ggml.merges[{i}] `{merge}` is not two tokens")))?;
            joined.clear();
            joined.extend([left, right]);
            let id = |part: &str| {
                vocab.id(part).ok_or_else(|| {
                    bad(format!("tokenizer.ggml.merges[{i}] `{merge}` names `{part}`, which is not a token"))
                })
            };
            let merge = [id(left)?, id(right)?, id(&joined)?];
            let pair = |m: &[u32; 3]| [m[0], m[1]];
            let hash = hasher.hash_one(pair(&merge));
            // A pair listed twice keeps its first rank, as in llama.cpp.
            if ranks.find(hash, |&rank| pair(&list[rank as usize]) == pair(&merge)).is_none() {
                ranks.insert_unique(hash, list.len() as u32, |&rank| hasher.hash_one(pair(&list[rank as usize])));
                list.push(merge);
            }
        }
        Ok(Merges { list, ranks, hasher })
    }

    /// What the pair `left`, `right` merges into, if anything.
    fn get(&self, left: u32, right: u32) -> Option<Merge> {
        let hash = self.hasher.hash_one([left, right]);
        let &rank = self.ranks.find(hash, |&rank| self.list[rank as usize][..2] == [left, right])?;
        Some(Merge { rank: rank.into(), id: self.list[rank as usize][2] })
    }

    /// Merges the characters of `word` as far as the merges go.
    fn encode(&self, vocab: &Vocab, word: &str, byte_fallback: Option<&ByteTokens>, out: &mut Vec<u32>) {
        let mut symbols = merge::characters(vocab, word, byte_fallback);
        merge::merge_all(&mut symbols, |left, right| self.get(left.id, right.id));
        out.extend(symbols.iter().map(|s| s.id));
    }
}

/// Byte-level BPE (`gpt2`): the pre-tokenizer's regexes split the text, each
/// piece's bytes become GPT-2's characters, and each piece is merged alone.
pub(super) struct ByteLevel {
    merges: Merges,
    splitter: Splitter,
    /// A piece that is itself a token is taken whole, without merging.
    ignore_merges: bool,
}

impl ByteLevel {
    pub(super) fn new(vocab: &Vocab, get: Lookup<'_>, pre: &PreTokenizer) -> Result<Self, Error> {
        Ok(ByteLevel {
            merges: Merges::new(vocab, get)?,
            splitter: Splitter::new(pre)?,
            ignore_merges: pre.ignore_merges,
        })
    }

    pub(super) fn encode(&self, vocab: &Vocab, text: &str, seen: &mut Seen, out: &mut Vec<u32>) {
        let mut word = String::new();
        for piece in self.splitter.split(text) {
            seen.encode(piece, out, |out| {
                word.clear();
                word.extend(piece.bytes().map(char_of_byte));
                match vocab.id(&word) {
                    Some(id) if self.ignore_merges => out.push(id),
                    _ => self.merges.encode(vocab, &word, None, out),
                }
            });
        }
    }
}

/// GPT-2's byte ⇄ character map: printable Latin-1 bytes stand for themselves
/// and the 68 others were moved to U+0100.. in byte order.
pub(super) fn char_of_byte(b: u8) -> char {
    let cp = match b {
        0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff => b.into(),
        0x00..=0x20 => 0x100 + u32::from(b),
        0x7f..=0xa0 => 0x121 + u32::from(b - 0x7f),
        0xad => 0x143,
    };
    char::from_u32(cp).expect("below U+0144")
}

/// GPT-2's byte ⇄ character map, inverted.
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

/// Gemma 4's BPE, as llama.cpp's `LLAMA_VOCAB_PRE_TYPE_GEMMA4`: spaces become
/// U+2581, the text is cut into runs of newlines and runs of anything else, and
/// each run is merged from its characters; a character outside the vocabulary
/// becomes its `<0xXX>` byte tokens.
pub(super) struct EscapedBpe {
    merges: Merges,
    bytes: Box<ByteTokens>,
    cuts: Cuts,
}

impl EscapedBpe {
    pub(super) fn new(vocab: &Vocab, get: Lookup<'_>) -> Result<Self, Error> {
        let bytes = merge::byte_tokens(vocab);
        Ok(EscapedBpe { merges: Merges::new(vocab, get)?, cuts: Cuts::new(vocab, &bytes), bytes })
    }

    pub(super) fn encode(&self, vocab: &Vocab, text: &str, seen: &mut Seen, out: &mut Vec<u32>) {
        let escaped = text.replace(' ', "\u{2581}");
        let mut rest = escaped.as_str();
        while !rest.is_empty() {
            let newlines = rest.starts_with('\n');
            let end = rest.find(|c| (c == '\n') != newlines).unwrap_or(rest.len());
            let (run, after) = rest.split_at(end);
            rest = after;
            // A run of newlines that is a token is taken whole (llama.cpp PR 21343).
            match vocab.id(run) {
                Some(id) if newlines => out.push(id),
                _ => {
                    for word in self.cuts.words(vocab, run) {
                        seen.encode(word, out, |out| self.merges.encode(vocab, word, Some(&self.bytes), out));
                    }
                }
            }
        }
    }
}
