//! Text ⇄ token ids, exactly as llama.cpp does it from a GGUF file's vocabulary.
//!
//! The tokenizer models, named by `tokenizer.ggml.model`, one file each:
//! - `gpt2`: byte-level BPE with the file's merges, after the regex pre-tokenizer
//!   that llama.cpp picks from `tokenizer.ggml.pre` (`bpe.rs`, `pre.rs`);
//! - `gemma4`: BPE with the file's merges over text whose spaces are escaped to
//!   U+2581 (`bpe.rs`);
//! - `llama`: llama.cpp's SentencePiece-style BPE (`llm_tokenizer_spm`): no
//!   pre-tokenizer, spaces escaped to U+2581, and the merge order given by the
//!   score of the merged piece (`spm.rs`);
//! - `bert`: WordPiece after BERT's normalization (`wpm.rs`);
//! - `t5`: Unigram after SentencePiece's precompiled normalization (`ugm.rs`).
//!
//! Around the models, everything llama.cpp does is done here too: special
//! tokens are split out of the text first (`tokenizer_st_partition`),
//! BOS/EOS/SEP are added, token attributes and end-of-generation ids are
//! derived the way llama-vocab.cpp derives them, and ids are turned back into
//! bytes by llama.cpp's `token_to_piece`/`detokenize` rules. Only the
//! `tokenizer.*` metadata is read, so a vocabulary-only GGUF (no tensors) is
//! enough.
//!
//! Every table holds token ids, not strings: the texts are stored once, in
//! `vocab.rs`, where the models look texts up. Gemma 3's 262,144 tokens make a
//! tokenizer of 7 MiB (it took 65 MiB as Hugging Face `tokenizers`' models).
//! The BPE models share the merge loop (`merge.rs`) and the cutting of
//! U+2581-escaped text into words (`words.rs`); special tokens and Unigram's
//! pieces are found with a byte trie (`trie.rs`).

mod bpe;
mod merge;
mod pre;
mod special;
mod spm;
mod stream;
#[cfg(test)]
mod tests;
mod trie;
mod ugm;
mod vocab;
mod words;
mod wpm;

use crate::gguf::{Array, Metadata, Value};
use crate::Error;
use special::attr::{self, *};
use special::*;
pub use stream::StreamDecoder;
use trie::Trie;
use vocab::Vocab;

/// The model that turns a plain-text fragment into ids.
enum Engine {
    /// `llama`: U+2581-escaped text, merged in the order of the tokens' scores.
    Spm(spm::Spm),
    /// `gpt2`: regex splits, byte-level mapping, then the file's merges.
    ByteLevel(bpe::ByteLevel),
    /// `gemma4`: the file's merges over U+2581-escaped text.
    Escaped(bpe::EscapedBpe),
    /// `bert`: BERT's normalization into words, then WordPiece.
    Wpm(wpm::Wpm),
    /// `t5`: SentencePiece's normalization, then Unigram.
    Ugm(ugm::Ugm),
}

/// llama.cpp's vocabulary types, which set the default special-token ids and
/// BOS/EOS/space-prefix/clean-up flags that the metadata then overrides.
enum Family {
    Spm,
    Bpe(pre::PreTokenizer),
    Gemma4,
    Wpm,
    Ugm,
}

/// A tokenizer built from a GGUF file's `tokenizer.*` metadata. Immutable once
/// built, so it can be shared (`&`, `Rc`, `Arc`) between encoders and
/// [`StreamDecoder`]s.
pub struct Tokenizer {
    engine: Engine,
    vocab: Vocab,
    attrs: Vec<u16>,
    /// CONTROL, USER_DEFINED and UNKNOWN tokens, matched as whole strings before
    /// the model runs, longest text first (ties by id).
    specials: Vec<u32>,
    /// The same tokens, to find which ones occur in a text in one pass.
    special_trie: Trie,
    bos: Option<u32>,
    eos: Option<u32>,
    sep: Option<u32>,
    eot: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    /// Sorted.
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    /// WordPiece closes an encoded text with SEP.
    add_sep: bool,
    add_space_prefix: bool,
    /// llama.cpp's `clean_spaces` (Hugging Face's `clean_up_tokenization_spaces`).
    clean_spaces: bool,
}

/// The longest text [`Tokenizer::encode`] takes.
const MAX_TEXT: usize = 1 << 30;

/// A stretch of the input: plain text (a byte range) still to tokenize, or a special token.
#[derive(Clone, Copy)]
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

impl Tokenizer {
    /// The metadata arrays a tokenizer is built from: most of a header, and of
    /// no use once the tokenizer is built.
    pub const TABLES: &'static [&'static str] = &[
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.precompiled_charsmap",
    ];

    /// Builds the tokenizer llama.cpp would build from this metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Tokenizer, Error> {
        Self::from_lookup(&|key| md.get(key))
    }

    fn from_lookup(get: Lookup<'_>) -> Result<Tokenizer, Error> {
        let model = get_str(get, "tokenizer.ggml.model")?.ok_or_else(|| bad("tokenizer.ggml.model is missing"))?;
        let vocab = Vocab::new(
            get("tokenizer.ggml.tokens")
                .ok_or_else(|| bad("tokenizer.ggml.tokens is missing"))?
                .as_array()
                .and_then(Array::strings)
                .ok_or_else(|| bad("tokenizer.ggml.tokens is not an array of strings"))?,
        )?;
        let n = vocab.len();
        let scores = read_numbers(get, "tokenizer.ggml.scores", n)?;
        let mut attrs: Vec<u16> = match read_numbers(get, "tokenizer.ggml.token_type", n)? {
            Some(types) => types.into_iter().map(|t| attr::from_type(t as i64)).collect(),
            None => vec![NORMAL; n],
        };

        // Per-family defaults of llama.cpp's loader; metadata overrides them below.
        let pre_name = get_str(get, "tokenizer.ggml.pre")?.unwrap_or("");
        let family = match model {
            "llama" => Family::Spm,
            "gpt2" => Family::Bpe(pre::pre_tokenizer(pre_name)?),
            "gemma4" => Family::Gemma4,
            "bert" => Family::Wpm,
            "t5" => Family::Ugm,
            other => {
                return Err(bad(format!(
                    "tokenizer model `{other}` (tokenizer.ggml.model) is not supported; supported: `llama` \
                     (SentencePiece BPE), `gpt2` (byte-level BPE), `gemma4` (BPE on escaped spaces), \
                     `bert` (WordPiece) and `t5` (Unigram)"
                )))
            }
        };
        let (mut add_bos, add_eos, mut add_space_prefix, clean_spaces) = match &family {
            Family::Spm => (true, false, true, false),
            Family::Bpe(pre) => (pre.add_bos, false, false, pre.clean_spaces),
            Family::Gemma4 => (false, false, false, true),
            Family::Wpm => (true, false, false, true),
            Family::Ugm => (false, true, false, false),
        };
        // (BOS, EOS, UNK, SEP, PAD)
        let (bos_default, eos_default, unk_default, sep_default, pad_default) = match &family {
            Family::Spm => (Some(1), Some(2), Some(0), None, None),
            Family::Bpe(_) => (Some(11), Some(11), None, None, None),
            Family::Gemma4 => (None, None, None, None, None),
            Family::Wpm => (Some(101), None, Some(100), Some(102), Some(0)),
            Family::Ugm => (None, Some(1), Some(2), None, Some(0)),
        };
        let in_range = |id: u32| (id as usize) < n;
        let special = |key: &str, default: Option<u32>| -> Result<Option<u32>, Error> {
            let default = default.filter(|&id| in_range(id));
            let key = format!("tokenizer.ggml.{key}");
            // An id past the vocabulary keeps the default, as in llama.cpp.
            Ok(match get_u32(get, &key)? {
                Some(id) if in_range(id) => Some(id),
                _ => default,
            })
        };
        let bos = special("bos_token_id", bos_default)?;
        let eos = special("eos_token_id", eos_default)?;
        let sep = special("seperator_token_id", sep_default)?;
        let mut eot = special("eot_token_id", None)?;
        let mut eom = special("eom_token_id", None)?;
        let unk = special("unknown_token_id", unk_default)?;
        let pad = special("padding_token_id", pad_default)?;
        let mut fim_pre = special("fim_pre_token_id", None)?;
        let mut fim_suf = special("fim_suf_token_id", None)?;
        let mut fim_mid = special("fim_mid_token_id", None)?;
        let mut fim_pad = special("fim_pad_token_id", None)?;
        let mut fim_rep = special("fim_rep_token_id", None)?;
        let mut fim_sep = special("fim_sep_token_id", None)?;
        fim_pre = special("prefix_token_id", fim_pre)?;
        fim_suf = special("suffix_token_id", fim_suf)?;
        fim_mid = special("middle_token_id", fim_mid)?;

        if let Some(v) = get_bool(get, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }
        if let Some(v) = get_bool(get, "tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        let mut add_eos = get_bool(get, "tokenizer.ggml.add_eos_token")?.unwrap_or(add_eos);
        // Gemma 4 always starts with BOS (llama.cpp PR 21500); WordPiece always
        // wraps a text in BOS (CLS) and SEP, whatever the flags say.
        if matches!(family, Family::Gemma4) {
            add_bos = true;
        }
        let add_sep = matches!(family, Family::Wpm);
        if add_sep {
            (add_bos, add_eos) = (true, false);
        }
        if add_bos && bos.is_none() {
            return Err(bad("tokenizer.ggml.add_bos_token is true, but bos_token_id is not set"));
        }
        if add_eos && eos.is_none() {
            return Err(bad("tokenizer.ggml.add_eos_token is true, but eos_token_id is not set"));
        }
        if add_sep && sep.is_none() {
            return Err(bad("a WordPiece vocabulary needs seperator_token_id"));
        }

        // Special tokens found by their text. llama.cpp walks a hash map and takes
        // the first match; we take the lowest id. The one found is made CONTROL.
        for (slot, texts) in [
            (&mut eot, EOT_TEXTS),
            (&mut eom, EOM_TEXTS),
            (&mut fim_pre, FIM_PRE_TEXTS),
            (&mut fim_suf, FIM_SUF_TEXTS),
            (&mut fim_mid, FIM_MID_TEXTS),
            (&mut fim_pad, FIM_PAD_TEXTS),
            (&mut fim_rep, FIM_REP_TEXTS),
            (&mut fim_sep, FIM_SEP_TEXTS),
        ] {
            if slot.is_none() {
                if let Some(id) = texts.iter().filter_map(|t| vocab.id(t)).min() {
                    attrs[id as usize] |= CONTROL;
                    *slot = Some(id);
                }
            }
        }

        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for id in EOG_TEXTS.iter().filter_map(|t| vocab.id(t)) {
            eog.push(id);
            attrs[id as usize] |= CONTROL;
        }
        // gpt-oss: these must always render.
        for id in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].iter().filter_map(|t| vocab.id(t)) {
            attrs[id as usize] = USER_DEFINED;
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let has = |eog: &[u32], text: &str| vocab.id(text).filter(|id| eog.contains(id));
        // o200k_harmony and solar-open: `<|end|>` ends a message, not the generation.
        if let Some(end) = has(&eog, "<|end|>") {
            let call = has(&eog, "<|call|>").or(has(&eog, "<|calls|>")).is_some();
            if call && (has(&eog, "<|return|>").is_some() || has(&eog, "<|flush|>").is_some()) {
                attrs[end as usize] = USER_DEFINED;
                eog.retain(|&id| id != end);
            }
        }
        // gemma4 and plamo: `</s>` is a normal token there (it ends generation for paddleocr).
        let normal_s = has(&eog, "<|tool_response>").or(has(&eog, "<|plamo:eos|>"));
        if let (Some(s), Some(_)) = (has(&eog, "</s>"), normal_s) {
            attrs[s as usize] = NORMAL;
            eog.retain(|&id| id != s);
        }

        let mut specials: Vec<u32> =
            (0..n as u32).filter(|&id| attrs[id as usize] & (CONTROL | USER_DEFINED | UNKNOWN) != 0).collect();
        specials.sort_by_key(|&id| std::cmp::Reverse(vocab.text(id).map_or(0, str::len)));

        // Per-model attributes that llama.cpp sets by name.
        let name = get_str(get, "general.name")?.unwrap_or("").to_lowercase();
        let arch = get_str(get, "general.architecture")?.unwrap_or("");
        // (llama.cpp refuses to load when one of the named tokens is missing; we skip it.)
        let set = |attrs: &mut [u16], text: &str, flag: u16, on: bool| {
            if let Some(id) = vocab.id(text).map(|id| id as usize) {
                attrs[id] = if on { attrs[id] | flag } else { attrs[id] & !flag };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].iter().any(|p| pre_name.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"].iter().any(|a| arch.contains(a))
        {
            set(&mut attrs, "<mask>", LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for &id in &specials {
                attrs[id as usize] |= RSTRIP;
            }
            set(&mut attrs, "</s>", RSTRIP, true);
            for text in ["<unk>", "<s>", "<|endoftext|>"] {
                set(&mut attrs, text, RSTRIP, false);
            }
        } else if name.contains("modern-bert") {
            set(&mut attrs, "[MASK]", LSTRIP, true);
        }

        let engine = match family {
            Family::Spm => Engine::Spm(spm::Spm::new(&vocab, scores.as_deref())),
            Family::Bpe(pre) => Engine::ByteLevel(bpe::ByteLevel::new(&vocab, get, &pre)?),
            Family::Gemma4 => Engine::Escaped(bpe::EscapedBpe::new(&vocab, get)?),
            Family::Wpm => Engine::Wpm(wpm::Wpm::new(&vocab, unk, get)?),
            Family::Ugm => Engine::Ugm(ugm::Ugm::new(&vocab, &attrs, scores.as_deref(), unk, add_space_prefix, get)?),
        };

        let special_trie = Trie::new(&vocab, specials.iter().copied());
        Ok(Tokenizer {
            engine,
            vocab,
            attrs,
            special_trie,
            specials,
            bos,
            eos,
            sep,
            eot,
            unk,
            pad,
            eog,
            add_bos,
            add_eos,
            add_sep,
            add_space_prefix,
            clean_spaces,
        })
    }

    /// Text to ids, as `llama_tokenize(text, add_special, parse_special)`.
    /// `add_special` adds BOS/EOS where the model asks for them; with
    /// `parse_special` the texts of CONTROL tokens (e.g. `<|im_start|>`) become
    /// those tokens. USER_DEFINED tokens are always matched.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, Error> {
        // Escaped or byte-mapped, a text grows at most threefold; the models
        // count its bytes in u32.
        if text.len() >= MAX_TEXT {
            return Err(bad("a text of 1 GiB or more is too long to tokenize"));
        }
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        // The SPM space prefix goes before the first fragment and after each special token.
        let mut after_special = true;
        let mut seen = merge::Seen::default();
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(start, end) => {
                    let text = &text[start..end];
                    match &self.engine {
                        Engine::Spm(spm) => {
                            let prefix = if self.add_space_prefix && after_special { " " } else { "" };
                            let escaped = format!("{prefix}{text}").replace(' ', "\u{2581}");
                            spm.encode(&self.vocab, &escaped, &mut seen, &mut out);
                        }
                        Engine::ByteLevel(bpe) => bpe.encode(&self.vocab, text, &mut seen, &mut out),
                        Engine::Escaped(bpe) => bpe.encode(&self.vocab, text, &mut seen, &mut out),
                        Engine::Wpm(wpm) => wpm.encode(&self.vocab, text, &mut out),
                        Engine::Ugm(ugm) => ugm.encode(text, &mut out)?,
                    }
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        if add_special && self.add_sep {
            out.extend(self.sep);
        }
        Ok(out)
    }

    /// Splits `text` on the texts of special tokens, as llama.cpp's
    /// `tokenizer_st_partition`: one special token at a time, longest first,
    /// every occurrence in every remaining text fragment, left to right.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let bytes = text.as_bytes();
        let mut fragments = Vec::new();
        if !text.is_empty() {
            fragments.push(Fragment::Text(0, text.len()));
        }
        let present = self.special_trie.occurring(bytes);
        for &id in &self.specials {
            let attrs = self.attrs[id as usize];
            if !parse_special && attrs & (CONTROL | UNKNOWN) != 0 {
                continue;
            }
            if present.binary_search(&id).is_err() {
                continue;
            }
            let needle = self.vocab.text(id).expect("a token id");
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut start, end) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(found) = text[start..end].find(needle) {
                    let at = start + found;
                    let mut left_end = at;
                    if attrs & LSTRIP != 0 {
                        while left_end > start && is_c_space(bytes[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > start {
                        next.push(Fragment::Text(start, left_end));
                    }
                    next.push(Fragment::Token(id));
                    start = at + needle.len();
                    if attrs & RSTRIP != 0 {
                        while start < end && is_c_space(bytes[start]) {
                            start += 1;
                        }
                    }
                }
                if start < end {
                    next.push(Fragment::Text(start, end));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// Ids to bytes, as `llama_detokenize(ids, remove_special = false,
    /// unparse_special = render_special)`. Without `render_special`, CONTROL
    /// and UNKNOWN tokens render as nothing. Ids outside the vocabulary render as
    /// nothing. The bytes need not be valid UTF-8 (see [`StreamDecoder`]).
    pub fn decode(&self, ids: &[u32], render_special: bool) -> Vec<u8> {
        self.detokenize(ids, false, render_special)
    }

    /// `llama_detokenize` with both options: `remove_special` drops a leading
    /// BOS and a trailing EOS where the model adds them.
    pub fn detokenize(&self, mut ids: &[u32], remove_special: bool, render_special: bool) -> Vec<u8> {
        // SPM's space prefix is taken off the first token again, unless a BOS was removed.
        let mut lstrip = self.add_space_prefix;
        if let (true, Some(bos), [first, rest @ ..]) = (remove_special && self.add_bos, self.bos, ids) {
            if *first == bos {
                lstrip = false;
                ids = rest;
            }
        }
        if let (true, Some(eos), [rest @ .., last]) = (remove_special && self.add_eos, self.eos, ids) {
            if *last == eos {
                ids = rest;
            }
        }
        let mut out = Vec::new();
        for &id in ids {
            self.push_piece(id, lstrip, render_special, &mut out);
            lstrip = false;
        }
        if self.clean_spaces {
            stream::clean_up_spaces(&mut out);
        }
        out
    }

    /// The bytes of one token, as `llama_token_to_piece(id, lstrip = 0, special = render_special)`.
    pub fn token_piece(&self, id: u32, render_special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_piece(id, false, render_special, &mut out);
        out
    }

    fn push_piece(&self, id: u32, lstrip: bool, render_special: bool, out: &mut Vec<u8>) {
        let Some(text) = self.vocab.text(id) else { return };
        let attrs = self.attrs[id as usize];
        if !render_special && attrs & (CONTROL | UNKNOWN) != 0 {
            return;
        }
        let start = out.len();
        if attrs & (CONTROL | UNKNOWN | USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if attrs & NORMAL != 0 {
            match self.engine {
                Engine::ByteLevel(_) => bpe::byte_level_decode(text, out),
                _ => {
                    for (i, word) in text.split('\u{2581}').enumerate() {
                        if i > 0 {
                            out.push(b' ');
                        }
                        out.extend_from_slice(word.as_bytes());
                    }
                }
            }
        } else if attrs & BYTE != 0 {
            out.push(byte_token_value(text));
        }
        if lstrip && out.get(start) == Some(&b' ') {
            out.remove(start);
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// End of turn: `tokenizer.ggml.eot_token_id`, else found by its text.
    pub fn eot_id(&self) -> Option<u32> {
        self.eot
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether sampling `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// The token's string as stored in the vocabulary (e.g. `<|im_start|>`,
    /// `▁Hello`, `ĠHello`), for chat templates' `bos_token`/`eos_token`.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.text(id)
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether encoding puts a space before the text (SentencePiece's
    /// `add_space_prefix`), so that pieces encoded apart differ from the
    /// whole at their seams.
    pub fn adds_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
}

/// The byte of a `<0xXX>` token; like C's `strtol`, stops at the first non-hex digit.
fn byte_token_value(text: &str) -> u8 {
    let digits = text.get(3..5).unwrap_or("");
    digits.chars().map_while(|c| c.to_digit(16)).fold(0, |acc, d| acc * 16 + d as u8)
}

/// Reads one metadata key (a closure, so that unit tests need no GGUF file).
type Lookup<'m> = &'m dyn Fn(&str) -> Option<&'m Value>;

fn bad(message: impl Into<String>) -> Error {
    Error::Tokenizer(message.into())
}

fn get_str<'m>(get: Lookup<'m>, key: &str) -> Result<Option<&'m str>, Error> {
    get(key).map(|v| v.as_str().ok_or_else(|| bad(format!("{key} is not a string")))).transpose()
}

fn get_bool(get: Lookup<'_>, key: &str) -> Result<Option<bool>, Error> {
    get(key).map(|v| v.as_bool().ok_or_else(|| bad(format!("{key} is not a bool")))).transpose()
}

/// A token id; a negative one counts as absent.
fn get_u32(get: Lookup<'_>, key: &str) -> Result<Option<u32>, Error> {
    match get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(id) => Ok(u32::try_from(id).ok()),
            None => Err(bad(format!("{key} is not an integer"))),
        },
    }
}

/// An optional numeric array with at least one entry per token, as llama.cpp
/// reads it: in f32.
fn read_numbers(get: Lookup<'_>, key: &str, n: usize) -> Result<Option<Vec<f32>>, Error> {
    let Some(value) = get(key) else { return Ok(None) };
    let list = value.as_array().ok_or_else(|| bad(format!("{key} is not an array")))?;
    if list.len() < n {
        return Err(bad(format!("{key} has {} entries for {n} tokens", list.len())));
    }
    (0..n)
        .map(|i| {
            list.get(i)
                .and_then(|v| v.as_f64())
                .map(|x| x as f32)
                .ok_or_else(|| bad(format!("{key} holds a non-number")))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}
