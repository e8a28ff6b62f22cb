//! The vocabulary: each token's text, stored once, and the way back from a
//! text to its id.

use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::bad;
use crate::gguf::Strings;
use crate::Error;

/// Token texts in one buffer, and a hash table of ids that compares by those
/// texts: no text is stored twice, and the index costs 4 bytes an entry (10 to
/// 14 a token with the hash table's spare room and the texts' offsets).
pub(super) struct Vocab {
    texts: Strings,
    ids: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Vocab {
    /// `tokenizer.ggml.tokens`, with llama.cpp's rules: an empty token becomes
    /// `[EMPTY_<id>]` and a duplicate is an error.
    pub(super) fn new(list: &Strings) -> Result<Vocab, Error> {
        if list.is_empty() {
            return Err(bad("tokenizer.ggml.tokens is empty"));
        }
        if u32::try_from(list.len()).is_err() {
            return Err(bad(format!("tokenizer.ggml.tokens holds {} tokens, too many for 32-bit ids", list.len())));
        }
        let empty: Vec<String> =
            list.iter().enumerate().filter(|(_, t)| t.is_empty()).map(|(id, _)| format!("[EMPTY_{id}]")).collect();
        let bytes = list.text_len() + empty.iter().map(String::len).sum::<usize>();
        let mut texts = Strings::with_capacity(list.len(), bytes);
        let mut ids = HashTable::with_capacity(list.len());
        let hasher = DefaultHashBuilder::default();
        let mut empty = empty.iter();
        for (id, text) in list.iter().enumerate() {
            let text = match text {
                "" => empty.next().expect("one for each empty token"),
                text => text,
            };
            let hash = hasher.hash_one(text);
            let same = |&other: &u32| texts.get(other as usize) == Some(text);
            let rehash = |&other: &u32| hasher.hash_one(texts.get(other as usize).expect("indexed"));
            match ids.entry(hash, same, rehash) {
                Entry::Occupied(first) => {
                    return Err(bad(format!(
                        "duplicate token `{text}` in the vocabulary: ids {} and {id}",
                        first.get()
                    )))
                }
                Entry::Vacant(slot) => {
                    slot.insert(id as u32);
                }
            }
            texts.push(text).map_err(|e| bad(format!("tokenizer.ggml.tokens: {e}")))?;
        }
        Ok(Vocab { texts, ids, hasher })
    }

    pub(super) fn len(&self) -> usize {
        self.texts.len()
    }

    /// The text of token `id`.
    pub(super) fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize)
    }

    /// The id of the token whose text is `text`.
    pub(super) fn id(&self, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        self.ids.find(hash, |&id| self.texts.get(id as usize) == Some(text)).copied()
    }

    /// Every token's text, by id.
    pub(super) fn texts(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.texts.iter()
    }
}
