//! The regex pre-tokenizers of llama.cpp's `llm_tokenizer_bpe`, picked by
//! `tokenizer.ggml.pre`.

use fancy_regex::Regex;

use crate::Error;

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
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PRE_QWEN35: &[&str] = &[QWEN35];
const PRE_FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
/// DeepSeek lists its letters script by script rather than as `\p{L}`; copied
/// byte for byte from llama-vocab.cpp (a few are not in NFC, e.g. U+1F7D).
const PRE_DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
];
const PRE_DEEPSEEK_CODER: &[&str] = &["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"];
const PRE_DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];

/// What llama.cpp's vocabulary loader sets for a `tokenizer.ggml.pre` name.
pub(super) struct PreTokenizer {
    pub(super) regexes: &'static [&'static str],
    pub(super) clean_spaces: bool,
    /// A split that is itself a token is emitted whole, without merging.
    pub(super) ignore_merges: bool,
    pub(super) add_bos: bool,
}

/// The `tokenizer.ggml.pre` names whose llama.cpp pre-tokenizer is one of the
/// regex families above. llama.cpp rejects names it does not know, and so do we.
pub(super) fn pre_tokenizer(name: &str) -> Result<PreTokenizer, Error> {
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
        "qwen35" => (PRE_QWEN35, false, false),
        "falcon" => (PRE_FALCON, true, false),
        "deepseek-llm" => (PRE_DEEPSEEK_LLM, false, false),
        "deepseek-coder" => (PRE_DEEPSEEK_CODER, false, false),
        other => {
            return Err(Error::Tokenizer(format!(
                "pre-tokenizer `{other}` (tokenizer.ggml.pre) is not supported; supported: the \
                 gpt-2, starcoder/smollm, llama3, qwen2, qwen35, falcon, deepseek-llm, deepseek-coder and default families"
            )))
        }
    };
    Ok(PreTokenizer { regexes, clean_spaces, ignore_merges: llama3, add_bos: llama3 })
}

/// A pre-tokenizer's regexes, compiled.
pub(super) struct Splitter {
    regexes: Vec<Regex>,
}

impl Splitter {
    pub(super) fn new(pre: &PreTokenizer) -> Result<Self, Error> {
        let compile = |regex: &&str| {
            Regex::new(regex).map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex `{regex}`: {e}")))
        };
        Ok(Splitter { regexes: pre.regexes.iter().map(compile).collect::<Result<_, _>>()? })
    }

    /// The pieces of `text`: each regex in turn cuts every piece into its
    /// matches and the stretches between them. A regex that gives up (past
    /// fancy-regex's backtracking limit) leaves the rest of its piece whole.
    pub(super) fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut pieces: Vec<&str> = Some(text).filter(|t| !t.is_empty()).into_iter().collect();
        let mut next = Vec::new();
        for regex in &self.regexes {
            for piece in pieces.drain(..) {
                let mut from = 0;
                for found in regex.find_iter(piece).map_while(Result::ok) {
                    next.extend([&piece[from..found.start()], found.as_str()].into_iter().filter(|p| !p.is_empty()));
                    from = found.end();
                }
                next.extend(Some(&piece[from..]).filter(|p| !p.is_empty()));
            }
            std::mem::swap(&mut pieces, &mut next);
        }
        pieces
    }
}
