//! Unigram (`tokenizer.ggml.model` `t5`), as llama.cpp's `llm_tokenizer_ugm`:
//! SentencePiece's normalization (the file's precompiled character map, then
//! spaces escaped to U+2581, merged and prefixed as the flags say), then the
//! segmentation into pieces whose scores add up to the most.

use super::special::attr::{NORMAL, UNUSED, USER_DEFINED};
use super::trie::Trie;
use super::vocab::Vocab;
use super::{bad, get_bool, Lookup};
use crate::Error;

pub(super) struct Ugm {
    /// The NORMAL, USER_DEFINED and UNUSED tokens: the pieces of a segmentation.
    pieces: Trie,
    /// Each token's score as a piece: USER_DEFINED ones score 0.
    scores: Vec<f32>,
    unk: u32,
    /// A character that no piece covers is UNK, at 10 below the lowest NORMAL score.
    unknown_score: f64,
    charsmap: Option<Charsmap>,
    /// USER_DEFINED tokens, which normalization leaves as they are.
    user_defined: Trie,
    add_space_prefix: bool,
    remove_extra_whitespaces: bool,
}

/// The best segmentation of the text up to some position: its score and its last piece.
#[derive(Clone, Copy)]
struct Best {
    score: f64,
    token: u32,
    start: usize,
}

impl Ugm {
    pub(super) fn new(
        vocab: &Vocab,
        attrs: &[u16],
        scores: Option<&[f32]>,
        unk: Option<u32>,
        add_space_prefix: bool,
        get: Lookup<'_>,
    ) -> Result<Self, Error> {
        let unk = unk.ok_or_else(|| bad("a Unigram vocabulary needs unknown_token_id"))?;
        let scores = scores.ok_or_else(|| bad("a Unigram vocabulary needs tokenizer.ggml.scores"))?;
        let ids = 0..vocab.len() as u32;
        let min_normal = ids.clone().filter(|&id| attrs[id as usize] & NORMAL != 0).map(|id| scores[id as usize]);
        let unknown_score = f64::from(min_normal.fold(f32::MAX, f32::min) - 10.0);
        let scores =
            ids.clone().map(|id| if attrs[id as usize] & USER_DEFINED != 0 { 0.0 } else { scores[id as usize] });
        let is_piece = |&id: &u32| attrs[id as usize] & (NORMAL | USER_DEFINED | UNUSED) != 0;

        let charsmap = match get("tokenizer.ggml.precompiled_charsmap") {
            None => None,
            Some(value) => {
                let list =
                    value.as_array().ok_or_else(|| bad("tokenizer.ggml.precompiled_charsmap is not an array"))?;
                let blob = (0..list.len())
                    .map(|i| list.get(i).and_then(|v| v.as_i64()).map(|b| b as u8))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| bad("tokenizer.ggml.precompiled_charsmap holds a non-integer"))?;
                Some(Charsmap::new(&blob)?)
            }
        };
        Ok(Ugm {
            pieces: Trie::new(vocab, ids.clone().filter(is_piece)),
            scores: scores.collect(),
            unk,
            unknown_score,
            charsmap,
            user_defined: Trie::new(vocab, ids.filter(|&id| attrs[id as usize] & USER_DEFINED != 0)),
            add_space_prefix,
            remove_extra_whitespaces: get_bool(get, "tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(false),
        })
    }

    /// llama.cpp's `tokenize`: the best segmentation of each prefix of the
    /// normalized text, from the best of the shorter ones, then back from its
    /// end; unknown characters in a row are one UNK.
    pub(super) fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<(), Error> {
        let text = self.normalize(text)?;
        let text = text.as_bytes();
        if text.is_empty() {
            return Ok(());
        }
        let mut best = vec![Best { score: f64::MIN, token: self.unk, start: 0 }; text.len() + 1];
        best[0].score = 0.0;
        let mut start = 0;
        while start < text.len() {
            let char_len = utf8_len(text[start]).min(text.len() - start);
            let here = best[start].score;
            let mut offer = |end: usize, token: u32, score: f64| {
                if here + score > best[end].score {
                    best[end] = Best { score: here + score, token, start };
                }
            };
            let mut whole_char = false;
            for (len, token) in self.pieces.prefixes(&text[start..]) {
                whole_char |= len == char_len;
                offer(start + len, token, self.scores[token as usize].into());
            }
            if !whole_char {
                offer(start + char_len, self.unk, self.unknown_score);
            }
            start += char_len;
        }
        let first = out.len();
        let (mut end, mut after_unknown) = (text.len(), false);
        while end > 0 {
            let Best { token, start, .. } = best[end];
            let unknown = token == self.unk;
            if !(unknown && after_unknown) {
                out.push(token);
            }
            after_unknown = unknown;
            end = start;
        }
        out[first..].reverse();
        Ok(())
    }

    /// llama.cpp's `normalize`: the longest user-defined token, else the
    /// charsmap's longest match, else one character, at each step; then
    /// spaces become U+2581, merged into one before each word with
    /// `remove_extra_whitespaces`, and one is put before the text with
    /// `add_space_prefix`.
    fn normalize(&self, text: &str) -> Result<String, Error> {
        const SPACE: &[u8] = "\u{2581}".as_bytes();
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len() * 3);
        let (mut in_word, mut space_prepended) = (false, false);
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let (piece, consumed) = if let Some(len) = self.user_defined.longest_prefix(rest) {
                (&rest[..len], len)
            } else if let Some((len, replacement)) =
                self.charsmap.as_ref().map(|m| m.longest_match(rest)).transpose()?.flatten()
            {
                (replacement, len)
            } else {
                let len = utf8_len(rest[0]).min(rest.len());
                match std::str::from_utf8(&rest[..len]) {
                    Ok(_) => (&rest[..len], len),
                    // Only after a charsmap match that ended inside a character.
                    Err(_) => ("\u{FFFD}".as_bytes(), 1),
                }
            };
            for &c in piece {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (self.add_space_prefix && !space_prepended) || self.remove_extra_whitespaces {
                            out.extend_from_slice(SPACE);
                            space_prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !self.remove_extra_whitespaces {
                        out.extend_from_slice(SPACE);
                    }
                }
            }
            at += consumed;
        }
        String::from_utf8(out).map_err(|_| bad("tokenizer.ggml.precompiled_charsmap maps text to invalid UTF-8"))
    }
}

/// The length of a UTF-8 sequence from its first byte (1 for a stray byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// SentencePiece's precompiled character map: a double-array trie of byte
/// strings, XOR-compressed (Kanda, 2018), whose leaves point at NUL-terminated
/// replacements.
struct Charsmap {
    units: Vec<u32>,
    replacements: Vec<u8>,
}

impl Charsmap {
    /// The blob: the trie's size in bytes (u32, little-endian), the trie's
    /// units, then the replacements.
    fn new(blob: &[u8]) -> Result<Self, Error> {
        let size = blob.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        let size = size.filter(|&size| size % 4 == 0 && size.saturating_add(4) < blob.len());
        let size = size.ok_or_else(|| bad("tokenizer.ggml.precompiled_charsmap is malformed"))?;
        let units =
            blob[4..4 + size].chunks_exact(4).map(|u| u32::from_le_bytes(u.try_into().expect("4 bytes"))).collect();
        Ok(Charsmap { units, replacements: blob[4 + size..].to_vec() })
    }

    /// The longest prefix of `text` that the map replaces: its length and its
    /// replacement. A NUL byte ends the search, as in SentencePiece.
    fn longest_match(&self, text: &[u8]) -> Result<Option<(usize, &[u8])>, Error> {
        let unit = |index: usize| {
            self.units
                .get(index)
                .copied()
                .ok_or_else(|| bad("tokenizer.ggml.precompiled_charsmap points outside itself"))
        };
        let base = |unit: u32| ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize;
        let mut index = base(unit(0)?);
        let mut found = None;
        for (i, &c) in text.iter().enumerate() {
            if c == 0 {
                break;
            }
            index ^= c as usize;
            let node = unit(index)?;
            if node & ((1 << 31) | 0xff) != c as u32 {
                break;
            }
            index ^= base(node);
            if (node >> 8) & 1 == 1 {
                found = Some((i + 1, (unit(index)? & ((1 << 31) - 1)) as usize));
            }
        }
        let Some((len, offset)) = found else { return Ok(None) };
        let replacement = self.replacements.get(offset..).unwrap_or(&[]);
        let end = replacement
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("tokenizer.ggml.precompiled_charsmap holds an unterminated replacement"))?;
        Ok(Some((len, &replacement[..end])))
    }
}
