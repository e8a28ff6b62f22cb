//! The JavaScript edge: wasm-bindgen classes over [`Session`] and [`Loader`],
//! and over a tokenizer alone (`tokenizer.rs`).
//!
//! The npm package's glue (pkg-template/) wraps these in the public
//! `Generator` API; everything here is synchronous and owned, so the glue can
//! await between calls (to read the next chunk, to yield to the event loop, to
//! check an `AbortSignal`). Errors become `Error` objects with a stable `code`.

use crate::chat::tools::ToolChoice;
use crate::chat::Message;
use crate::constraint::ResponseFormat;
use crate::cpu::Cpu;
use crate::options::JsGenerateOptions;
use crate::session::{GenerateOptions, GenerationState, LoadOptions, Loader, Session};
#[cfg(feature = "gpu")]
use crate::session::{LoaderOrCpu, SessionOrCpu};
use crate::Error;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

mod cache;
mod download;
mod idb;
mod tokenizer;

thread_local! {
    static PANIC_HANDLER: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// Calls `handler(message)` when the engine panics, just before the wasm
/// instance traps: the glue then knows the instance is unusable, and why,
/// without calling into it again.
#[wasm_bindgen(js_name = setPanicHandler)]
pub fn set_panic_handler(handler: js_sys::Function) {
    PANIC_HANDLER.with(|h| *h.borrow_mut() = Some(handler));
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        PANIC_HANDLER.with(|h| {
            if let Some(handler) = h.try_borrow().ok().as_deref().and_then(Option::as_ref) {
                let _ = handler.call1(&JsValue::NULL, &message.into());
            }
        });
    }));
}

/// Starts `n` Web Workers for the pool that [`crate::cpu`] splits its work
/// over (the threaded build only); the glue awaits it before any other call.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// How many threads the engine's ops run on: the caller plus the pool.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    crate::cpu::threads()
}

/// The size of the last allocation refused ([`crate::heap::refused`]), 0
/// if none: after a trap, whether the instance ran out of memory.
#[wasm_bindgen(js_name = refusedAllocation)]
pub fn refused_allocation() -> f64 {
    crate::heap::refused() as f64
}

/// Panics, so that the test suite can check that a panic is contained: the
/// instance is marked unusable and a fresh one serves the next load.
#[doc(hidden)]
#[wasm_bindgen(js_name = __panicForTesting)]
pub fn panic_for_testing(message: &str) {
    panic!("{message}");
}

/// The value of a call that completes at once (every call on the CPU);
/// `INVALID_ARGUMENT` for one that would wait (on the GPU), whose `Async`
/// twin the caller should have used.
fn ready<T>(f: impl std::future::Future<Output = T>) -> Result<T, JsValue> {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => {
            Err(coded_error("INVALID_ARGUMENT", "this engine runs on the GPU: call the method's Async twin"))
        }
    }
}

/// An `Error` whose `code` property is the crate error's stable code.
fn js_error(e: Error) -> JsValue {
    coded_error(e.code(), &e.to_string())
}

pub(crate) fn coded_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

pub(crate) fn to_js<T: Serialize>(value: &T) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// Reads a JS value into `T`; `undefined` and `null` read as an empty object.
pub(crate) fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue, what: &str) -> Result<T, JsValue> {
    let value = if value.is_undefined() || value.is_null() { js_sys::Object::new().into() } else { value };
    serde_wasm_bindgen::from_value(value).map_err(|e| coded_error("INVALID_ARGUMENT", &format!("{what}: {e}")))
}

/// Bytes of `quantization` weights (a ggml type name, as `info.quantization`
/// gives it) this build's CPU backend multiplies a millisecond in a decode
/// GEMV, on its threads: what `device: 'auto'` expects of the CPU. Some
/// 100 ms, 16 MiB of memory for the while.
#[wasm_bindgen(js_name = calibrateCpu)]
pub fn calibrate_cpu(quantization: &str) -> Result<f64, JsValue> {
    let ty = (0..64)
        .filter_map(crate::quant::GgmlType::from_id)
        .find(|t| t.name() == quantization)
        .ok_or_else(|| coded_error("INVALID_ARGUMENT", &format!("unknown weight type `{quantization}`")))?;
    // performance.now(), in pages, Workers, Node and Deno alike.
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok().filter(|p| p.is_object());
    let clock = performance.and_then(|p| {
        let now = js_sys::Reflect::get(&p, &"now".into()).ok()?;
        Some((p, wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(now).ok()?))
    });
    let now = move || match &clock {
        Some((p, now)) => now.call0(p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        None => js_sys::Date::now(),
    };
    crate::cpu::calibrate::gemv_bytes_per_ms(ty, &now).ok_or_else(|| {
        coded_error("UNSUPPORTED_QUANT", &format!("the CPU backend has no kernel for {quantization} weights"))
    })
}

/// A GPU adapter and device, opened before a load (a browser grants them
/// asynchronously) and handed to the loader, which then puts the model on it.
#[wasm_bindgen]
pub struct GpuDevice {
    #[cfg(feature = "gpu")]
    gpu: crate::gpu::Gpu,
    /// Whether a model the GPU cannot hold goes to the CPU instead of failing.
    #[cfg(feature = "gpu")]
    or_cpu: bool,
}

/// Opens the browser's WebGPU adapter; fails with `NO_WEBGPU` where there
/// is none, or in the builds without the GPU backend (the threaded ones).
/// With `orCpu`, a loader given this device runs a model on the CPU when
/// its header shows that the GPU cannot hold it (`device: 'auto'`).
/// `kernels`: the kernel family, `software` (GPUs emulated on the CPU) or
/// `hardware` (in f16 where the adapter has `shader-f16`; without subgroups:
/// wgpu's WebGPU backend does not offer them, and the subgroup kernel would
/// need `enable subgroups;`); left out, wgpu's view of the adapter decides,
/// which in a browser sees only whether it is a fallback adapter.
#[wasm_bindgen(js_name = openGpu)]
pub async fn open_gpu(or_cpu: Option<bool>, kernels: Option<String>) -> Result<GpuDevice, JsValue> {
    #[cfg(feature = "gpu")]
    {
        use crate::gpu::{Family, Gpu};
        let or_cpu = or_cpu.unwrap_or(false);
        let family = match kernels.as_deref() {
            None => None,
            Some("software") => Some(Family::Software),
            Some("hardware") => Some(Family::Hardware { subgroups: false, f16: true }),
            Some(other) => {
                return Err(coded_error(
                    "INVALID_ARGUMENT",
                    &format!("unknown GPU kernels `{other}` (software, hardware)"),
                ))
            }
        };
        Gpu::request_family(family).await.map(|gpu| GpuDevice { gpu, or_cpu }).map_err(js_error)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (or_cpu, kernels);
        Err(coded_error(
            "NO_WEBGPU",
            "this build of the engine has no GPU backend (the threaded builds run on the CPU)",
        ))
    }
}

#[wasm_bindgen]
impl GpuDevice {
    /// The adapter's name and API.
    pub fn adapter(&self) -> String {
        #[cfg(feature = "gpu")]
        return self.gpu.adapter().to_string();
        #[cfg(not(feature = "gpu"))]
        String::new()
    }

    /// The kernel family that runs the ops: `software`, `hardware` or
    /// `hardware+f16`.
    pub fn kernels(&self) -> String {
        #[cfg(feature = "gpu")]
        return self.gpu.family().name().to_string();
        #[cfg(not(feature = "gpu"))]
        String::new()
    }
}

/// A loader onto the CPU or the GPU.
enum AnyLoader {
    Cpu(Loader<Cpu>),
    #[cfg(feature = "gpu")]
    Gpu(LoaderOrCpu<crate::gpu::Gpu>, String),
}

/// A session on the CPU or the GPU, and the name of what it runs on.
enum AnySession {
    Cpu(Session<Cpu>),
    #[cfg(feature = "gpu")]
    Gpu(Session<crate::gpu::Gpu>, String),
}

/// `$body` with `$s` bound to whichever session (or loader) `$any` holds.
macro_rules! on {
    ($any:expr, $s:ident => $body:expr) => {
        match $any {
            AnySession::Cpu($s) => $body,
            #[cfg(feature = "gpu")]
            AnySession::Gpu($s, _) => $body,
        }
    };
}

/// Builds an [`Engine`] from a GGUF file pushed chunk by chunk.
#[wasm_bindgen]
pub struct ModelLoader {
    inner: Option<AnyLoader>,
    integrity: Option<Integrity>,
    /// The one buffer in wasm memory that pushed bytes pass through, of
    /// [`PIECE`] bytes: a chunk of any size costs no more (and allocating
    /// one of its size per push would leave holes in memory that never
    /// shrinks).
    piece: Vec<u8>,
}

/// The bytes copied from a pushed JS array into wasm memory at a time.
pub(crate) const PIECE: u32 = 1 << 20;

/// The SHA-256 a file must have, and the hash of what was pushed so far.
struct Integrity {
    expected: String,
    hasher: Sha256,
}

#[wasm_bindgen]
impl ModelLoader {
    /// `file_len` is the size of the whole file in bytes; `sha256`, in hex,
    /// is checked when the last byte has been pushed; `gpu`, where given,
    /// runs the model (else the CPU does).
    #[wasm_bindgen(constructor)]
    pub fn new(
        file_len: f64,
        context_length: Option<u32>,
        sha256: Option<String>,
        gpu: Option<GpuDevice>,
        chat_template: Option<String>,
    ) -> Result<ModelLoader, JsValue> {
        if !(file_len >= 0.0 && file_len.fract() == 0.0 && file_len <= 9.007_199_254_740_991e15) {
            return Err(coded_error("INVALID_ARGUMENT", &format!("file length {file_len} is not a byte count")));
        }
        let integrity = match sha256 {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(Integrity { expected: hex.to_ascii_lowercase(), hasher: Sha256::new() })
            }
            Some(hex) => return Err(coded_error("INVALID_ARGUMENT", &format!("sha256 `{hex}` is not 64 hex digits"))),
            None => None,
        };
        let options =
            LoadOptions { context_length: context_length.map(|c| c as usize), chat_template, ..Default::default() };
        let file_len = file_len as u64;
        let inner = match gpu {
            #[cfg(feature = "gpu")]
            Some(GpuDevice { gpu, or_cpu }) => {
                let name = gpu.adapter().to_string();
                AnyLoader::Gpu(LoaderOrCpu::new(gpu, file_len, options, or_cpu), name)
            }
            _ => AnyLoader::Cpu(Loader::new(Cpu::default(), file_len, options)),
        };
        Ok(ModelLoader { inner: Some(inner), integrity, piece: Vec::with_capacity(PIECE as usize) })
    }

    /// Feeds the next chunk of the file (a `Uint8Array` of any size).
    pub fn push(&mut self, chunk: &js_sys::Uint8Array) -> Result<(), JsValue> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        let mut offset = 0;
        while offset < chunk.length() {
            let n = (chunk.length() - offset).min(PIECE);
            self.piece.resize(n as usize, 0);
            chunk.subarray(offset, offset + n).copy_to(&mut self.piece);
            if let Some(i) = &mut self.integrity {
                i.hasher.update(&self.piece);
            }
            match inner {
                AnyLoader::Cpu(l) => l.push(&self.piece),
                #[cfg(feature = "gpu")]
                AnyLoader::Gpu(l, _) => l.push(&self.piece),
            }
            .map_err(js_error)?;
            offset += n;
        }
        Ok(())
    }

    /// Reads the file's header from what has been pushed, if it is all
    /// there: true once it has been read and the model found to fit (an
    /// `OUT_OF_MEMORY` error where it cannot).
    #[wasm_bindgen(js_name = readHeader)]
    pub fn read_header(&mut self) -> Result<bool, JsValue> {
        match self.inner.as_mut().ok_or_else(finished)? {
            AnyLoader::Cpu(l) => l.try_header(),
            #[cfg(feature = "gpu")]
            AnyLoader::Gpu(l, _) => l.try_header(),
        }
        .map_err(js_error)
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> f64 {
        match &self.inner {
            None => 0.0,
            Some(AnyLoader::Cpu(l)) => l.position() as f64,
            #[cfg(feature = "gpu")]
            Some(AnyLoader::Gpu(l, _)) => l.position() as f64,
        }
    }

    /// The loaded engine; the loader cannot be used afterwards.
    pub fn finish(&mut self) -> Result<Engine, JsValue> {
        self.verify()?;
        let session = match self.inner.take().ok_or_else(finished)? {
            AnyLoader::Cpu(l) => AnySession::Cpu(l.finish().map_err(js_error)?),
            #[cfg(feature = "gpu")]
            AnyLoader::Gpu(l, name) => match l.finish().map_err(js_error)? {
                SessionOrCpu::On(s) => AnySession::Gpu(s, name),
                SessionOrCpu::Cpu(s) => AnySession::Cpu(s),
            },
        };
        Ok(Engine { session, generation: None, panic_after: None, cached: false })
    }
}

impl ModelLoader {
    /// Checks the SHA-256 of everything pushed (once; later calls pass).
    fn verify(&mut self) -> Result<(), JsValue> {
        let Some(Integrity { expected, hasher }) = self.integrity.take() else { return Ok(()) };
        let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if actual == expected {
            Ok(())
        } else {
            Err(js_error(Error::Integrity { expected, actual }))
        }
    }
}

fn finished() -> JsValue {
    coded_error("INVALID_ARGUMENT", "this loader has already finished")
}

/// The test suite's generate option: panic once this many tokens are out,
/// so that it can check that a panic inside a generation is contained (in a
/// Worker, on threads).
const PANIC_FOR_TESTING: &str = "__panicForTesting";

/// Reads the options object; a misspelt key is an error, not a silent
/// default. Also the tokens after which to panic, for the test suite.
fn read_generate_options(value: JsValue) -> Result<(GenerateOptions, Option<usize>), JsValue> {
    let mut panic_after = None;
    if value.is_object() {
        let keys = js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>());
        let keys: Vec<String> = keys.iter().map(|k| k.as_string().unwrap_or_default()).collect();
        if keys.iter().any(|k| k == PANIC_FOR_TESTING) {
            panic_after = js_sys::Reflect::get(&value, &PANIC_FOR_TESTING.into())?.as_f64().map(|n| n as usize);
        }
        JsGenerateOptions::check_keys(keys.into_iter().filter(|k| k != PANIC_FOR_TESTING)).map_err(js_error)?;
    }
    let options = from_js::<JsGenerateOptions>(value, "generate options")?.into_options().map_err(js_error)?;
    Ok((options, panic_after))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsStats {
    prompt_tokens: usize,
    reused_tokens: usize,
    generated_tokens: usize,
    prefill_tokens_per_second: f64,
    decode_tokens_per_second: f64,
    time_to_first_token_ms: f64,
    constraint_ms: f64,
    finish_reason: Option<crate::session::FinishReason>,
}

/// What `next` returns after a batch of the prompt, told from a piece by its key.
#[derive(Serialize)]
struct JsPrefill {
    prefill: crate::session::Progress,
}

#[derive(Serialize)]
struct JsPiece {
    token: u32,
    text: String,
}

#[derive(Serialize)]
struct JsCandidate {
    id: u32,
    logit: f32,
    logprob: f32,
}

#[derive(Serialize)]
struct JsScoredToken {
    id: u32,
    logit: f32,
    logprob: f32,
    top: Vec<JsCandidate>,
}

#[derive(Serialize)]
struct JsScore {
    tokens: Vec<JsScoredToken>,
    perplexity: f64,
}

/// A loaded model. One generation runs at a time.
#[wasm_bindgen]
pub struct Engine {
    session: AnySession,
    generation: Option<GenerationState>,
    /// [`PANIC_FOR_TESTING`]: the generated tokens after which `next` panics.
    panic_after: Option<usize>,
    /// Whether the model's file is in the download cache (a URL load that
    /// stored it or came from it).
    cached: bool,
}

impl Engine {
    /// Marks the engine's file as held in the download cache.
    pub(crate) fn in_cache(mut self) -> Engine {
        self.cached = true;
        self
    }
}

#[wasm_bindgen]
impl Engine {
    /// Architecture, parameters, quantization, context length, KV cache
    /// size, and whether the file is cached.
    pub fn info(&self) -> JsValue {
        let info = to_js(on!(&self.session, s => s.info()));
        let _ = js_sys::Reflect::set(&info, &"cached".into(), &self.cached.into());
        info
    }

    /// What runs the model: `cpu`, or the GPU adapter's name.
    pub fn device(&self) -> String {
        match &self.session {
            AnySession::Cpu(_) => "cpu".into(),
            #[cfg(feature = "gpu")]
            AnySession::Gpu(_, name) => name.clone(),
        }
    }

    /// Figures of the last request.
    pub fn stats(&self) -> JsValue {
        let s = on!(&self.session, s => s.stats());
        to_js(&JsStats {
            prompt_tokens: s.prompt_tokens,
            reused_tokens: s.reused_tokens,
            generated_tokens: s.generated_tokens,
            prefill_tokens_per_second: s.prefill_tokens_per_second(),
            decode_tokens_per_second: s.decode_tokens_per_second(),
            time_to_first_token_ms: s.time_to_first_token_ms,
            constraint_ms: s.constraint_ms,
            finish_reason: s.finish_reason,
        })
    }

    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, JsValue> {
        on!(&self.session, s => s.tokenize(text, add_special)).map_err(js_error)
    }

    pub fn detokenize(&self, ids: &[u32]) -> String {
        on!(&self.session, s => s.detokenize(ids))
    }

    /// A chat turn that offers `tools` under OpenAI's `toolChoice`
    /// ([`Session::tool_chat_tokens`]): `{tokens, responseFormat,
    /// renderControlTokens}` (whether the reply's control tokens must show
    /// for its calls to be read), the
    /// format (or null) in the shape `start` takes.
    #[wasm_bindgen(js_name = toolChatTokens)]
    pub fn tool_chat_tokens(
        &self,
        messages: JsValue,
        tools: JsValue,
        tool_choice: JsValue,
    ) -> Result<JsValue, JsValue> {
        let messages: Vec<Message> = from_js(messages, "messages")?;
        let tools: serde_json::Value = from_js(tools, "tools")?;
        let choice: Option<serde_json::Value> = if tool_choice.is_undefined() || tool_choice.is_null() {
            None
        } else {
            Some(from_js(tool_choice, "toolChoice")?)
        };
        let choice = ToolChoice::from_json(choice.as_ref()).map_err(js_error)?;
        let (tokens, format) =
            on!(&self.session, s => s.tool_chat_tokens(&messages, &tools, &choice)).map_err(js_error)?;
        let render = on!(&self.session, s => s.tool_syntax()).map_err(js_error)?.renders_control_tokens();
        Ok(to_js(&serde_json::json!({
            "tokens": tokens,
            "responseFormat": format.as_ref().map(ResponseFormat::to_json),
            "renderControlTokens": render,
        })))
    }

    /// The text and the tool calls of a reply to a turn that offered tools
    /// ([`Session::read_tool_calls`]): `{content, toolCalls}`, the calls in
    /// OpenAI's shape with ids `call_0`..., `arguments` the JSON text the
    /// model wrote. `partial`: the reply goes on, and this reading is
    /// extended by the next ([`crate::chat::tools::ToolSyntax::read`]).
    #[wasm_bindgen(js_name = parseToolCalls)]
    pub fn parse_tool_calls(&self, text: &str, partial: bool) -> Result<JsValue, JsValue> {
        let reading = on!(&self.session, s => s.read_tool_calls(text, !partial)).map_err(js_error)?;
        let calls: Vec<serde_json::Value> = reading
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| serde_json::json!({ "id": format!("call_{i}"), "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
            .collect();
        Ok(to_js(&serde_json::json!({ "content": reading.content, "toolCalls": calls })))
    }

    /// The tokens of a conversation (`[{role, content, tool_calls,
    /// tool_call_id, name}]`, OpenAI's shape) rendered with the model's chat
    /// template, ready to generate the assistant's reply; `tools` (OpenAI
    /// tool objects, or undefined) go to the template as given.
    #[wasm_bindgen(js_name = chatTokens)]
    pub fn chat_tokens(&self, messages: JsValue, tools: JsValue) -> Result<Vec<u32>, JsValue> {
        let messages: Vec<Message> = from_js(messages, "messages")?;
        let tools: Option<serde_json::Value> =
            if tools.is_undefined() || tools.is_null() { None } else { Some(from_js(tools, "tools")?) };
        on!(&self.session, s => s.chat_tokens_with(&messages, tools.as_ref())).map_err(js_error)
    }

    /// Checks `prompt` and starts a generation, whose prompt `next` then
    /// runs a batch a call, so that the glue can report progress and stop
    /// between batches, before it yields the pieces. Fails with `BUSY` while
    /// another generation runs. `start`, `next` and `score` return at once on
    /// the CPU; on the GPU, whose results come back through the browser's
    /// event loop, the glue calls their `Async` twins (a pending call holds
    /// the engine, so the CPU keeps the plain ones: `stats` or `cancel` may
    /// come between its calls).
    pub fn start(&mut self, prompt: &[u32], options: JsValue) -> Result<(), JsValue> {
        ready(self.start_async(prompt.to_vec(), options))?
    }

    #[wasm_bindgen(js_name = startAsync)]
    pub async fn start_async(&mut self, prompt: Vec<u32>, options: JsValue) -> Result<(), JsValue> {
        self.check_idle()?;
        let (options, panic_after) = read_generate_options(options)?;
        let g = on!(&mut self.session, s => s.begin(&prompt, options)).map_err(js_error)?;
        self.generation = Some(g);
        self.panic_after = panic_after;
        Ok(())
    }

    /// What the running generation did next: `{prefill: {done, total}}`
    /// after a batch of its prompt, then its pieces `{token, text}`, then
    /// `null` once it has finished.
    #[wasm_bindgen(js_name = next)]
    pub fn next_piece(&mut self) -> Result<JsValue, JsValue> {
        ready(self.next_async())?
    }

    #[wasm_bindgen(js_name = nextAsync)]
    pub async fn next_async(&mut self) -> Result<JsValue, JsValue> {
        let Some(g) = self.generation.as_mut() else { return Ok(JsValue::NULL) };
        if let Some(n) = self.panic_after {
            if on!(&self.session, s => s.stats().generated_tokens) >= n {
                panic!("deliberate panic after {n} tokens");
            }
        }
        if let Some(prefill) = on!(&mut self.session, s => s.prefill_async(g).await) {
            return Ok(to_js(&JsPrefill { prefill }));
        }
        match on!(&mut self.session, s => s.step_async(g).await) {
            Ok(Some(p)) => Ok(to_js(&JsPiece { token: p.token, text: p.text })),
            Ok(None) => {
                self.generation = None;
                Ok(JsValue::NULL)
            }
            Err(e) => {
                self.generation = None;
                Err(js_error(e))
            }
        }
    }

    /// Ends the running generation (an abort); the engine stays usable and
    /// keeps the cache of what was computed.
    pub fn cancel(&mut self) {
        self.generation = None;
    }

    fn check_idle(&self) -> Result<(), JsValue> {
        match &self.generation {
            Some(g) if !g.is_finished() => {
                Err(coded_error("BUSY", "a generation is running; wait for it to finish or cancel it first"))
            }
            _ => Ok(()),
        }
    }

    /// Teacher-forced scoring of `tokens[n_prompt..]`; see [`Session::score`].
    pub fn score(&mut self, tokens: &[u32], n_prompt: usize, top_k: usize) -> Result<JsValue, JsValue> {
        ready(self.score_async(tokens.to_vec(), n_prompt, top_k))?
    }

    #[wasm_bindgen(js_name = scoreAsync)]
    pub async fn score_async(&mut self, tokens: Vec<u32>, n_prompt: usize, top_k: usize) -> Result<JsValue, JsValue> {
        self.check_idle()?;
        let score = on!(&mut self.session, s => s.score_async(&tokens, n_prompt, top_k).await).map_err(js_error)?;
        let candidate = |c: &crate::session::Candidate| JsCandidate { id: c.id, logit: c.logit, logprob: c.logprob };
        Ok(to_js(&JsScore {
            perplexity: score.perplexity,
            tokens: score
                .tokens
                .iter()
                .map(|t| JsScoredToken {
                    id: t.id,
                    logit: t.logit,
                    logprob: t.logprob,
                    top: t.top.iter().map(candidate).collect(),
                })
                .collect(),
        }))
    }
}
