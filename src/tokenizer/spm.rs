//! llama.cpp's SentencePiece-style BPE (`tokenizer.ggml.model` `llama`,
//! `llm_tokenizer_spm`), run as a Hugging Face BPE whose merges come from the scores.

use tokenizers::models::bpe::{Vocab, BPE};

use super::hf_error;
use crate::Error;

/// The SPM merges as a BPE merge list: every split of every token into two
/// tokens, ranked by the merged token's score (higher first, ties by id).
/// llama.cpp merges the best-scoring adjacent pair whose concatenation is a
/// token, leftmost on ties, which is what a BPE with these ranks does, with two
/// exceptions where a rank decides instead of the position: different tokens
/// with equal scores (in Gemma 3 only user-defined tokens, which never reach the
/// model), and two different splits of one token competing at overlapping
/// positions (never seen against a literal port of llama.cpp's algorithm).
pub(super) fn build_spm(tokens: &[String], scores: Option<&[f64]>) -> Result<BPE, Error> {
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
    // NaN sorts last; -0.0 equals 0.0, as with C++'s `<`.
    let score = |id: usize| scores.map_or(0.0, |s| if s[id].is_nan() { f64::NEG_INFINITY } else { s[id] + 0.0 });
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
    let mut merges = Vec::new();
    for id in order {
        let text = &tokens[id];
        for (at, _) in text.char_indices().skip(1) {
            let (left, right) = text.split_at(at);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push((left.to_owned(), right.to_owned()));
            }
        }
    }
    BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).build().map_err(hf_error)
}
