//! The merge loop of every BPE model here: a word starts as the tokens of its
//! characters, and the adjacent pair with the lowest rank is merged, the
//! leftmost on ties, until no adjacent pair merges (Hugging Face's
//! `Word::merge_all`).

use std::cmp::Reverse;

use dary_heap::QuaternaryHeap;
use hashbrown::HashMap;

use super::vocab::Vocab;

/// A token of a word, covering its bytes `start..end` (words are shorter than
/// 4 GiB: [`super::Tokenizer::encode`] checks).
#[derive(Clone, Copy)]
pub(super) struct Symbol {
    pub(super) id: u32,
    pub(super) start: u32,
    pub(super) end: u32,
    /// Whether the token's text is the word's bytes `start..end` (not so for
    /// the `<0xXX>` tokens of byte fallback, nor for what they merge into).
    pub(super) literal: bool,
}

/// What merging a pair makes: the token, and the merge's rank (lowest first).
pub(super) struct Merge {
    pub(super) rank: u64,
    pub(super) id: u32,
}

/// The `<0xXX>` token of each byte, for a character that is not a token.
pub(super) type ByteTokens = [Option<u32>; 256];

pub(super) fn byte_tokens(vocab: &Vocab) -> Box<ByteTokens> {
    Box::new(std::array::from_fn(|b| vocab.id(&format!("<0x{b:02X}>"))))
}

/// The word's characters as tokens. A character that is not a token becomes
/// its `<0xXX>` tokens with `byte_fallback` (when all of them exist), and is
/// dropped otherwise.
pub(super) fn characters(vocab: &Vocab, word: &str, byte_fallback: Option<&ByteTokens>) -> Vec<Symbol> {
    let mut symbols = Vec::with_capacity(word.len());
    for (start, c) in word.char_indices() {
        let end = start + c.len_utf8();
        if let Some(id) = vocab.id(&word[start..end]) {
            symbols.push(Symbol { id, start: start as u32, end: end as u32, literal: true });
        } else if let Some(bytes) = byte_fallback {
            let ids: Option<Vec<u32>> = word.as_bytes()[start..end].iter().map(|&b| bytes[b as usize]).collect();
            for (at, id) in (start as u32..).zip(ids.into_iter().flatten()) {
                symbols.push(Symbol { id, start: at, end: at + 1, literal: false });
            }
        }
    }
    symbols
}

/// A pair in the queue: the symbol at `pos` and the next one, which ended at
/// `end`. Symbols only grow, so once either has changed, the pair at `pos`
/// ends past `end` and the entry is stale. (16 bytes: the queue of a long
/// word is large, and its speed is its size.)
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    rank: u64,
    pos: u32,
    end: u32,
}

const NONE: u32 = u32::MAX;

/// A symbol in the word's linked list.
struct Node {
    symbol: Symbol,
    prev: u32,
    next: u32,
}

/// Merges `symbols` in place; `merge` tells what a pair of adjacent symbols
/// makes, if anything.
pub(super) fn merge_all(symbols: &mut Vec<Symbol>, mut merge: impl FnMut(&Symbol, &Symbol) -> Option<Merge>) {
    let n = symbols.len() as u32;
    let mut nodes: Vec<Node> = (0..n)
        .zip(symbols.iter())
        .map(|(i, &symbol)| Node {
            symbol,
            prev: if i > 0 { i - 1 } else { NONE },
            next: if i + 1 < n { i + 1 } else { NONE },
        })
        .collect();
    let mut queue = QuaternaryHeap::with_capacity(symbols.len());
    for (pos, pair) in (0..).zip(symbols.windows(2)) {
        if let Some(m) = merge(&pair[0], &pair[1]) {
            queue.push(Reverse(Candidate { rank: m.rank, pos, end: pair[1].end }));
        }
    }
    while let Some(Reverse(top)) = queue.pop() {
        let node = &nodes[top.pos as usize];
        if node.next == NONE {
            continue;
        }
        let (left, right) = (node.symbol, nodes[node.next as usize].symbol);
        if right.end != top.end {
            continue;
        }
        let Some(Merge { id, .. }) = merge(&left, &right) else { continue };
        let right_pos = node.next as usize;
        let after = nodes[right_pos].next;
        // The right symbol leaves the list; its entries in the queue go stale.
        nodes[right_pos].next = NONE;
        if after != NONE {
            nodes[after as usize].prev = top.pos;
        }
        let literal = left.literal && right.literal && left.end == right.start;
        let merged = Symbol { id, start: left.start, end: right.end, literal };
        let node = &mut nodes[top.pos as usize];
        node.symbol = merged;
        node.next = after;
        let prev = node.prev;
        if prev != NONE {
            if let Some(m) = merge(&nodes[prev as usize].symbol, &merged) {
                queue.push(Reverse(Candidate { rank: m.rank, pos: prev, end: merged.end }));
            }
        }
        if after != NONE {
            let next = nodes[after as usize].symbol;
            if let Some(m) = merge(&merged, &next) {
                queue.push(Reverse(Candidate { rank: m.rank, pos: top.pos, end: next.end }));
            }
        }
    }
    symbols.clear();
    let mut at = if nodes.is_empty() { NONE } else { 0 };
    while at != NONE {
        symbols.push(nodes[at as usize].symbol);
        at = nodes[at as usize].next;
    }
}

/// The words already merged in one text, and where their ids went in the
/// output: a text repeats its words (and, for Gemma, whole lines of code),
/// and copying their ids beats merging them again.
#[derive(Default)]
pub(super) struct Seen {
    words: HashMap<String, (usize, usize)>,
}

impl Seen {
    /// Only shorter words are kept: longer ones seldom come again.
    const MAX_LEN: usize = 256;

    /// Appends the ids of `word`: those it had before, or what `merge` appends.
    pub(super) fn encode(&mut self, word: &str, out: &mut Vec<u32>, merge: impl FnOnce(&mut Vec<u32>)) {
        if let Some(&(start, end)) = self.words.get(word) {
            out.extend_from_within(start..end);
            return;
        }
        let start = out.len();
        merge(out);
        if word.len() < Self::MAX_LEN {
            self.words.insert(word.to_owned(), (start, out.len()));
        }
    }
}
