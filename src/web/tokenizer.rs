//! A tokenizer alone, from the header of a GGUF file: all of a vocabulary-only
//! file (llama.cpp's `ggml-vocab-*.gguf`, which has no tensors), the first
//! megabytes of a model. Behind the package's `Tokenizer` and `webslm tokenize`.

use wasm_bindgen::prelude::*;

use super::{coded_error, js_error};
use crate::gguf::{GgufSink, GgufStream, Header, TensorInfo};
use crate::tokenizer::Tokenizer;

/// Reads a GGUF file pushed chunk by chunk until its header is complete.
#[wasm_bindgen]
pub struct TokenizerLoader {
    stream: GgufStream,
}

/// Takes nothing: the caller stops pushing once the header is in.
struct HeaderOnly;

impl GgufSink for HeaderOnly {
    fn header(&mut self, _: &mut Header) -> crate::Result<()> {
        Ok(())
    }

    fn rows(&mut self, _: &TensorInfo, _: u64, _: &[u8]) -> crate::Result<()> {
        Ok(())
    }
}

#[wasm_bindgen]
impl TokenizerLoader {
    /// `file_len` is the size of the whole file in bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(file_len: f64) -> Result<TokenizerLoader, JsValue> {
        if !(file_len >= 0.0 && file_len.fract() == 0.0 && file_len <= 9.007_199_254_740_991e15) {
            return Err(coded_error("INVALID_ARGUMENT", &format!("file length {file_len} is not a byte count")));
        }
        Ok(TokenizerLoader { stream: GgufStream::new(file_len as u64) })
    }

    /// Feeds the next chunk; true once the header is complete, when the rest
    /// of the file need not be read.
    pub fn push(&mut self, chunk: &[u8]) -> Result<bool, JsValue> {
        if self.stream.header().is_none() {
            self.stream.push(chunk, &mut HeaderOnly).map_err(js_error)?;
        }
        Ok(self.stream.header().is_some())
    }

    /// The tokenizer of the header's `tokenizer.*` metadata.
    pub fn finish(&self) -> Result<JsTokenizer, JsValue> {
        let header =
            self.stream.header().ok_or_else(|| coded_error("INVALID_GGUF", "the file ended before its header did"))?;
        Ok(JsTokenizer { tokenizer: Tokenizer::from_metadata(&header.metadata).map_err(js_error)? })
    }
}

#[wasm_bindgen(js_name = Tokenizer)]
pub struct JsTokenizer {
    tokenizer: Tokenizer,
}

#[wasm_bindgen(js_class = Tokenizer)]
impl JsTokenizer {
    /// As `llama_tokenize(text, add_special, parse_special)`.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, JsValue> {
        self.tokenizer.encode(text, add_special, parse_special).map_err(js_error)
    }

    /// Special tokens rendered; invalid UTF-8 becomes U+FFFD.
    pub fn detokenize(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.tokenizer.decode(ids, true)).into_owned()
    }

    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.vocab_size()
    }
}
