//! A byte trie of token texts: which tokens a text starts with. It finds the
//! special tokens in a text before the model runs (Gemma has 6,400 of them,
//! mostly `<unusedN>`: searching the text once per token would cost 6,400
//! passes) and Unigram's pieces at each position of the text.

use std::collections::VecDeque;

use super::vocab::Vocab;

const NONE: u32 = u32::MAX;

/// Nodes in breadth-first order, so that each node's children are
/// consecutive nodes and the trie is three flat arrays: 9 bytes a node, where
/// a node with a map or a vector of its own costs several times that (the
/// 250,000 Unigram pieces of XLM-R make 780,000 nodes).
pub(super) struct Trie {
    /// Node `i`'s children are the nodes `first_child[i]..first_child[i + 1]`.
    first_child: Vec<u32>,
    /// The byte that leads to each node (the root's is unused); ascending among siblings.
    labels: Vec<u8>,
    /// The token whose text ends at each node, or `NONE`.
    tokens: Vec<u32>,
}

impl Trie {
    /// The trie of the texts of `ids` (distinct, non-empty texts).
    pub(super) fn new(vocab: &Vocab, ids: impl IntoIterator<Item = u32>) -> Trie {
        let text = |id: u32| vocab.text(id).expect("a token id").as_bytes();
        let mut keys: Vec<u32> = ids.into_iter().collect();
        keys.sort_unstable_by(|&a, &b| text(a).cmp(text(b)));
        let mut trie = Trie { first_child: Vec::new(), labels: vec![0], tokens: vec![NONE] };
        // Each queued node: the range of `keys` that start with its prefix, and the prefix's length.
        let mut queue = VecDeque::from([(0, keys.len(), 0)]);
        while let Some((start, end, depth)) = queue.pop_front() {
            trie.first_child.push(trie.labels.len() as u32);
            // A key that is the prefix itself sorts first and ends at this node.
            let mut from = start + keys[start..end].iter().take_while(|&&id| text(id).len() == depth).count();
            while from < end {
                let byte = text(keys[from])[depth];
                let to = from + keys[from..end].iter().take_while(|&&id| text(id)[depth] == byte).count();
                let first = keys[from];
                trie.labels.push(byte);
                trie.tokens.push(if text(first).len() == depth + 1 { first } else { NONE });
                queue.push_back((from, to, depth + 1));
                from = to;
            }
        }
        trie.first_child.push(trie.labels.len() as u32);
        trie
    }

    fn child(&self, node: u32, byte: u8) -> Option<u32> {
        let children = self.first_child[node as usize] as usize..self.first_child[node as usize + 1] as usize;
        let at = self.labels[children.clone()].binary_search(&byte).ok()?;
        Some((children.start + at) as u32)
    }

    /// The tokens that `text` starts with, shortest first: each one's length and id.
    pub(super) fn prefixes<'t>(&'t self, text: &'t [u8]) -> impl Iterator<Item = (usize, u32)> + 't {
        let mut node = 0;
        text.iter()
            .enumerate()
            .map_while(move |(i, &byte)| {
                node = self.child(node, byte)?;
                Some((i + 1, self.tokens[node as usize]))
            })
            .filter(|&(_, token)| token != NONE)
    }

    /// The length of the longest token text that `text` starts with.
    pub(super) fn longest_prefix(&self, text: &[u8]) -> Option<usize> {
        self.prefixes(text).last().map(|(len, _)| len)
    }

    /// The tokens that occur somewhere in `text`, ascending.
    pub(super) fn occurring(&self, text: &[u8]) -> Vec<u32> {
        let mut found: Vec<u32> =
            (0..text.len()).flat_map(|start| self.prefixes(&text[start..])).map(|(_, id)| id).collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}
