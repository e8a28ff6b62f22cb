//! llama.cpp's SentencePiece-style BPE (`tokenizer.ggml.model` `llama`,
//! `llm_tokenizer_spm`): two adjacent symbols merge when their texts together
//! are a token, the best-scoring token first.

use super::merge::{self, ByteTokens, Merge, Seen};
use super::vocab::Vocab;
use super::words::Cuts;

/// The merge order needs no merge table: a pair merges into the token of its
/// two texts, looked up in the vocabulary, and ranks by that token's score
/// (higher first, ties by id), then by where it is split. A BPE with these
/// ranks does what llama.cpp does, which merges the best-scoring adjacent pair
/// whose concatenation is a token, leftmost on ties, with two exceptions where
/// a rank decides instead of the position: different tokens with equal scores
/// (in Gemma 3 only user-defined tokens, which never reach the model), and two
/// different splits of one token competing at overlapping positions (never
/// seen against a literal port of llama.cpp's algorithm).
pub(super) struct Spm {
    /// Each token's place in the merge order.
    order: Vec<u32>,
    bytes: Box<ByteTokens>,
    cuts: Cuts,
}

impl Spm {
    pub(super) fn new(vocab: &Vocab, scores: Option<&[f32]>) -> Spm {
        // NaN sorts last; -0.0 equals 0.0, as with C++'s `<`.
        let score = |id: u32| {
            scores.map_or(0.0, |s| if s[id as usize].is_nan() { f32::NEG_INFINITY } else { s[id as usize] + 0.0 })
        };
        let mut by_score: Vec<u32> = (0..vocab.len() as u32).collect();
        by_score.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
        let mut order = vec![0; by_score.len()];
        for (place, id) in by_score.into_iter().enumerate() {
            order[id as usize] = place as u32;
        }
        let bytes = merge::byte_tokens(vocab);
        Spm { order, cuts: Cuts::new(vocab, &bytes), bytes }
    }

    /// Tokenizes `text`, its spaces already escaped.
    pub(super) fn encode(&self, vocab: &Vocab, text: &str, seen: &mut Seen, out: &mut Vec<u32>) {
        for word in self.cuts.words(vocab, text) {
            seen.encode(word, out, |out| self.merge(vocab, word, out));
        }
    }

    fn merge(&self, vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
        let mut symbols = merge::characters(vocab, word, Some(&self.bytes));
        let mut joined = String::new();
        merge::merge_all(&mut symbols, |left, right| {
            let text = if left.literal && right.literal && left.end == right.start {
                &word[left.start as usize..right.end as usize]
            } else {
                joined.clear();
                joined.extend([left, right].map(|s| vocab.text(s.id).expect("a token id")));
                &joined
            };
            let id = vocab.id(text)?;
            let split = vocab.text(left.id).expect("a token id").len() as u64;
            Some(Merge { rank: u64::from(self.order[id as usize]) << 32 | split, id })
        });
        out.extend(symbols.iter().map(|s| s.id));
    }
}
