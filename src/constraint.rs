//! Constrained decoding: a response format (a JSON schema, any JSON object,
//! a regex, a Lark or GBNF grammar) that every generated text must follow.
//!
//! llguidance compiles the format against the model's vocabulary and, at
//! each step, gives the set of tokens that can continue the text within the
//! format; every other token's logit becomes `-inf` before the sampler runs,
//! so that bias, penalties, top-k/p, min-p and temperature all still apply
//! among the allowed tokens. Once the format is complete, only the
//! end-of-generation tokens remain allowed, or the generation ends at once
//! where nothing may follow.

mod gbnf;

use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use std::sync::Arc;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};

/// What a generation's text must be.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    /// JSON valid against this schema (llguidance's JSON schema subset:
    /// objects, arrays, enums, `anyOf`/`oneOf`, `$ref`, string formats and
    /// patterns, numeric and length bounds).
    JsonSchema(serde_json::Value),
    /// Any JSON object.
    JsonObject,
    /// Text matching this regex (Rust `regex` syntax, anchored at both ends).
    Regex(String),
    /// A Lark grammar as llguidance reads it, or a llama.cpp GBNF grammar
    /// (told apart by its `name ::=` rules).
    Grammar(String),
}

impl ResponseFormat {
    /// Reads a format as the JavaScript API and OpenAI's `response_format`
    /// spell it: `{type: 'json_schema', schema}` (or OpenAI's
    /// `json_schema: {schema}`), `{type: 'json_object'}`, `{type: 'regex',
    /// pattern}`, `{type: 'grammar', grammar}` (or `lark`/`gbnf` as the key);
    /// `{type: 'text'}` is free text (`None`).
    pub fn from_json(value: &serde_json::Value) -> Result<Option<ResponseFormat>> {
        let bad = |why: &str| Error::InvalidArgument(format!("responseFormat: {why}"));
        let object = value.as_object().ok_or_else(|| bad("must be an object with a `type`"))?;
        let kind = object.get("type").and_then(|t| t.as_str()).ok_or_else(|| bad("needs a string `type`"))?;
        let (allowed, format): (&[&str], _) = match kind {
            "text" => (&[], None),
            "json_object" => (&[], Some(ResponseFormat::JsonObject)),
            "json_schema" => {
                let schema = match (object.get("schema"), object.get("json_schema")) {
                    (Some(schema), None) => schema,
                    (None, Some(openai)) => openai.get("schema").ok_or_else(|| bad("`json_schema` needs a `schema`"))?,
                    _ => return Err(bad("`json_schema` takes one of `schema` or OpenAI's `json_schema: {schema}`")),
                };
                if !(schema.is_object() || schema.is_boolean()) {
                    return Err(bad("a JSON schema is an object (or true/false)"));
                }
                (&["schema", "json_schema"], Some(ResponseFormat::JsonSchema(schema.clone())))
            }
            "regex" => {
                let pattern = object.get("pattern").and_then(|p| p.as_str()).ok_or_else(|| bad("`regex` needs a string `pattern`"))?;
                (&["pattern"], Some(ResponseFormat::Regex(pattern.to_string())))
            }
            "grammar" => {
                const KEYS: [&str; 3] = ["grammar", "lark", "gbnf"];
                let keys = &KEYS;
                let mut given = keys.iter().filter_map(|k| object.get(*k));
                let (Some(grammar), None) = (given.next(), given.next()) else {
                    return Err(bad("`grammar` needs one string of `grammar`, `lark` or `gbnf`"));
                };
                let grammar = grammar.as_str().ok_or_else(|| bad("the grammar must be a string"))?;
                (keys, Some(ResponseFormat::Grammar(grammar.to_string())))
            }
            other => return Err(bad(&format!("unknown type `{other}` (json_schema, json_object, regex, grammar, text)"))),
        };
        if let Some(key) = object.keys().find(|k| *k != "type" && !allowed.contains(&k.as_str())) {
            return Err(bad(&format!("unknown key `{key}` for type `{kind}`")));
        }
        Ok(format)
    }

    /// The format as [`ResponseFormat::from_json`] reads it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ResponseFormat::JsonSchema(schema) => json!({ "type": "json_schema", "schema": schema }),
            ResponseFormat::JsonObject => json!({ "type": "json_object" }),
            ResponseFormat::Regex(pattern) => json!({ "type": "regex", "pattern": pattern }),
            ResponseFormat::Grammar(grammar) => json!({ "type": "grammar", "grammar": grammar }),
        }
    }

    fn grammar(&self) -> Result<TopLevelGrammar> {
        Ok(match self {
            ResponseFormat::JsonSchema(schema) => TopLevelGrammar::from_json_schema(with_bounded_whitespace(schema)),
            ResponseFormat::JsonObject => {
                TopLevelGrammar::from_json_schema(with_bounded_whitespace(&serde_json::json!({ "type": "object" })))
            }
            ResponseFormat::Regex(pattern) => TopLevelGrammar::from_regex(pattern),
            ResponseFormat::Grammar(g) if gbnf::is_gbnf(g) => TopLevelGrammar::from_lark(
                gbnf::to_lark(g).map_err(|e| Error::InvalidArgument(format!("GBNF grammar: {e}")))?,
            ),
            ResponseFormat::Grammar(g) => TopLevelGrammar::from_lark(g.clone()),
        })
    }
}

/// The whitespace JSON may have between two tokens: llguidance allows any
/// run of it by default, and a small model can get stuck emitting blanks
/// until `max_tokens`. As llama.cpp's JSON grammars: a space, or one or two
/// line breaks and an indent of up to 20.
const JSON_WHITESPACE: &str = r"(?: |\n{1,2}[ \t]{0,20})";

/// `schema` with [`JSON_WHITESPACE`], unless it sets llguidance's own
/// `x-guidance` options (or is `true`/`false`, which has no options).
pub(crate) fn with_bounded_whitespace(schema: &serde_json::Value) -> serde_json::Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        if !object.contains_key("x-guidance") {
            object.insert("x-guidance".into(), serde_json::json!({ "whitespace_pattern": JSON_WHITESPACE }));
        }
    }
    schema
}

/// Longest token, in bytes, that a format may produce: llguidance's token
/// trie holds tokens of up to about 1000 bytes (and asserts on longer ones,
/// which a hostile vocabulary could hold). Real vocabularies stay far below.
const MAX_TOKEN_BYTES: usize = 512;

/// The model's vocabulary as llguidance needs it (a trie of every token's
/// bytes), built once per session on its first constrained request.
pub struct Grammars {
    factory: ParserFactory,
}

impl Grammars {
    pub fn new(tokenizer: Arc<Tokenizer>) -> Result<Grammars> {
        let n = tokenizer.vocab_size();
        // The trie numbers nodes in 22 bits.
        if n == 0 || n >= 1 << 21 {
            return Err(Error::InvalidArgument(format!("a vocabulary of {n} tokens cannot be constrained")));
        }
        // As llama.cpp hands its vocabulary to llguidance: a token's text,
        // or, for a control token (which renders as nothing), its name after
        // the special-token marker, so that no text can spell it.
        let words: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| {
                let piece = tokenizer.token_piece(id, false);
                let word = if piece.is_empty() {
                    let name = tokenizer.token_piece(id, true);
                    if name.is_empty() {
                        name
                    } else {
                        [&[TokTrie::SPECIAL_TOKEN_MARKER][..], &name].concat()
                    }
                } else {
                    piece
                };
                if word.len() > MAX_TOKEN_BYTES {
                    Vec::new()
                } else {
                    word
                }
            })
            .collect();
        let eog = tokenizer.eog_ids();
        let eos = tokenizer.eos_id().or_else(|| eog.first().copied()).filter(|&e| (e as usize) < n);
        let eos = eos.ok_or_else(|| Error::InvalidArgument("the model has no end-of-generation token".into()))?;
        let mut info = TokRxInfo::new(n as u32, eos);
        info.tok_bos = tokenizer.bos_id();
        info.tok_end_of_turn = tokenizer.eot_id();
        let mut eog: Vec<u32> = eog.iter().copied().filter(|&e| (e as usize) < n).collect();
        if eog.is_empty() {
            eog.push(eos);
        }
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eog);
        let env: TokEnv = Arc::new(Vocabulary { trie, tokenizer });
        // No vocabulary slices (llguidance's default splits the trie by
        // JSON-string classes to speed up masks): with them Gemma 3's 262k
        // vocabulary took 111 MiB more at peak, without them 57 MiB, and its
        // masks under a nested JSON schema 1.1 ms a token instead of 0.8
        // (Node 22; a 36 ms token).
        let mut factory = ParserFactory::new(&env, Default::default(), &[]).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        factory.quiet();
        Ok(Grammars { factory })
    }

    /// Compiles `format`; a schema, regex or grammar that llguidance
    /// rejects is an [`Error::InvalidArgument`] with its message.
    pub fn compile(&self, format: &ResponseFormat) -> Result<Constraint> {
        let parser = self.factory.create_parser(format.grammar()?).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(Error::InvalidArgument(e));
        }
        let json = matches!(format, ResponseFormat::JsonSchema(_) | ResponseFormat::JsonObject).then(JsonDigits::default);
        Ok(Constraint { matcher, vocab: self.factory.tok_env().clone(), json, complete: false })
    }
}

/// The tokenizer behind llguidance's [`TokEnv`]: the trie, and our own
/// tokenization for the text a grammar forces.
struct Vocabulary {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.trie.tokenize_with_greedy_fallback(s, |s| self.tokenizer.encode(s, false, false).unwrap_or_default())
    }

    fn tokenize_is_canonical(&self) -> bool {
        // SentencePiece's space prefix makes `encode(a + b)` differ from
        // `encode(a) + encode(b)` at the seam.
        !self.tokenizer.adds_space_prefix()
    }
}

/// Most digits in a row that a JSON number's integral part, fraction or
/// exponent takes, as in llama.cpp's JSON grammars: JSON schemas cannot
/// bound a fraction's length, and small models, greedy, can repeat a digit
/// until `max_tokens` (Gemma 3 270M: `"price": 10990.0000…`). Past 16 digits
/// an f64 holds nothing more.
const MAX_JSON_DIGITS: usize = 16;

/// Where JSON text stands for [`MAX_JSON_DIGITS`]: inside a string (whose
/// digits are text) or not, and the digits in a row outside strings.
#[derive(Default)]
struct JsonDigits {
    in_string: bool,
    escaped: bool,
    digits: usize,
}

impl JsonDigits {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else if b.is_ascii_digit() {
                self.digits += 1;
            } else {
                self.digits = 0;
                self.in_string = b == b'"';
            }
        }
    }
}

/// One generation's place in its format.
pub struct Constraint {
    matcher: Matcher,
    vocab: TokEnv,
    /// For a JSON format, the digit count [`MAX_JSON_DIGITS`] bounds.
    json: Option<JsonDigits>,
    complete: bool,
}

impl Constraint {
    /// Sets the logit of every token that cannot come next to `-inf` (ids
    /// past the vocabulary included: a model's output may be padded).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let mut mask = self.matcher.compute_mask().map_err(|e| failed(&e.to_string()))?;
        if self.json.as_ref().is_some_and(|j| j.digits >= MAX_JSON_DIGITS) {
            // The number must end here, where the schema lets it (a bound
            // that needs more digits keeps them).
            let trie = self.vocab.tok_trie();
            let mut ended = mask.clone();
            mask.iter_set_entries(|id| {
                if trie.token(id as u32).first().is_some_and(u8::is_ascii_digit) {
                    ended.disallow_token(id as u32);
                }
            });
            if ended.num_set() > 0 {
                mask = ended;
            }
        }
        let words = mask.as_slice();
        for (i, chunk) in logits.chunks_mut(32).enumerate() {
            let word = words.get(i).copied().unwrap_or(0);
            if word == u32::MAX {
                continue;
            }
            for (b, logit) in chunk.iter_mut().enumerate() {
                if word & (1 << b) == 0 {
                    *logit = f32::NEG_INFINITY;
                }
            }
        }
        Ok(())
    }

    /// Moves past the sampled `token`, which [`Constraint::mask`] allowed.
    pub fn accept(&mut self, token: u32) -> Result<()> {
        self.matcher.consume_token(token).map_err(|e| failed(&e.to_string()))?;
        self.complete = self.matcher.is_stopped();
        let trie = self.vocab.tok_trie();
        if let Some(json) = self.json.as_mut().filter(|_| (token as usize) < trie.vocab_size()) {
            json.push(trie.token(token));
        }
        Ok(())
    }

    /// Whether the text is complete and nothing may follow but the end.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

fn failed(why: &str) -> Error {
    Error::InvalidArgument(format!("the response format could not go on: {why}"))
}

#[cfg(test)]
mod tests;
