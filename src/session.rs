//! The session: a loaded model with its tokenizer, chat template and KV cache,
//! answering generate, chat and score requests.
//!
//! The KV cache outlives requests: a request whose tokens start with what the
//! cache already holds (the next turn of a chat, say) prefills only the rest,
//! unless it drops more of the cache than a sliding-window layer's ring keeps
//! (more than a batch): then it starts over.

use crate::chat::tools::{Reading, Tool, ToolChoice, ToolSyntax};
use crate::chat::{self, ChatTemplate, Message, ToolCall};
use crate::constraint::{Constraint, Grammars, ResponseFormat};
use crate::cpu::Cpu;
use crate::gguf::{GgufSink, GgufStream, Header, TensorInfo};
use crate::model::{cache_bytes, Architecture, Backend, Builder, Hparams, Logits};
use crate::sampler::{Sampler, SamplerConfig, StopStrings};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{Error, Result};
use std::sync::Arc;
use web_time::Instant;

/// Longest batch a forward pass takes unless [`LoadOptions::max_batch`] says
/// otherwise; longer prompts go in several passes, which bounds the
/// activation memory and the cache of sliding-window layers. It is also the
/// step of a prompt's progress ([`Session::prefill`]): a batch is the unit
/// the cache grows by, and a smaller one for finer progress would cost
/// prefill speed (each pass rereads every weight).
const BATCH: usize = 256;
/// Most bytes of logits a scoring pass makes: batches are cut shorter where a
/// large vocabulary would pass it (64 rows of Gemma 3's 262k), so that the
/// logits fit in half of the 128 MiB that WebGPU guarantees a binding, and
/// in a wasm heap.
const LOGIT_BYTES: usize = 64 << 20;
/// The context when neither the caller nor a smaller model limit says otherwise.
const DEFAULT_CONTEXT: usize = 4096;

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Positions the KV cache holds; default min(model context, 4096).
    pub context_length: Option<usize>,
    /// Tokens a forward pass takes at most; default 256. Smaller batches
    /// need less activation memory and a smaller cache on sliding-window
    /// layers (window + batch - 1 positions), and prefill more slowly.
    pub max_batch: Option<usize>,
    /// A chat template (Jinja) to use instead of the file's: for a GGUF
    /// without one, or with an older one than its model's published
    /// template. A template that does not compile fails the load.
    pub chat_template: Option<String>,
}

impl LoadOptions {
    /// The context and the batch limit asked for, or their defaults.
    fn sizes(&self, h: &Hparams) -> Result<(usize, usize)> {
        let context = self.context_length.unwrap_or(h.context_length.min(DEFAULT_CONTEXT));
        if context == 0 {
            return Err(Error::InvalidArgument("context length 0".into()));
        }
        if let Some(max) = h.max_context.filter(|&max| context > max) {
            return Err(Error::InvalidArgument(format!(
                "a context of {context} positions: this {} model has learned positions for {max}",
                h.arch
            )));
        }
        match self.max_batch.unwrap_or(BATCH) {
            0 => Err(Error::InvalidArgument("a batch limit of 0 tokens".into())),
            batch => Ok((context, batch)),
        }
    }
}

/// What a loaded model is.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub architecture: String,
    pub name: Option<String>,
    pub parameters: u64,
    pub file_size: u64,
    /// The most common weight type, e.g. "Q4_1".
    pub quantization: String,
    pub context_length: usize,
    pub trained_context_length: usize,
    pub vocab_size: usize,
    pub kv_cache_bytes: usize,
    /// Bytes of weights one decode step reads: every matrix, the token
    /// embedding table only where it is also the output projection (one row
    /// of it otherwise). What `device: 'auto'` weighs the CPU's speed by.
    pub decode_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Tokens to generate at most (an end-of-generation token counts).
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Generation stops before any of these strings; they are not emitted.
    pub stop: Vec<String>,
    /// What the text must be (JSON of a schema, a regex's match, a
    /// grammar's sentence); `None`: free text.
    pub response_format: Option<ResponseFormat>,
    /// Control tokens show in the pieces' text (`<|im_end|>`, Mistral's
    /// `[TOOL_CALLS]`), as a tool-call syntax that uses them needs.
    pub render_control_tokens: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            stop: Vec::new(),
            response_format: None,
            render_control_tokens: false,
        }
    }
}

/// One generated token and the text it completes. `text` can be empty while
/// a multi-byte character or a possible stop string is incomplete.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub token: u32,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// A stop string appeared.
    Stop,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context is full.
    ContextFull,
}

/// How far a generation's prompt is in the KV cache: `done` of its `total`
/// tokens, a prefix reused from the cache included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Figures of the last request.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already cached.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub time_to_first_token_ms: f64,
    /// Of `decode_ms`, the time spent computing the response format's masks.
    pub constraint_ms: f64,
    pub finish_reason: Option<FinishReason>,
}

impl Stats {
    /// Prompt tokens actually computed per second.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens - self.reused_tokens, self.prefill_ms)
    }

    /// Tokens per second after the first.
    pub fn decode_tokens_per_second(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.decode_ms)
    }
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// A candidate token at a scored position.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    pub logprob: f32,
}

/// The model's view of one given token.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredToken {
    pub id: u32,
    pub logit: f32,
    pub logprob: f32,
    /// The `top_k` most likely tokens at this position, most likely first.
    pub top: Vec<Candidate>,
}

#[derive(Clone, Debug)]
pub struct Score {
    pub tokens: Vec<ScoredToken>,
    /// exp of the mean negative log-probability of the scored tokens.
    pub perplexity: f64,
}

/// Model, backend and KV cache, and the tokens the cache holds.
struct Engine<B: Backend> {
    model: Architecture<B>,
    backend: B,
    cache: B::Cache,
    context: usize,
    /// Tokens a forward pass takes at most: the cache's rings hold that many.
    batch: usize,
    /// Cached positions a request may drop and reuse the rest
    /// ([`Hparams::cache_rewind`]).
    rewind: usize,
    /// The tokens whose keys and values are in the cache, in order.
    cached: Vec<u32>,
}

impl<B: Backend> Engine<B> {
    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let n_vocab = self.model.hparams().n_vocab;
        match tokens.iter().find(|&&t| t as usize >= n_vocab) {
            Some(t) => Err(Error::InvalidArgument(format!("token id {t} is outside the vocabulary of {n_vocab}"))),
            None => Ok(()),
        }
    }

    /// How many leading `tokens` the cache can keep, leaving at least
    /// `recompute` to run so that their logits come out; none where that
    /// drops more cached positions than the rings allow.
    fn reusable(&self, tokens: &[u32], recompute: usize) -> usize {
        let common = self.cached.iter().zip(tokens).take_while(|(a, b)| a == b).count();
        let keep = common.min(tokens.len().saturating_sub(recompute));
        if self.cached.len() - keep > self.rewind {
            0
        } else {
            keep
        }
    }

    /// Checks `tokens` before running them from position `from`, and drops
    /// what the cache holds from there.
    fn begin(&mut self, tokens: &[u32], from: usize) -> Result<()> {
        if tokens.len() > self.context {
            return Err(Error::ContextOverflow { needed: tokens.len(), context: self.context });
        }
        self.check_tokens(tokens)?;
        self.cached.truncate(from);
        Ok(())
    }

    /// Runs `tokens` from position `from`, in batches, for the logits of
    /// positions `first..`; `each` gets the position of each batch's first
    /// row of logits, and those logits (at most [`LOGIT_BYTES`] a batch).
    async fn run(
        &mut self,
        tokens: &[u32],
        from: usize,
        first: usize,
        mut each: impl FnMut(usize, Vec<f32>),
    ) -> Result<()> {
        self.begin(tokens, from)?;
        let max_rows = (LOGIT_BYTES / (4 * self.model.hparams().n_vocab)).max(1);
        let mut pos = from;
        while pos < tokens.len() {
            let end = (pos + self.batch).min(tokens.len()).min(pos.max(first) + max_rows);
            let out = self.batch(tokens, pos, end, Logits::From(first.saturating_sub(pos)));
            if end > first {
                each(pos.max(first), self.backend.read(&out).get().await);
            }
            pos = end;
        }
        Ok(())
    }

    /// Runs `tokens[pos..end]` (at most a batch): its logits, left where the
    /// backend keeps them.
    fn batch(&mut self, tokens: &[u32], pos: usize, end: usize, logits: Logits) -> B::Act {
        let batch = &tokens[pos..end];
        let out = self.model.forward(&mut self.backend, &mut self.cache, batch, pos, logits);
        self.cached.extend_from_slice(batch);
        out
    }

    /// What comes after the last token fed: its logits, or only the greedy
    /// token when that is all the sampler would take from them.
    async fn next(&mut self, logits: B::Act, greedy: bool) -> Next {
        if greedy {
            Next::Token(self.backend.argmax(&logits).get().await)
        } else {
            Next::Logits(self.backend.read(&logits).get().await)
        }
    }

    /// Checks a prompt and drops what the cache holds past the prefix it
    /// keeps of it; how many tokens that prefix is.
    fn begin_prefill(&mut self, tokens: &[u32]) -> Result<usize> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("the prompt has no tokens".into()));
        }
        let reused = self.reusable(tokens, 1);
        self.begin(tokens, reused)?;
        Ok(reused)
    }

    /// Runs the batch of `tokens` from `pos` (where the cache ends) and
    /// waits for it: where it ends, and after the last one what comes next.
    async fn prefill_batch(&mut self, tokens: &[u32], pos: usize, greedy: bool) -> (usize, Option<Next>) {
        let end = (pos + self.batch).min(tokens.len());
        let out = self.batch(tokens, pos, end, Logits::Last);
        if end == tokens.len() {
            return (end, Some(self.next(out, greedy).await));
        }
        // Four bytes back from a GPU once the batch has run, so that the
        // progress reported is the work done, and a caller that stops here
        // stops the work rather than its queueing.
        self.backend.argmax(&out).get().await;
        (end, None)
    }

    /// Feeds one more token; what comes next, or `None` when the context is
    /// full.
    async fn step(&mut self, token: u32, greedy: bool) -> Option<Next> {
        let pos = self.cached.len();
        if pos >= self.context {
            return None;
        }
        let logits = self.model.forward(&mut self.backend, &mut self.cache, &[token], pos, Logits::Last);
        self.cached.push(token);
        Some(self.next(logits, greedy).await)
    }
}

/// What the model said after the last token fed.
enum Next {
    Logits(Vec<f32>),
    /// The greedy token, when the sampler would take nothing else.
    Token(u32),
}

/// Runs a future that completes on its first poll, as every call into a
/// backend whose reads are ready at once does (the CPU; a native GPU).
///
/// Panics on a browser's GPU, whose reads wait for the event loop: there the
/// `_async` methods are the API.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("this backend reads back asynchronously: call the session's `_async` methods"),
    }
}

/// A model ready to answer requests.
pub struct Session<B: Backend = Cpu> {
    engine: Engine<B>,
    tokenizer: Arc<Tokenizer>,
    /// The parsed chat template, or why there is none.
    template: std::result::Result<ChatTemplate, String>,
    info: ModelInfo,
    stats: Stats,
    /// The vocabulary as response formats need it, built on first use.
    grammars: Option<Grammars>,
}

impl Session<Cpu> {
    /// Loads a GGUF file from disk onto the CPU backend.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_path(path: impl AsRef<std::path::Path>, options: LoadOptions) -> Result<Self> {
        Session::load_path_on(Cpu::default(), path, options)
    }

    /// Loads a whole GGUF file held in memory onto the CPU backend.
    pub fn load_bytes(bytes: &[u8], options: LoadOptions) -> Result<Self> {
        let mut loader = Loader::new(Cpu::default(), bytes.len() as u64, options);
        loader.push(bytes)?;
        loader.finish()
    }
}

impl<B: Backend> Session<B> {
    /// Loads a GGUF file from disk onto `backend`, streaming it in chunks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_path_on(backend: B, path: impl AsRef<std::path::Path>, options: LoadOptions) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let mut file = std::fs::File::open(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let mut loader = Loader::new(backend, file.metadata()?.len(), options);
        let mut chunk = vec![0u8; 4 << 20];
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            loader.push(&chunk[..n])?;
        }
        loader.finish()
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn hparams(&self) -> &Hparams {
        self.engine.model.hparams()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Figures of the last request.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Tokenizes text the way a prompt is tokenized: special-token text is
    /// parsed, and BOS/EOS are added as the model's metadata says when
    /// `add_special` is true.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, add_special, true)
    }

    /// Text of `ids`, special tokens rendered; invalid UTF-8 becomes U+FFFD.
    pub fn detokenize(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.tokenizer.decode(ids, true)).into_owned()
    }

    /// Renders a conversation with the model's chat template and tokenizes it.
    pub fn chat_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.chat_tokens_with(messages, None)
    }

    /// [`Session::chat_tokens`] offering the model `tools` (a list of OpenAI
    /// tool objects; see [`ChatTemplate::render_with`]).
    pub fn chat_tokens_with(&self, messages: &[Message], tools: Option<&serde_json::Value>) -> Result<Vec<u32>> {
        self.render_tokens(self.template()?, messages, tools)
    }

    /// A chat turn that offers `tools` (OpenAI tool objects) under
    /// `choice`: its prompt, the tools offered as the model's template
    /// offers them ([`ToolSyntax::messages`]), and the response format
    /// that holds the reply to `choice` ([`ToolSyntax::response_format`]).
    /// [`Session::parse_tool_calls`] reads the reply.
    pub fn tool_chat_tokens(
        &self,
        messages: &[Message],
        tools: &serde_json::Value,
        choice: &ToolChoice,
    ) -> Result<(Vec<u32>, Option<ResponseFormat>)> {
        let template = self.template()?;
        let syntax = template.tool_syntax();
        let list = Tool::list_from_json(tools)?;
        let messages = syntax.messages(messages, &list, choice);
        let offered =
            (syntax != ToolSyntax::Generic && *choice != ToolChoice::None && !list.is_empty()).then_some(tools);
        // A control token by its text: the one id that text tokenizes to as special text, if it is one.
        let control = |text: &str| match self.tokenizer.encode(text, false, true).ok()?.as_slice() {
            &[id] if self.tokenizer.token_text(id) == Some(text) => Some(id),
            _ => None,
        };
        Ok((self.render_tokens(template, &messages, offered)?, syntax.response_format(&list, choice, &control)?))
    }

    /// How the chat template's model writes tool calls.
    pub fn tool_syntax(&self) -> Result<ToolSyntax> {
        Ok(self.template()?.tool_syntax())
    }

    /// The text and the tool calls of a reply to a turn that offered tools,
    /// read in the syntax of the model's template.
    pub fn parse_tool_calls(&self, reply: &str) -> Result<(String, Vec<ToolCall>)> {
        Ok(self.template()?.tool_syntax().parse(reply))
    }

    /// A reply to a turn that offered tools as it reads so far, for
    /// streaming its calls ([`ToolSyntax::read`]); `done` once it is whole.
    pub fn read_tool_calls(&self, reply: &str, done: bool) -> Result<Reading> {
        Ok(self.template()?.tool_syntax().read(reply, done))
    }

    fn template(&self) -> Result<&ChatTemplate> {
        self.template.as_ref().map_err(|why| Error::ChatTemplate(why.clone()))
    }

    fn render_tokens(
        &self,
        template: &ChatTemplate,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
    ) -> Result<Vec<u32>> {
        let text = template.render_with(messages, tools, true)?;
        let mut ids = self.tokenizer.encode(&text, false, true)?;
        // Templates often write the BOS text themselves; never add a second one.
        if let Some(bos) = self.tokenizer.bos_id().filter(|_| self.tokenizer.add_bos()) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Generates a continuation of `text` (tokenized with BOS as the model wants).
    pub fn generate_text(&mut self, text: &str, options: GenerateOptions) -> Result<Generation<'_, B>> {
        let ids = self.tokenize(text, true)?;
        self.generate(&ids, options)
    }

    /// Generates the assistant's reply to a conversation.
    pub fn chat(&mut self, messages: &[Message], options: GenerateOptions) -> Result<Generation<'_, B>> {
        let ids = self.chat_tokens(messages)?;
        self.generate(&ids, options)
    }

    /// Generates a continuation of `prompt`. The prompt is prefilled now (so a
    /// prompt past the context fails here); tokens come from the iterator.
    pub fn generate(&mut self, prompt: &[u32], options: GenerateOptions) -> Result<Generation<'_, B>> {
        let state = self.start(prompt, options)?;
        Ok(Generation { session: self, state, error: None })
    }

    /// Prefills `prompt` and returns the state that [`Session::step`] advances:
    /// [`Session::generate`] without the borrow.
    pub fn start(&mut self, prompt: &[u32], options: GenerateOptions) -> Result<GenerationState> {
        now(self.start_async(prompt, options))
    }

    /// [`Session::start`] on any backend.
    pub async fn start_async(&mut self, prompt: &[u32], options: GenerateOptions) -> Result<GenerationState> {
        let mut g = self.begin(prompt, options)?;
        while self.prefill_async(&mut g).await.is_some() {}
        Ok(g)
    }

    /// Checks `prompt` and returns a generation whose prompt is not run yet:
    /// [`Session::prefill`] runs it a batch at a time, so that a caller can
    /// report progress and stop between batches (the cache then holds the
    /// batches that ran, which a later request may reuse). No other request
    /// may run on the session until the generation ends or is dropped.
    pub fn begin(&mut self, prompt: &[u32], options: GenerateOptions) -> Result<GenerationState> {
        let start = Instant::now();
        let constraint = match &options.response_format {
            Some(format) => Some(self.grammars()?.compile(format)?),
            None => None,
        };
        let reused = self.engine.begin_prefill(prompt)?;
        self.stats = Stats { prompt_tokens: prompt.len(), reused_tokens: reused, ..Stats::default() };
        Ok(GenerationState {
            decoder: StreamDecoder::new(self.tokenizer.clone(), options.render_control_tokens),
            sampler: Sampler::new(options.sampler),
            stops: StopStrings::new(options.stop),
            constraint,
            max_tokens: options.max_tokens,
            prompt: prompt.to_vec(),
            prefilled: reused,
            next: None,
            pending: None,
            start,
            first_token_at: None,
        })
    }

    fn grammars(&mut self) -> Result<&Grammars> {
        if self.grammars.is_none() {
            self.grammars = Some(Grammars::new(self.tokenizer.clone())?);
        }
        Ok(self.grammars.as_ref().expect("just built"))
    }

    /// Runs the next batch of a generation's prompt: how far the prompt has
    /// got, or `None` once it is all in.
    pub fn prefill(&mut self, g: &mut GenerationState) -> Option<Progress> {
        now(self.prefill_async(g))
    }

    /// [`Session::prefill`] on any backend.
    pub async fn prefill_async(&mut self, g: &mut GenerationState) -> Option<Progress> {
        if g.prompt.is_empty() {
            return None;
        }
        let start = Instant::now();
        let (end, next) = self.engine.prefill_batch(&g.prompt, g.prefilled, g.greedy()).await;
        self.stats.prefill_ms += ms_since(start);
        let progress = Progress { done: end, total: g.prompt.len() };
        g.prefilled = end;
        if next.is_some() {
            g.next = next;
            g.prompt = Vec::new();
        }
        Some(progress)
    }

    /// The next piece of a generation, or `None` once it has finished. Every
    /// sampled token gives one piece; the end-of-generation token's piece
    /// carries only text that was held back. What is left of the prompt
    /// runs first. Fails only where a response format cannot go on (a
    /// grammar past llguidance's limits); the generation has then ended.
    pub fn step(&mut self, g: &mut GenerationState) -> Result<Option<Piece>> {
        now(self.step_async(g))
    }

    /// [`Session::step`] on any backend.
    pub async fn step_async(&mut self, g: &mut GenerationState) -> Result<Option<Piece>> {
        while self.prefill_async(g).await.is_some() {}
        let Some(mut next) = g.next.take() else { return Ok(None) };
        if let Some(token) = g.pending.take() {
            match self.engine.step(token, g.greedy()).await {
                Some(n) => next = n,
                None => {
                    let text = g.finish(&mut self.stats, FinishReason::ContextFull);
                    return Ok((!text.is_empty()).then_some(Piece { token, text }));
                }
            }
        }
        let token = match next {
            Next::Token(t) => t,
            Next::Logits(mut logits) => {
                if let Some(c) = &mut g.constraint {
                    let start = Instant::now();
                    c.mask(&mut logits)?;
                    self.stats.constraint_ms += ms_since(start);
                }
                g.sampler.sample(&mut logits, &self.engine.cached)
            }
        };
        if let Some(c) = &mut g.constraint {
            let start = Instant::now();
            c.accept(token)?;
            self.stats.constraint_ms += ms_since(start);
        }
        let now = Instant::now();
        let first = *g.first_token_at.get_or_insert(now);
        let stats = &mut self.stats;
        stats.generated_tokens += 1;
        stats.time_to_first_token_ms = (first - g.start).as_secs_f64() * 1000.0;
        stats.decode_ms = (now - first).as_secs_f64() * 1000.0;

        if self.tokenizer.is_eog(token) {
            let text = g.finish(stats, FinishReason::EndOfGeneration);
            return Ok(Some(Piece { token, text }));
        }
        let (mut text, stopped) = g.stops.push(&g.decoder.push(token));
        if stopped {
            g.finish(stats, FinishReason::Stop);
        } else if g.constraint.as_ref().is_some_and(Constraint::is_complete) {
            // Nothing may follow but the end: no pass to sample it.
            text.push_str(&g.finish(stats, FinishReason::EndOfGeneration));
        } else if stats.generated_tokens >= g.max_tokens {
            text.push_str(&g.finish(stats, FinishReason::MaxTokens));
        } else {
            // Not fed yet: the next step feeds it, so a generation that ends
            // here runs no forward pass it does not need.
            g.next = Some(Next::Token(token));
            g.pending = Some(token);
        }
        Ok(Some(Piece { token, text }))
    }

    /// Teacher-forced scoring: for every position from `n_prompt` on, the
    /// model's log-probability of the given token after the ones before it,
    /// with the `top_k` alternatives.
    pub fn score(&mut self, tokens: &[u32], n_prompt: usize, top_k: usize) -> Result<Score> {
        now(self.score_async(tokens, n_prompt, top_k))
    }

    /// [`Session::score`] on any backend.
    pub async fn score_async(&mut self, tokens: &[u32], n_prompt: usize, top_k: usize) -> Result<Score> {
        if n_prompt == 0 || n_prompt >= tokens.len() {
            return Err(Error::InvalidArgument(format!(
                "scoring needs at least one prompt token and one token to score (got {n_prompt} of {})",
                tokens.len()
            )));
        }
        let start = Instant::now();
        let n_vocab = self.engine.model.hparams().n_vocab;
        // Logits are needed from position n_prompt - 1 on.
        let reused = self.engine.reusable(tokens, tokens.len() - (n_prompt - 1));
        let mut scored = Vec::with_capacity(tokens.len() - n_prompt);
        // The last token is only a target: it is never fed.
        let inputs = &tokens[..tokens.len() - 1];
        self.engine
            .run(inputs, reused, n_prompt - 1, |pos, logits| {
                for (i, row) in logits.chunks_exact(n_vocab).enumerate() {
                    scored.push(score_row(row, tokens[pos + i + 1], top_k));
                }
            })
            .await?;
        let nll: f64 = scored.iter().map(|s: &ScoredToken| -(s.logprob as f64)).sum();
        self.stats = Stats {
            prompt_tokens: inputs.len(),
            reused_tokens: reused,
            prefill_ms: ms_since(start),
            ..Stats::default()
        };
        Ok(Score { perplexity: (nll / scored.len() as f64).exp(), tokens: scored })
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Log-softmax of one row at `target`, and its top `k`.
fn score_row(logits: &[f32], target: u32, k: usize) -> ScoredToken {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let log_z = max + sum.ln() as f32;
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(ids.len());
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    if k > 0 && k < ids.len() {
        ids.select_nth_unstable_by(k - 1, by_logit);
    }
    ids.truncate(k);
    ids.sort_by(by_logit);
    let candidate = |id: u32| Candidate { id, logit: logits[id as usize], logprob: logits[id as usize] - log_z };
    let t = candidate(target);
    ScoredToken { id: t.id, logit: t.logit, logprob: t.logprob, top: ids.into_iter().map(candidate).collect() }
}

/// A running generation: an iterator of pieces. Dropping it ends the
/// generation; the session stays usable and keeps what was computed.
pub struct Generation<'s, B: Backend> {
    session: &'s mut Session<B>,
    state: GenerationState,
    error: Option<Error>,
}

impl<B: Backend> Generation<'_, B> {
    /// Why the generation ended, once it has.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.session.stats.finish_reason
    }

    /// What ended the generation early, if a step failed ([`Session::step`]).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

impl<B: Backend> Iterator for Generation<'_, B> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        self.session.step(&mut self.state).unwrap_or_else(|e| {
            self.error = Some(e);
            None
        })
    }
}

/// Where a generation stands between two tokens. It owns everything it needs
/// so that a caller that cannot hold a borrow of the session (the JavaScript
/// API, across awaits) can keep it and call [`Session::step`].
pub struct GenerationState {
    decoder: StreamDecoder<Arc<Tokenizer>>,
    sampler: Sampler,
    stops: StopStrings,
    constraint: Option<Constraint>,
    max_tokens: usize,
    /// The prompt while it is being prefilled; empty once it is all in.
    prompt: Vec<u32>,
    /// Prompt tokens in the cache.
    prefilled: usize,
    /// What to take the next token from; `None` while the prompt is
    /// prefilled and once finished.
    next: Option<Next>,
    /// The last sampled token, not yet fed to the model.
    pending: Option<u32>,
    start: Instant,
    first_token_at: Option<Instant>,
}

impl GenerationState {
    pub fn is_finished(&self) -> bool {
        self.next.is_none() && self.prompt.is_empty()
    }

    /// Whether the backend may pick the token itself (the argmax of the raw
    /// logits) instead of handing the logits over.
    fn greedy(&self) -> bool {
        self.sampler.is_greedy() && self.constraint.is_none()
    }

    /// Ends the generation; returns the text that was held back.
    fn finish(&mut self, stats: &mut Stats, reason: FinishReason) -> String {
        self.next = None;
        stats.finish_reason = Some(reason);
        let tail = self.decoder.finish();
        let (mut text, _) = self.stops.push(&tail);
        text.push_str(&self.stops.flush());
        text
    }
}

/// Loads a model from a GGUF file pushed in chunks of any size: the file is
/// never held whole, each tensor's rows go to the backend as soon as they are in.
pub struct Loader<B: Backend> {
    stream: GgufStream,
    sink: LoadSink<B>,
}

struct LoadSink<B: Backend> {
    backend: B,
    options: LoadOptions,
    builder: Option<Builder<B>>,
    tokenizer: Option<Tokenizer>,
    template: Option<std::result::Result<ChatTemplate, String>>,
}

impl<B: Backend> Loader<B> {
    /// `file_len` is the size of the whole file.
    pub fn new(backend: B, file_len: u64, options: LoadOptions) -> Self {
        Loader {
            stream: GgufStream::new(file_len),
            sink: LoadSink { backend, options, builder: None, tokenizer: None, template: None },
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.stream.position()
    }

    /// Whether the header has been read and checked (the backend's
    /// [`Backend::check_fits`] included).
    pub fn has_header(&self) -> bool {
        self.sink.builder.is_some()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.stream.push(chunk, &mut self.sink)
    }

    /// Reads and checks the header from what has been pushed, if it is all
    /// there (see [`GgufStream::try_header`]); true once it has been.
    pub fn try_header(&mut self) -> Result<bool> {
        self.stream.try_header(&mut self.sink)
    }

    pub fn finish(self) -> Result<Session<B>> {
        let header = self.stream.finish()?;
        let LoadSink { mut backend, options, builder, tokenizer, template } = self.sink;
        let (builder, tokenizer, template) = match (builder, tokenizer, template) {
            (Some(b), Some(t), Some(c)) => (b, t, c),
            _ => unreachable!("a finished stream has called header()"),
        };
        let (context, batch) = options.sizes(builder.hparams())?;
        let model = builder.finish(context)?;
        let h = model.hparams();
        let positions = h.cache_positions(context, batch);
        let kv_cache_bytes = cache_bytes(&positions, model.kv_dim()).ok_or_else(|| {
            Error::OutOfMemory(format!("a KV cache of {context} positions is more than this device can address"))
        })?;
        let cache = backend.new_cache(&positions, model.kv_dim())?;
        let info = model_info(&header, h, context, kv_cache_bytes);
        let rewind = h.cache_rewind(context, batch);
        Ok(Session {
            engine: Engine { model, backend, cache, context, batch, rewind, cached: Vec::new() },
            tokenizer: Arc::new(tokenizer),
            template,
            info,
            stats: Stats::default(),
            grammars: None,
        })
    }
}

/// A loader onto `B` (a GPU) that, where allowed, hands the model to the CPU
/// when the file's header shows that `B` cannot hold it
/// ([`Backend::check_fits`]). Until the header has been checked it keeps the
/// bytes pushed, a few MB, so that a CPU loader can start over from them;
/// no weight has reached `B` by then.
pub struct LoaderOrCpu<B: Backend> {
    loader: Either<B>,
    /// Everything pushed, while the CPU may still take over.
    pushed: Option<Vec<u8>>,
    file_len: u64,
    options: LoadOptions,
}

enum Either<B: Backend> {
    On(Loader<B>),
    Cpu(Loader<Cpu>),
}

/// The session a [`LoaderOrCpu`] made: on `B`, or on the CPU instead.
pub enum SessionOrCpu<B: Backend> {
    On(Session<B>),
    Cpu(Session<Cpu>),
}

impl<B: Backend> LoaderOrCpu<B> {
    /// `or_cpu`: whether the CPU may take the model; without it this is a
    /// plain [`Loader`] onto `backend`.
    pub fn new(backend: B, file_len: u64, options: LoadOptions, or_cpu: bool) -> Self {
        LoaderOrCpu {
            loader: Either::On(Loader::new(backend, file_len, options.clone())),
            pushed: or_cpu.then(Vec::new),
            file_len,
            options,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if let Either::Cpu(l) = &mut self.loader {
            return l.push(chunk);
        }
        if let Some(pushed) = &mut self.pushed {
            pushed.extend_from_slice(chunk);
        }
        self.on_or_cpu(|l| l.push(chunk))
    }

    /// [`Loader::try_header`] on whichever loader has the model.
    pub fn try_header(&mut self) -> Result<bool> {
        if let Either::Cpu(l) = &mut self.loader {
            return l.try_header();
        }
        self.on_or_cpu(|l| l.try_header().map(|_| ()))?;
        Ok(self.has_header())
    }

    /// Whether the header has been read and checked.
    pub fn has_header(&self) -> bool {
        match &self.loader {
            Either::On(l) => l.has_header(),
            Either::Cpu(l) => l.has_header(),
        }
    }

    /// Runs `f` on the loader onto `B`; when the header shows that `B`
    /// cannot hold the model, the CPU starts over from the bytes pushed.
    fn on_or_cpu(&mut self, f: impl FnOnce(&mut Loader<B>) -> Result<()>) -> Result<()> {
        let Either::On(l) = &mut self.loader else { unreachable!("called while the model is on B") };
        match f(l) {
            Err(Error::UnsupportedQuant { .. } | Error::OutOfMemory(_)) if self.pushed.is_some() && !l.has_header() => {
                let pushed = self.pushed.take().unwrap_or_default();
                let mut cpu = Loader::new(Cpu::default(), self.file_len, self.options.clone());
                let replayed = cpu.push(&pushed);
                self.loader = Either::Cpu(cpu);
                replayed
            }
            result => {
                if l.has_header() {
                    self.pushed = None;
                }
                result
            }
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        match &self.loader {
            Either::On(l) => l.position(),
            Either::Cpu(l) => l.position(),
        }
    }

    pub fn finish(self) -> Result<SessionOrCpu<B>> {
        Ok(match self.loader {
            Either::On(l) => SessionOrCpu::On(l.finish()?),
            Either::Cpu(l) => SessionOrCpu::Cpu(l.finish()?),
        })
    }
}

fn model_info(header: &Header, h: &Hparams, context: usize, kv_cache_bytes: usize) -> ModelInfo {
    let mut by_type: Vec<(&'static str, u64)> = Vec::new();
    for t in &header.tensors {
        let n = t.n_elements();
        match by_type.iter_mut().find(|(name, _)| *name == t.ty.name()) {
            Some((_, count)) => *count += n,
            None => by_type.push((t.ty.name(), n)),
        }
    }
    let quantization = by_type.iter().max_by_key(|(_, n)| *n).map(|(t, _)| t.to_string()).unwrap_or_default();
    ModelInfo {
        architecture: h.arch.clone(),
        name: header.metadata.get("general.name").and_then(|v| v.as_str()).map(str::to_string),
        parameters: header.tensors.iter().map(|t| t.n_elements()).sum(),
        file_size: header.file_len,
        quantization,
        context_length: context,
        trained_context_length: h.context_length,
        vocab_size: h.n_vocab,
        kv_cache_bytes,
        decode_bytes: decode_bytes(header),
    }
}

/// See [`ModelInfo::decode_bytes`].
fn decode_bytes(header: &Header) -> u64 {
    let tied = !header.tensors.iter().any(|t| t.name == "output.weight");
    header.tensors.iter().filter(|t| t.dims.len() > 1 && (tied || t.name != "token_embd.weight")).map(|t| t.size).sum()
}

impl<B: Backend> GgufSink for LoadSink<B> {
    fn header(&mut self, header: &mut Header) -> Result<()> {
        // Everything that can be checked before the weights arrive is checked here.
        let builder = Builder::for_header(header)?;
        let h = builder.hparams();
        let (context, batch) = self.options.sizes(h)?;
        self.backend.check_fits(&header.tensors, &h.cache_positions(context, batch), h.n_head_kv * h.head_dim)?;
        let tokenizer = Tokenizer::from_metadata(&header.metadata)?;
        let text = |id: Option<u32>| id.and_then(|id| tokenizer.token_text(id)).unwrap_or("").to_string();
        let compile = |source: &str| ChatTemplate::new(source, &text(tokenizer.bos_id()), &text(tokenizer.eos_id()));
        let source = header.metadata.get("tokenizer.chat_template").and_then(|v| v.as_str());
        let template = match (
            &self.options.chat_template,
            source.or_else(|| header.metadata.architecture().and_then(chat::builtin)),
        ) {
            (Some(given), _) => Ok(compile(given)?),
            (None, None) => Err("this model has no chat template; use generate with a plain prompt".to_string()),
            (None, Some(source)) => compile(source).map_err(|e| e.to_string()),
        };
        // The tokenizer holds what it needs of its tables; the header's go.
        for key in Tokenizer::TABLES {
            header.metadata.remove(key);
        }
        self.builder = Some(builder);
        self.tokenizer = Some(tokenizer);
        self.template = Some(template);
        Ok(())
    }

    fn rows(&mut self, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()> {
        let builder = self.builder.as_mut().expect("header() comes first");
        builder.rows(&mut self.backend, info, first, data)
    }
}
