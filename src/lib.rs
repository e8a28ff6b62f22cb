//! webslm: small language models, privately, wherever WebAssembly runs.
//!
//! The pipeline: [`gguf`] streams a model file in chunks; [`model`] describes
//! each architecture as a forward pass over a few ops that a backend ([`cpu`])
//! implements on weights kept in their [`quant`]ized blocks; [`tokenizer`] and
//! [`chat`] turn text and conversations into tokens; [`sampler`] picks tokens,
//! among those a [`constraint`] (a JSON schema, regex or grammar) allows;
//! [`session`] ties it together into generate, chat and score requests.

pub mod chat;
pub mod constraint;
pub mod cpu;
pub mod error;
pub mod gguf;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod heap;
pub mod model;
pub mod options;
pub mod quant;
pub mod sampler;
pub mod session;
pub mod tokenizer;

pub use chat::{FunctionCall, Message, ToolCall};
pub use error::{Error, Result};
pub use sampler::SamplerConfig;
pub use session::{GenerateOptions, LoadOptions, Session};
#[cfg(target_arch = "wasm32")]
pub mod web;
