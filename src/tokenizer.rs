//! Text ⇄ token ids, exactly as llama.cpp does it from a GGUF file's vocabulary.
//!
//! Two families are supported, named by `tokenizer.ggml.model`:
//! - `gpt2`: byte-level BPE with the file's merges, after the regex pre-tokenizer
//!   that llama.cpp picks from `tokenizer.ggml.pre`;
//! - `llama`: llama.cpp's SentencePiece-style BPE (`llm_tokenizer_spm`): no
//!   pre-tokenizer, spaces escaped to U+2581, and the merge order given by the
//!   score of the merged piece.
//!
//! The Hugging Face `tokenizers` crate runs the BPE models and the regex
//! pre-tokenizers. Everything llama.cpp does around them is done here: special
//! tokens are split out of the text first (`tokenizer_st_partition`), BOS/EOS
//! are added, token attributes and end-of-generation ids are derived the way
//! llama-vocab.cpp derives them, and ids are turned back into bytes by
//! llama.cpp's `token_to_piece`/`detokenize` rules.

use std::ops::Deref;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, SplitDelimiterBehavior};

use crate::gguf::{Metadata, Value};
use crate::Error;

/// Token attributes: the bit flags of llama.cpp's `llama_token_attr`.
mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;

    /// From a `tokenizer.ggml.token_type` entry; unknown types get no attribute,
    /// so such tokens render as nothing, as in llama.cpp.
    pub fn from_type(token_type: i64) -> u16 {
        match token_type {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            // Renders as nothing: only NORMAL, BYTE and special tokens have text.
            5 => UNUSED,
            6 => BYTE,
            _ => 0,
        }
    }
}
use attr::*;

/// The regexes of llama.cpp's `llm_tokenizer_bpe` for each family of
/// `tokenizer.ggml.pre` names. Each one splits every piece the previous ones
/// left, keeping both matches and the text between them.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PRE_GPT2: &[&str] = &[GPT2];
const PRE_STARCODER: &[&str] = &[r"\p{N}", GPT2];
const PRE_LLAMA3: &[&str] = &[LLAMA3];
const PRE_QWEN2: &[&str] = &[QWEN2];
const PRE_DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];

/// What llama.cpp's vocabulary loader sets for a `tokenizer.ggml.pre` name.
struct PreTokenizer {
    regexes: &'static [&'static str],
    clean_spaces: bool,
    /// A split that is itself a token is emitted whole, without merging.
    ignore_merges: bool,
    add_bos: bool,
}

/// The `tokenizer.ggml.pre` names whose llama.cpp pre-tokenizer is one of the
/// regex families above. llama.cpp rejects names it does not know, and so do we.
fn pre_tokenizer(name: &str) -> Result<PreTokenizer, Error> {
    let (regexes, clean_spaces, llama3) = match name {
        // A missing name is llama.cpp's (degraded) default.
        "" | "default" => (PRE_DEFAULT, true, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" => (PRE_LLAMA3, true, true),
        "dbrx" | "smaug-bpe" => (PRE_LLAMA3, true, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum"
        | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "exaone4" => {
            (PRE_GPT2, true, false)
        }
        "trillion" | "granite-docling" => (PRE_GPT2, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => (PRE_STARCODER, true, false),
        "smollm" | "command-r" => (PRE_STARCODER, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => (PRE_QWEN2, false, false),
        "stablelm2" | "megrez" => (PRE_QWEN2, true, false),
        other => {
            return Err(Error::Tokenizer(format!(
                "pre-tokenizer `{other}` (tokenizer.ggml.pre) is not supported; supported: the \
                 gpt-2, starcoder/smollm, llama3, qwen2 and default families"
            )))
        }
    };
    Ok(PreTokenizer { regexes, clean_spaces, ignore_merges: llama3, add_bos: llama3 })
}

/// Token texts llama.cpp recognises when the file names no such token.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
/// Texts of the tokens that end generation (llama.cpp's `special_eog_ids` rule).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// The model that turns a plain-text fragment into ids.
enum Engine {
    /// `llama`: each fragment is one word for a BPE whose merges come from the scores.
    Spm(Box<BPE>),
    /// `gpt2`: regex splits, byte-level mapping, then the file's merges.
    ByteLevel(Box<tokenizers::Tokenizer>),
}

/// A tokenizer built from a GGUF file's `tokenizer.*` metadata. Immutable once
/// built, so it can be shared (`&`, `Rc`, `Arc`) between encoders and
/// [`StreamDecoder`]s.
pub struct Tokenizer {
    engine: Engine,
    tokens: Vec<String>,
    attrs: Vec<u16>,
    /// CONTROL, USER_DEFINED and UNKNOWN tokens, matched as whole strings before
    /// the model runs, longest text first (ties by id).
    specials: Vec<u32>,
    /// The same tokens, to find which ones occur in a text in one pass.
    special_trie: SpecialTrie,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    /// Sorted.
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    /// llama.cpp's `clean_spaces` (Hugging Face's `clean_up_tokenization_spaces`).
    clean_spaces: bool,
}

/// A stretch of the input: plain text (a byte range) still to tokenize, or a special token.
#[derive(Clone, Copy)]
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

impl Tokenizer {
    /// Builds the tokenizer llama.cpp would build from this metadata. For an SPM
    /// vocabulary the BPE merges are derived from the scores: Gemma 3's 262,144
    /// tokens give 514,847 merges: about 0.8 s native and 1–1.7 s in wasm (V8),
    /// with the wasm memory peaking near 130 MiB (metadata included).
    pub fn from_metadata(md: &Metadata) -> Result<Tokenizer, Error> {
        Self::from_lookup(&|key| md.get(key))
    }

    fn from_lookup(get: Lookup<'_>) -> Result<Tokenizer, Error> {
        let model = get_str(get, "tokenizer.ggml.model")?.ok_or_else(|| bad("tokenizer.ggml.model is missing"))?;
        let tokens = read_tokens(get)?;
        let n = tokens.len();
        let scores = read_numbers(get, "tokenizer.ggml.scores", n)?;
        let types = read_numbers(get, "tokenizer.ggml.token_type", n)?;
        let mut attrs: Vec<u16> = match &types {
            Some(t) => t.iter().map(|&t| attr::from_type(t as i64)).collect(),
            None => vec![NORMAL; n],
        };

        // Per-family defaults of llama.cpp's loader; metadata overrides them below.
        let spm = match model {
            "llama" => true,
            "gpt2" => false,
            other => {
                return Err(bad(format!(
                    "tokenizer model `{other}` (tokenizer.ggml.model) is not supported; \
                     supported: `llama` (SentencePiece BPE) and `gpt2` (byte-level BPE)"
                )))
            }
        };
        let pre_name = get_str(get, "tokenizer.ggml.pre")?.unwrap_or("");
        let pre = if spm { None } else { Some(pre_tokenizer(pre_name)?) };
        let (mut add_bos, mut add_space_prefix, clean_spaces) = match &pre {
            None => (true, true, false),
            Some(p) => (p.add_bos, false, p.clean_spaces),
        };
        let (bos_default, eos_default, unk_default) = if spm { (1, 2, Some(0)) } else { (11, 11, None) };
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
        let bos = special("bos_token_id", Some(bos_default))?;
        let eos = special("eos_token_id", Some(eos_default))?;
        let mut eot = special("eot_token_id", None)?;
        let mut eom = special("eom_token_id", None)?;
        let unk = special("unknown_token_id", unk_default)?;
        let pad = special("padding_token_id", None)?;
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
        let add_eos = get_bool(get, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(bad("tokenizer.ggml.add_bos_token is true, but bos_token_id is not set"));
        }
        if add_eos && eos.is_none() {
            return Err(bad("tokenizer.ggml.add_eos_token is true, but eos_token_id is not set"));
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
                if let Some(id) = tokens.iter().position(|t| texts.contains(&t.as_str())) {
                    attrs[id] |= CONTROL;
                    *slot = Some(id as u32);
                }
            }
        }

        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for (id, text) in tokens.iter().enumerate() {
            if EOG_TEXTS.contains(&text.as_str()) {
                eog.push(id as u32);
                attrs[id] |= CONTROL;
            }
            // gpt-oss: these must always render.
            if ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].contains(&text.as_str()) {
                attrs[id] = USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let has = |eog: &[u32], text: &str| eog.iter().copied().find(|&id| tokens[id as usize] == text);
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
        specials.sort_by_key(|&id| std::cmp::Reverse(tokens[id as usize].len()));

        // Per-model attributes that llama.cpp sets by name.
        let name = get_str(get, "general.name")?.unwrap_or("").to_lowercase();
        let arch = get_str(get, "general.architecture")?.unwrap_or("");
        // (llama.cpp refuses to load when one of the named tokens is missing; we skip it.)
        let set = |attrs: &mut [u16], text: &str, flag: u16, on: bool| {
            if let Some(id) = tokens.iter().position(|t| t == text) {
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

        let engine = match pre {
            None => Engine::Spm(Box::new(build_spm(&tokens, scores.as_deref())?)),
            Some(pre) => Engine::ByteLevel(Box::new(build_byte_level(&tokens, get, &pre)?)),
        };

        let special_trie = SpecialTrie::new(&tokens, &specials);
        Ok(Tokenizer {
            engine,
            tokens,
            attrs,
            special_trie,
            specials,
            bos,
            eos,
            eot,
            unk,
            pad,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        })
    }

    /// Text to ids, as `llama_tokenize(text, add_special, parse_special)`.
    /// `add_special` adds BOS/EOS where the model asks for them; with
    /// `parse_special` the texts of CONTROL tokens (e.g. `<|im_start|>`) become
    /// those tokens. USER_DEFINED tokens are always matched.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, Error> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        // The SPM space prefix goes before the first fragment and after each special token.
        let mut after_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(start, end) => {
                    let text = &text[start..end];
                    match &self.engine {
                        Engine::Spm(bpe) => {
                            let prefix = if self.add_space_prefix && after_special { " " } else { "" };
                            let escaped = format!("{prefix}{text}").replace(' ', "\u{2581}");
                            let tokens = bpe.tokenize(&escaped).map_err(hf_error)?;
                            out.extend(tokens.iter().map(|t| t.id));
                        }
                        Engine::ByteLevel(hf) => {
                            let encoding = hf.encode_fast(text, false).map_err(hf_error)?;
                            out.extend_from_slice(encoding.get_ids());
                        }
                    }
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
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
            let needle = self.tokens[id as usize].as_str();
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
            clean_up_spaces(&mut out);
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
        let Some(text) = self.tokens.get(id as usize) else { return };
        let attrs = self.attrs[id as usize];
        if !render_special && attrs & (CONTROL | UNKNOWN) != 0 {
            return;
        }
        let start = out.len();
        if attrs & (CONTROL | UNKNOWN | USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if attrs & NORMAL != 0 {
            match self.engine {
                Engine::Spm(_) => out.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
                Engine::ByteLevel(_) => byte_level_decode(text, out),
            }
        } else if attrs & BYTE != 0 {
            out.push(byte_token_value(text));
        }
        if lstrip && out.get(start) == Some(&b' ') {
            out.remove(start);
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
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
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }
}

/// A byte trie of the special tokens' texts. Gemma has 6,400 of them (mostly
/// `<unusedN>`): searching the text once per token would cost 6,400 passes.
struct SpecialTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    token: Option<u32>,
}

impl SpecialTrie {
    fn new(tokens: &[String], specials: &[u32]) -> Self {
        let mut nodes = vec![TrieNode::default()];
        for &id in specials {
            let mut node = 0;
            for &byte in tokens[id as usize].as_bytes() {
                node = match nodes[node].children.iter().find(|(b, _)| *b == byte) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        nodes.push(TrieNode::default());
                        let child = nodes.len() - 1;
                        nodes[node].children.push((byte, child as u32));
                        child
                    }
                };
            }
            nodes[node].token = Some(id);
        }
        SpecialTrie { nodes }
    }

    /// The ids of the special tokens that occur somewhere in `text`, sorted.
    fn occurring(&self, text: &[u8]) -> Vec<u32> {
        let mut found = Vec::new();
        for start in 0..text.len() {
            let mut node = &self.nodes[0];
            for byte in &text[start..] {
                let Some(&(_, child)) = node.children.iter().find(|(b, _)| b == byte) else {
                    break;
                };
                node = &self.nodes[child as usize];
                found.extend(node.token);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// C's `isspace`, which llama.cpp uses for LSTRIP/RSTRIP.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Turns ids into text one token at a time, for streaming generated text.
///
/// Every returned piece is valid UTF-8: bytes of a character split across
/// tokens are held until the character is complete, and bytes that can never
/// form one become U+FFFD. The concatenation of all pieces, `finish()`
/// included, equals `String::from_utf8_lossy(&tokenizer.decode(ids, render_special))`:
/// the first token loses its SPM space prefix, and with `clean_spaces` the last
/// few bytes wait until the clean-up rules can no longer change them.
///
/// It holds the tokenizer through any pointer: `&Tokenizer`, `Rc<Tokenizer>`
/// or `Arc<Tokenizer>` (for an owner such as a JavaScript object).
pub struct StreamDecoder<T: Deref<Target = Tokenizer>> {
    tokenizer: T,
    render_special: bool,
    first: bool,
    /// Bytes the space clean-up may still change.
    unclean: Vec<u8>,
    /// Clean bytes that do not yet end on a character boundary.
    incomplete: Vec<u8>,
}

impl<T: Deref<Target = Tokenizer>> StreamDecoder<T> {
    pub fn new(tokenizer: T, render_special: bool) -> Self {
        StreamDecoder { tokenizer, render_special, first: true, unclean: Vec::new(), incomplete: Vec::new() }
    }

    /// Adds one token; returns the text it completes (often empty or several characters).
    pub fn push(&mut self, id: u32) -> String {
        let tokenizer = &*self.tokenizer;
        let lstrip = self.first && tokenizer.add_space_prefix;
        self.first = false;
        if tokenizer.clean_spaces {
            tokenizer.push_piece(id, lstrip, self.render_special, &mut self.unclean);
            let cut = stable_clean_prefix(&self.unclean);
            let mut ready: Vec<u8> = self.unclean.drain(..cut).collect();
            clean_up_spaces(&mut ready);
            self.incomplete.extend_from_slice(&ready);
        } else {
            tokenizer.push_piece(id, lstrip, self.render_special, &mut self.incomplete);
        }
        take_complete_utf8(&mut self.incomplete)
    }

    /// Flushes everything held back; a trailing incomplete character becomes
    /// U+FFFD. Later pushes continue the same text.
    pub fn finish(&mut self) -> String {
        if self.tokenizer.clean_spaces {
            clean_up_spaces(&mut self.unclean);
            self.incomplete.append(&mut self.unclean);
        }
        let text = String::from_utf8_lossy(&self.incomplete).into_owned();
        self.incomplete.clear();
        text
    }
}

/// Removes and returns the longest valid UTF-8 prefix of `bytes`, with each
/// invalid sequence replaced by U+FFFD exactly as `String::from_utf8_lossy`
/// would; an incomplete sequence at the end stays in `bytes`.
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut rest = &bytes[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).expect("checked by valid_up_to"));
                match e.error_len() {
                    Some(len) => {
                        out.push('\u{FFFD}');
                        rest = &after[len..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.len();
    bytes.drain(..bytes.len() - kept);
    out
}

/// llama.cpp's `clean_spaces` passes, byte for byte: drop a space before
/// `?!.,`, turn ` ' ` into `'`, and drop the space before `'s 'm 're 've`.
fn clean_up_spaces(text: &mut Vec<u8>) {
    // Each pass compacts in place; reading text[i - 1] sees the pass's input,
    // as in the C++ code.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < n {
                let x2 = text[i + 2];
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// The longest prefix of `raw` whose clean-up no later bytes can change:
/// `clean(raw[..cut] + later) == clean(raw[..cut]) + clean(later)` when the
/// byte before the cut is neither a space nor a quote and no quote is among
/// the three bytes before that (every rule looks at most at " 'xy").
fn stable_clean_prefix(raw: &[u8]) -> usize {
    (1..=raw.len())
        .rev()
        .find(|&cut| {
            !matches!(raw[cut - 1], b' ' | b'\'') && raw[cut.saturating_sub(4)..cut - 1].iter().all(|&b| b != b'\'')
        })
        .unwrap_or(0)
}

/// GPT-2's byte ⇄ character map, inverted: printable Latin-1 bytes stand for
/// themselves and the 68 others were moved to U+0100.. in byte order.
fn byte_of_char(c: char) -> Option<u8> {
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
fn byte_level_decode(text: &str, out: &mut Vec<u8>) {
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

/// The byte of a `<0xXX>` token; like C's `strtol`, stops at the first non-hex digit.
fn byte_token_value(text: &str) -> u8 {
    let digits = text.get(3..5).unwrap_or("");
    digits.chars().map_while(|c| c.to_digit(16)).fold(0, |acc, d| acc * 16 + d as u8)
}

/// The SPM merges as a BPE merge list: every split of every token into two
/// tokens, ranked by the merged token's score (higher first, ties by id).
/// llama.cpp merges the best-scoring adjacent pair whose concatenation is a
/// token, leftmost on ties, which is what a BPE with these ranks does, with two
/// exceptions where a rank decides instead of the position: different tokens
/// with equal scores (in Gemma 3 only user-defined tokens, which never reach the
/// model), and two different splits of one token competing at overlapping
/// positions (never seen against a literal port of llama.cpp's algorithm).
fn build_spm(tokens: &[String], scores: Option<&[f64]>) -> Result<BPE, Error> {
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

fn build_byte_level(tokens: &[String], get: Lookup<'_>, pre: &PreTokenizer) -> Result<tokenizers::Tokenizer, Error> {
    let list = get("tokenizer.ggml.merges")
        .ok_or_else(|| bad("tokenizer.ggml.merges is missing (needed by the gpt2 tokenizer)"))?
        .as_array()
        .ok_or_else(|| bad("tokenizer.ggml.merges is not an array"))?;
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
    let mut merges = Vec::with_capacity(list.len());
    for (i, merge) in list.iter().enumerate() {
        let merge = merge.as_str().ok_or_else(|| bad(format!("tokenizer.ggml.merges[{i}] is not a string")))?;
        // As llama.cpp: the separator is the first space after the first byte.
        let (left, right) = merge
            .bytes()
            .skip(1)
            .position(|b| b == b' ')
            .map(|at| (&merge[..at + 1], &merge[at + 2..]))
            .ok_or_else(|| bad(format!("tokenizer.ggml.merges[{i}] `{merge}` is not two tokens")))?;
        for part in [left, right, &format!("{left}{right}")] {
            if !vocab.contains_key(part) {
                return Err(bad(format!("tokenizer.ggml.merges[{i}] `{merge}` names `{part}`, which is not a token")));
            }
        }
        merges.push((left.to_owned(), right.to_owned()));
    }
    let bpe =
        BPE::builder().vocab_and_merges(vocab, merges).ignore_merges(pre.ignore_merges).build().map_err(hf_error)?;
    let mut steps = Vec::with_capacity(pre.regexes.len() + 1);
    for regex in pre.regexes {
        let split = Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(hf_error)?;
        steps.push(PreTokenizerWrapper::Split(split));
    }
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
    let mut hf = tokenizers::Tokenizer::new(bpe);
    hf.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(hf)
}

/// Reads one metadata key (a closure, so that unit tests need no GGUF file).
type Lookup<'m> = &'m dyn Fn(&str) -> Option<&'m Value>;

fn bad(message: impl Into<String>) -> Error {
    Error::Tokenizer(message.into())
}

fn hf_error(e: tokenizers::Error) -> Error {
    Error::Tokenizer(e.to_string())
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

/// `tokenizer.ggml.tokens`, with llama.cpp's rules: an empty token becomes
/// `[EMPTY_<id>]` and a duplicate is an error.
fn read_tokens(get: Lookup<'_>) -> Result<Vec<String>, Error> {
    let list = get("tokenizer.ggml.tokens")
        .ok_or_else(|| bad("tokenizer.ggml.tokens is missing"))?
        .as_array()
        .ok_or_else(|| bad("tokenizer.ggml.tokens is not an array"))?;
    let mut tokens = Vec::with_capacity(list.len());
    for (id, value) in list.iter().enumerate() {
        let text = value.as_str().ok_or_else(|| bad(format!("tokenizer.ggml.tokens[{id}] is not a string")))?;
        tokens.push(if text.is_empty() { format!("[EMPTY_{id}]") } else { text.to_owned() });
    }
    let mut seen = std::collections::HashMap::with_capacity(tokens.len());
    for (id, text) in tokens.iter().enumerate() {
        if let Some(first) = seen.insert(text.as_str(), id) {
            return Err(bad(format!("duplicate token `{text}` in the vocabulary: ids {first} and {id}")));
        }
    }
    if tokens.is_empty() {
        return Err(bad("tokenizer.ggml.tokens is empty"));
    }
    Ok(tokens)
}

/// An optional numeric array with at least one entry per token.
fn read_numbers(get: Lookup<'_>, key: &str, n: usize) -> Result<Option<Vec<f64>>, Error> {
    let Some(value) = get(key) else { return Ok(None) };
    let list = value.as_array().ok_or_else(|| bad(format!("{key} is not an array")))?;
    if list.len() < n {
        return Err(bad(format!("{key} has {} entries for {n} tokens", list.len())));
    }
    list[..n]
        .iter()
        .map(|v| v.as_f64().ok_or_else(|| bad(format!("{key} holds a non-number"))))
        .collect::<Result<_, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn strings(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
    }

    fn build(entries: Vec<(&str, Value)>) -> Result<Tokenizer, Error> {
        let map: HashMap<String, Value> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Tokenizer::from_lookup(&|key| map.get(key))
    }

    fn byte_tokens() -> Vec<String> {
        (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect()
    }

    /// A small SentencePiece vocabulary: ids 0..3 special, 4..259 bytes, then pieces.
    fn spm_entries(extra: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<|turn|>"].map(String::from).to_vec();
        let mut types = vec![2, 3, 3, 3];
        tokens.extend(byte_tokens());
        types.extend([6; 256]);
        let pieces = [
            ("▁", 1),
            ("a", 1),
            ("b", 1),
            ("c", 1),
            ("ab", 1),
            ("▁a", 1),
            ("▁ab", 1),
            ("<u>", 4),
            ("xyz", 4),
            ("wx", 4),
            ("bc", 1),
            ("▁<", 1),
            ("<", 1),
            ("u", 1),
            (">", 1),
        ];
        for (text, ty) in pieces {
            tokens.push(text.to_string());
            types.push(ty);
        }
        let n = tokens.len();
        // Later pieces score lower, except "bc", which beats "ab".
        let scores: Vec<Value> =
            (0..n).map(|i| Value::F32(if tokens[i] == "bc" { 10.0 } else { -(i as f32) })).collect();
        let mut entries = vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", Value::Array(tokens.into_iter().map(Value::String).collect())),
            ("tokenizer.ggml.scores", Value::Array(scores)),
            ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ];
        entries.extend(extra);
        entries
    }

    fn spm() -> Tokenizer {
        build(spm_entries(vec![])).unwrap()
    }

    fn id(t: &Tokenizer, text: &str) -> u32 {
        (0..t.vocab_size() as u32).find(|&i| t.token_text(i) == Some(text)).unwrap()
    }

    fn ids(t: &Tokenizer, texts: &[&str]) -> Vec<u32> {
        texts.iter().map(|s| id(t, s)).collect()
    }

    #[test]
    fn spm_space_prefix_bos_and_scores() {
        let t = spm();
        assert_eq!((t.bos_id(), t.eos_id(), t.unk_id()), (Some(1), Some(2), Some(0)));
        assert!(t.add_bos());
        // "bc" outscores "ab", so "abc" is a + bc; the space prefix makes "▁".
        assert_eq!(t.encode("abc", true, false).unwrap(), [vec![1], ids(&t, &["▁a", "bc"])].concat());
        assert_eq!(t.encode("ab ab", false, false).unwrap(), ids(&t, &["▁ab", "▁ab"]));
        assert_eq!(t.decode(&t.encode("ab ab", false, false).unwrap(), false), b"ab ab");
        // A leading BOS that is removed keeps the space, as in llama.cpp.
        let with_bos = t.encode("ab", true, false).unwrap();
        assert_eq!(t.detokenize(&with_bos, true, false), b" ab");
        // Otherwise the BOS takes the one-time strip, as llama.cpp's detokenize does.
        assert_eq!(t.decode(&with_bos, true), b"<s> ab");
        assert_eq!(t.decode(&with_bos, false), b" ab");
    }

    #[test]
    fn spm_byte_fallback() {
        let t = spm();
        let got = t.encode("é", false, false).unwrap();
        assert_eq!(got, ids(&t, &["▁", "<0xC3>", "<0xA9>"]));
        assert_eq!(t.token_piece(got[1], false), [0xc3]);
        assert_eq!(t.decode(&got, false), "é".as_bytes());
    }

    #[test]
    fn spm_without_space_prefix() {
        let t = build(spm_entries(vec![("tokenizer.ggml.add_space_prefix", Value::Bool(false))])).unwrap();
        assert_eq!(t.encode("ab", false, false).unwrap(), ids(&t, &["ab"]));
        assert_eq!(t.decode(&ids(&t, &["▁ab"]), false), b" ab");
    }

    #[test]
    fn partition_follows_special_parsing_rules() {
        let t = spm();
        let turn = id(&t, "<|turn|>");
        let user = id(&t, "<u>");
        // CONTROL text is plain text unless parse_special; USER_DEFINED always matches.
        assert_eq!(t.encode("<|turn|><u>", false, true).unwrap(), vec![turn, user]);
        let plain = t.encode("<|turn|><u>", false, false).unwrap();
        assert!(!plain.contains(&turn) && plain.ends_with(&[user]));
        // The space prefix goes only at the start and after a special token.
        assert_eq!(t.encode("a<u>a", false, false).unwrap(), ids(&t, &["▁a", "<u>", "▁a"]));
        // Longest token first over the whole text, not leftmost-longest.
        assert_eq!(t.encode("wxyz", false, false).unwrap(), ids(&t, &["▁", "<0x77>", "xyz"]));
        // Control tokens render only when asked.
        assert_eq!(t.decode(&[turn, user], false), b"<u>");
        assert_eq!(t.decode(&[turn, user], true), b"<|turn|><u>");
    }

    #[test]
    fn rstrip_for_phi3() {
        let t = build(spm_entries(vec![("general.name", Value::String("Phi-3 mini".into()))])).unwrap();
        let turn = id(&t, "<|turn|>");
        // The spaces after the token are stripped; the SPM space prefix is then added back.
        assert_eq!(t.encode("<|turn|> \n ab", false, true).unwrap(), vec![turn, id(&t, "▁ab")]);
    }

    #[test]
    fn end_of_generation_ids() {
        let t = spm();
        assert_eq!(t.eog_ids(), [2]);
        assert!(t.is_eog(2) && !t.is_eog(1));
        let t = build(spm_entries(vec![
            ("tokenizer.ggml.eos_token_id", Value::U32(3)),
            ("tokenizer.ggml.tokens", strings(&["<unk>", "<|im_end|>", "<end_of_turn>", "x", "y"])),
            ("tokenizer.ggml.scores", Value::Array(vec![Value::F32(0.0); 5])),
            ("tokenizer.ggml.token_type", Value::Array(vec![Value::I32(1); 5])),
        ]))
        .unwrap();
        // By text (and made CONTROL), plus the EOS id.
        assert_eq!(t.eog_ids(), [1, 2, 3]);
        assert_eq!(t.eot_id(), Some(1));
        assert_eq!(t.decode(&[1, 3], false), b"x");
    }

    #[test]
    fn decode_skips_ids_out_of_range() {
        let t = spm();
        assert_eq!(t.decode(&[u32::MAX, id(&t, "a")], false), b"a");
        assert!(t.token_piece(u32::MAX, true).is_empty());
    }

    #[test]
    fn stream_holds_split_characters_and_replaces_invalid_bytes() {
        let t = spm();
        let euro = ids(&t, &["<0xE2>", "<0x82>", "<0xAC>"]);
        let mut stream = StreamDecoder::new(&t, false);
        assert_eq!(stream.push(euro[0]), "");
        assert_eq!(stream.push(euro[1]), "");
        assert_eq!(stream.push(euro[2]), "€");
        // A byte that can start nothing, then an unfinished character.
        assert_eq!(stream.push(id(&t, "<0xFF>")), "\u{FFFD}");
        assert_eq!(stream.push(euro[0]), "");
        assert_eq!(stream.push(id(&t, "a")), "\u{FFFD}a");
        assert_eq!(stream.push(euro[0]), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn stream_drops_the_first_space_like_decode() {
        let t = std::rc::Rc::new(spm());
        let ids = t.encode("ab ab", false, false).unwrap();
        let mut stream = StreamDecoder::new(t.clone(), false);
        let text: String = ids.iter().map(|&i| stream.push(i)).collect::<String>() + &stream.finish();
        assert_eq!(text.as_bytes(), t.decode(&ids, false));
        assert_eq!(text, "ab ab");
    }

    /// GPT-2 byte-level vocabulary: the 256 byte symbols, then merged pieces.
    fn gpt2_entries(pre: &str, merges: &[&str]) -> Vec<(&'static str, Value)> {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_symbol(b).to_string()).collect();
        tokens.extend(["Ġa", "Ġb", "ab", "<|endoftext|>", "<|im_start|>"].map(String::from));
        let mut types = vec![1; tokens.len()];
        let n = types.len();
        types[n - 2] = 3;
        types[n - 1] = 3;
        vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String(pre.into())),
            ("tokenizer.ggml.tokens", Value::Array(tokens.into_iter().map(Value::String).collect())),
            ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
            ("tokenizer.ggml.merges", strings(merges)),
        ]
    }

    fn byte_symbol(b: u8) -> char {
        (0..=0x143u32).filter_map(char::from_u32).find(|&c| byte_of_char(c) == Some(b)).unwrap()
    }

    #[test]
    fn gpt2_byte_level_with_merges_and_clean_up() {
        let t = build(gpt2_entries("gpt-2", &["Ġ a", "Ġ b", "a b"])).unwrap();
        assert_eq!((t.bos_id(), t.add_bos(), t.unk_id()), (Some(11), false, None));
        let got = t.encode("ab a b<|endoftext|>", false, true).unwrap();
        assert_eq!(got, ids(&t, &["ab", "Ġa", "Ġb", "<|endoftext|>"]));
        assert_eq!(t.eog_ids(), [11, id(&t, "<|endoftext|>")]);
        // Bytes outside ASCII go through the byte map.
        let euro = t.encode("€", false, false).unwrap();
        assert_eq!(euro.len(), 3);
        assert_eq!(t.token_piece(euro[0], false), [0xe2]);
        // gpt-2 cleans up spaces on decode; the stream agrees.
        let text = "a . b 's it ' s";
        let ids = t.encode(text, false, false).unwrap();
        assert_eq!(t.decode(&ids, false), b"a. b's it's");
        let mut stream = StreamDecoder::new(&t, false);
        let streamed: String = ids.iter().map(|&i| stream.push(i)).collect::<String>() + &stream.finish();
        assert_eq!(streamed, "a. b's it's");
    }

    #[test]
    fn pre_tokenizer_splits_digits_for_smollm() {
        let t = build(gpt2_entries("smollm", &["Ġ a", "Ġ b", "a b"])).unwrap();
        assert_eq!(t.encode("12", false, false).unwrap(), ids(&t, &["1", "2"]));
        assert_eq!(t.decode(&ids(&t, &["Ġa", "."]), false), b" a.");
    }

    #[test]
    fn clean_up_is_stable_across_safe_cuts() {
        let alphabet = b" 'smrvetdl.?x";
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..20_000 {
            let raw: Vec<u8> = (0..next(12)).map(|_| alphabet[next(alphabet.len())]).collect();
            let later: Vec<u8> = (0..next(8)).map(|_| alphabet[next(alphabet.len())]).collect();
            let cut = stable_clean_prefix(&raw);
            let mut whole = [&raw[..], &later].concat();
            clean_up_spaces(&mut whole);
            let (mut head, mut tail) = (raw[..cut].to_vec(), [&raw[cut..], &later].concat());
            clean_up_spaces(&mut head);
            clean_up_spaces(&mut tail);
            assert_eq!(
                whole,
                [head, tail].concat(),
                "{:?} | {:?}",
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&later)
            );
        }
    }

    #[test]
    fn malformed_metadata_is_a_clear_error() {
        let message = |r: Result<Tokenizer, Error>| match r {
            Err(Error::Tokenizer(m)) => m,
            Err(e) => panic!("wrong error kind: {e}"),
            Ok(_) => panic!("accepted bad metadata"),
        };
        let without = |key: &str| spm_entries(vec![]).into_iter().filter(|(k, _)| *k != key).collect();
        assert!(message(build(without("tokenizer.ggml.tokens"))).contains("tokenizer.ggml.tokens is missing"));
        assert!(message(build(without("tokenizer.ggml.model"))).contains("tokenizer.ggml.model is missing"));
        for model in ["bert", "rwkv"] {
            let m = message(build(spm_entries(vec![("tokenizer.ggml.model", Value::String(model.into()))])));
            assert!(m.contains(&format!("`{model}`")), "{m}");
        }
        let m = message(build(
            gpt2_entries("gpt-2", &[]).into_iter().filter(|(k, _)| *k != "tokenizer.ggml.merges").collect(),
        ));
        assert!(m.contains("merges is missing"), "{m}");
        let m = message(build(gpt2_entries("gpt-2", &["Ġ zz"])));
        assert!(m.contains("`zz`"), "{m}");
        let m = message(build(gpt2_entries("no-such-pre", &[])));
        assert!(m.contains("no-such-pre"), "{m}");
        let m = message(build(spm_entries(vec![("tokenizer.ggml.tokens", strings(&["a", "a"]))])));
        assert!(m.contains("duplicate"), "{m}");
    }
}
