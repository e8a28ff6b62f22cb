//! WordPiece (`tokenizer.ggml.model` `bert`), as llama.cpp's `llm_tokenizer_wpm`:
//! BERT's normalization cuts the text into words, and each word is taken as
//! the longest tokens from its left. In the GGUF a token that starts a word
//! begins with U+2581 and a continuation has no mark (Hugging Face's files mark
//! continuations with `##` instead), so each word gets a leading U+2581 and
//! continuations need no prefix.

use regex_syntax::hir::{Class, HirKind};

use super::vocab::Vocab;
use super::{bad, get_bool, Lookup};
use crate::Error;

pub(super) struct Wpm {
    unk: u32,
    /// The longest token's length in bytes: no match from a position is longer.
    max_len: usize,
    lowercase: bool,
    /// Each character becomes the first of its canonical decomposition, and
    /// combining marks are dropped.
    strip_accents: bool,
    categories: Categories,
}

impl Wpm {
    pub(super) fn new(vocab: &Vocab, unk: Option<u32>, get: Lookup<'_>) -> Result<Self, Error> {
        let unk = unk.ok_or_else(|| bad("a WordPiece vocabulary needs unknown_token_id"))?;
        // llama.cpp's defaults: lowercase, and strip accents when lowercasing.
        let lowercase = get_bool(get, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
        let strip_accents = get_bool(get, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
        let max_len = vocab.texts().map(str::len).max().unwrap_or(0);
        Ok(Wpm { unk, max_len, lowercase, strip_accents, categories: Categories::new() })
    }

    /// Each word, with its U+2581, as the longest token that starts it, then
    /// the longest that starts the rest, and so on. A word that runs into a
    /// character no token continues with becomes one UNK, as in llama.cpp.
    pub(super) fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut marked = String::new();
        for word in self.words(text) {
            marked.clear();
            marked.push('\u{2581}');
            marked.push_str(&word);
            let word_start = out.len();
            let mut start = 0;
            while start < marked.len() {
                let longest = (start + 1..=marked.len().min(start + self.max_len))
                    .rev()
                    .filter(|&end| marked.is_char_boundary(end))
                    .find_map(|end| Some((end, vocab.id(&marked[start..end])?)));
                let Some((end, id)) = longest else {
                    out.truncate(word_start);
                    out.push(self.unk);
                    break;
                };
                out.push(id);
                start = end;
            }
        }
    }

    /// llama.cpp's `preprocess`: whitespace ends a word, controls vanish, and
    /// each punctuation mark, ASCII symbol and CJK ideograph is a word alone.
    fn words(&self, text: &str) -> Vec<String> {
        let mut words = vec![String::new()];
        for c in text.chars() {
            let c = if self.strip_accents { first_of_decomposition(c) } else { c };
            if c.is_whitespace() {
                if !words.last().is_some_and(String::is_empty) {
                    words.push(String::new());
                }
                continue;
            }
            if c == '\0' || c == '\u{FFFD}' || self.categories.control(c) {
                continue;
            }
            if self.strip_accents && self.categories.mark(c) {
                continue;
            }
            let lowered = if self.lowercase { c.to_lowercase().next().unwrap_or(c) } else { c };
            if c.is_ascii_punctuation() || self.categories.punctuation(c) || is_cjk_ideograph(c) {
                if !words.last().is_some_and(String::is_empty) {
                    words.push(String::new());
                }
                words.last_mut().expect("never empty").push(lowered);
                words.push(String::new());
            } else {
                words.last_mut().expect("never empty").push(lowered);
            }
        }
        words.retain(|w| !w.is_empty());
        words
    }
}

/// The first character of `c`'s canonical decomposition (`c` itself if it has
/// none): llama.cpp's one-to-one `unicode_cpts_normalize_nfd`.
fn first_of_decomposition(c: char) -> char {
    let mut first = None;
    unicode_normalization_alignments::char::decompose_canonical(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

/// BERT's CJK ranges (Hugging Face's, which llama.cpp copies).
fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// The Unicode general categories that llama.cpp's flags name, from the
/// tables of `regex-syntax`.
struct Categories {
    /// P.
    punctuation: Vec<(char, char)>,
    /// M (Mn, Mc, Me): llama.cpp's accent marks.
    mark: Vec<(char, char)>,
    /// Cc, Cf, Co (and Cs, which no `char` is): llama.cpp's controls;
    /// unassigned code points are not.
    control: Vec<(char, char)>,
}

impl Categories {
    fn new() -> Self {
        let ranges = |pattern: &str| match regex_syntax::parse(pattern).expect("a Unicode class").into_kind() {
            HirKind::Class(Class::Unicode(class)) => class.ranges().iter().map(|r| (r.start(), r.end())).collect(),
            _ => unreachable!("{pattern} is a Unicode class"),
        };
        Categories { punctuation: ranges(r"\p{P}"), mark: ranges(r"\p{M}"), control: ranges(r"[\p{Cc}\p{Cf}\p{Co}]") }
    }

    fn punctuation(&self, c: char) -> bool {
        in_ranges(&self.punctuation, c)
    }

    fn mark(&self, c: char) -> bool {
        in_ranges(&self.mark, c)
    }

    fn control(&self, c: char) -> bool {
        in_ranges(&self.control, c)
    }
}

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges
        .binary_search_by(|&(start, end)| {
            if end < c {
                std::cmp::Ordering::Less
            } else if start > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}
