//! One error type for the crate. Every variant maps to a stable `code` that the
//! JavaScript API exposes, so callers can branch on it without parsing text.

use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid GGUF file: {0}")]
    InvalidGguf(#[from] GgufError),
    #[error("unsupported model architecture `{0}` (supported: llama, gemma3)")]
    UnsupportedArch(String),
    #[error("tensor `{tensor}` has type {ty}, which this engine cannot compute with (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)")]
    UnsupportedQuant { tensor: String, ty: &'static str },
    #[error("model does not match its architecture: {0}")]
    BadModel(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("the prompt needs {needed} tokens of context but the context holds {context}; shorten the conversation or load with a larger context length")]
    ContextOverflow { needed: usize, context: usize },
    #[error("not enough memory: {0}")]
    OutOfMemory(String),
    #[error("no usable GPU: {0}")]
    NoGpu(String),
    #[error("aborted")]
    Aborted,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("the file's SHA-256 is {actual}, not the expected {expected}: it is damaged or not the file meant")]
    Integrity { expected: String, actual: String },
}

impl Error {
    /// The stable code the JavaScript API puts on its `Error` objects.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidGguf(_) | Error::BadModel(_) => "INVALID_GGUF",
            Error::UnsupportedArch(_) => "UNSUPPORTED_ARCH",
            Error::UnsupportedQuant { .. } => "UNSUPPORTED_QUANT",
            Error::Tokenizer(_) => "TOKENIZER",
            Error::ChatTemplate(_) => "CHAT_TEMPLATE",
            Error::ContextOverflow { .. } => "CONTEXT_OVERFLOW",
            Error::OutOfMemory(_) => "OUT_OF_MEMORY",
            Error::NoGpu(_) => "NO_WEBGPU",
            Error::Aborted => "ABORTED",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Io(_) => "IO",
            Error::Integrity { .. } => "INTEGRITY",
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
