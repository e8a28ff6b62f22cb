//! Cutting U+2581-escaped text into words that merge alone, for the models
//! that merge a whole fragment of text at once (`llama`, `gemma4`): merging
//! word by word keeps the merge queue small, and lets a word that comes again
//! be copied instead (see [`super::merge::Seen`]).

use super::merge::ByteTokens;
use super::vocab::Vocab;

const SPACE: char = '\u{2581}';

/// At most this many tokens may span a cut for cutting to be worth it: each
/// is checked at every cut.
const MAX_SPANNING: usize = 8;

/// The cuts: before each U+2581 that follows another character, unless a
/// token that may be merged there spans it. Merging then gives the tokens
/// that merging the whole text gives: a merge across the cut would make a
/// token whose text has a U+2581 after another character (U+2581 being a
/// token, and the symbol before the cut ending in another character or in
/// the `>` of a byte token), and such a token, when it holds no byte token's
/// text, is made only where its text is in the input.
pub(super) struct Cuts {
    /// The tokens with a U+2581 after another character, each with the byte
    /// offset of such a U+2581; `None` where cutting is not safe or not worth it.
    spanning: Option<Vec<(u32, usize)>>,
}

impl Cuts {
    pub(super) fn new(vocab: &Vocab, bytes: &ByteTokens) -> Cuts {
        // Without every byte token, a character may vanish and join what is
        // around it; without U+2581, a cut's first symbol is a byte token.
        let mut ready = bytes.iter().all(Option::is_some) && vocab.id(&SPACE.to_string()).is_some();
        let mut spanning = Vec::new();
        for (id, text) in (0..).zip(vocab.texts()) {
            let cuts = text.char_indices().filter(|&(at, c)| c == SPACE && at > 0 && !text[..at].ends_with(SPACE));
            for (at, _) in cuts {
                spanning.push((id, at));
                ready &= !text.contains("<0x") && spanning.len() <= MAX_SPANNING;
            }
        }
        Cuts { spanning: ready.then_some(spanning) }
    }

    /// The words of `text`, in order.
    pub(super) fn words<'t>(&self, vocab: &Vocab, text: &'t str) -> Vec<&'t str> {
        let Some(spanning) = &self.spanning else { return vec![text] };
        let mut words = Vec::new();
        let mut start = 0;
        for (at, c) in text.char_indices() {
            let cut = c == SPACE
                && at > 0
                && !text[..at].ends_with(SPACE)
                && !spanning.iter().any(|&(id, offset)| {
                    let token = vocab.text(id).expect("a token id");
                    at.checked_sub(offset).is_some_and(|from| text.as_bytes()[from..].starts_with(token.as_bytes()))
                });
            if cut {
                words.push(&text[start..at]);
                start = at;
            }
        }
        words.push(&text[start..]);
        words
    }
}
