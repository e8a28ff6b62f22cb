/** Stable error codes; branch on `error.code`, not on the message. */
export type ErrorCode =
  | 'INVALID_GGUF'
  | 'UNSUPPORTED_ARCH'
  | 'UNSUPPORTED_QUANT'
  | 'NO_WEBGPU'
  | 'OUT_OF_MEMORY'
  | 'QUOTA_EXCEEDED'
  | 'NETWORK'
  | 'ABORTED'
  | 'CONTEXT_OVERFLOW'
  | 'BUSY'
  | 'INTEGRITY'
  | 'TOKENIZER'
  | 'CHAT_TEMPLATE'
  | 'INVALID_ARGUMENT'
  | 'IO'
  | 'BLOCKED'
  | 'INTERNAL';

/** Every error this package throws. */
export class WebslmError extends Error {
  readonly code: ErrorCode;
}

/** A model file: a URL, a File/Blob, bytes, a stream, or (Node, Deno) a file path. */
export type ModelSource = string | URL | Blob | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array>;

export interface LoadOptions {
  /**
   * 'auto' takes a hardware WebGPU adapter when there is one, the model
   * fits it (formats its shaders read, rows and KV cache within its binding
   * limits, as the file's header shows) and it proves faster: after loading,
   * a short timed decode on the GPU is weighed against the CPU's expected
   * speed (the model's decode bytes over this CPU's calibrated rate), and
   * where the CPU wins the model is loaded again on the CPU (a
   * ReadableStream source, which cannot be read twice, stays on the GPU).
   * The calibration and the verdict are kept in IndexedDB per adapter (the
   * verdict per URL or file), so the next load goes straight to the faster
   * device; `info.deviceReason` says why. Else the CPU; 'webgpu' takes any
   * adapter (software ones too) and fails with NO_WEBGPU where there is none
   * and with UNSUPPORTED_QUANT or OUT_OF_MEMORY where the model does not fit;
   * 'cpu' never uses the GPU. With a GPU adapter the model runs the
   * single-threaded builds (`threads` is ignored), on the CPU too when 'auto'
   * falls back.
   */
  device?: 'auto' | 'webgpu' | 'cpu';
  /**
   * The GPU's kernel family (default 'auto': 'software' for adapters that
   * emulate a GPU on the CPU, such as SwiftShader and lavapipe, which run a
   * workgroup's threads one after another; 'hardware' for real GPUs, whose
   * kernels keep many lanes busy on one row and reduce their sums together,
   * natively with subgroups too, not yet in browsers, and multiply in f16
   * where the adapter has `shader-f16`: 'hardware+f16'). `info.kernels` tells
   * which runs.
   */
  gpuKernels?: 'auto' | 'software' | 'hardware';
  /**
   * CPU threads for matrix products and attention (default
   * min(navigator.hardwareConcurrency, 4), never more than it). More than one
   * runs the threaded build, whose pool of `threads - 1` Web Workers shares the
   * engine's memory: that needs a cross-origin-isolated page
   * (`crossOriginIsolated`, from COOP/COEP headers), in the page itself or in
   * `worker: true`'s Worker. Elsewhere (a page without isolation, Node, Deno),
   * or if the Workers cannot start, the engine runs on one thread: not an
   * error; `info.threads` tells.
   */
  threads?: number;
  /** Positions the KV cache holds; default min(the model's context, 4096). */
  contextLength?: number;
  /**
   * A Jinja chat template to use instead of the file's (for a GGUF without
   * one, or with an older one than its model's); one that does not compile
   * fails the load with CHAT_TEMPLATE.
   */
  chatTemplate?: string;
  /**
   * Called as bytes arrive: `loaded` of `total` bytes of the file, from the
   * network ('download') or from a file, memory or the cache ('load'); and
   * with a 'warning' (its `code` and `message`) when the load goes on despite
   * a problem: the cache could not take the model. If it throws, the load
   * stops and rejects with INVALID_ARGUMENT (the throw as its `cause`), or
   * with what it threw if that is a WebslmError.
   */
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Keep a URL's download in IndexedDB (default true): an interrupted
   * download resumes, and later loads need no network. Where the cache
   * cannot take the model (no IndexedDB, as in some private windows; a quota
   * too small, before or during the download; a failed write) the download
   * goes on into memory and the model loads uncached (`info.cached` false),
   * with a 'warning' progress event naming the cause; what the cache held
   * of this file is removed, every other cached model stays. 'required'
   * fails instead (QUOTA_EXCEEDED, IO); false never caches.
   */
  cache?: boolean | 'required';
  /** Expected SHA-256 of the file, in hex: a mismatch fails with INTEGRITY and nothing is cached. */
  sha256?: string;
  /** Bytes per cache record (default 4 MiB; a half-cached download resumes with its own). */
  chunkSize?: number;
  signal?: AbortSignal;
  /**
   * Size in bytes of a ReadableStream source. Without it such a stream is
   * collected whole first, because the file size must be known before loading.
   */
  size?: number;
  /**
   * Run the engine in a dedicated Worker (a module Web Worker in browsers and
   * Deno, node:worker_threads in Node) so that loading and generation never
   * block the main thread. The generator has the same API; `dispose()` ends the
   * worker, which until then keeps a Node or Deno process running. A
   * ReadableStream source is transferred to the worker; where streams cannot be
   * transferred (Safari) it is first collected into a Blob. If the worker dies,
   * every pending and later call rejects with INTERNAL.
   */
  worker?: boolean;
}

/**
 * A response format. `json_schema`: JSON valid against `schema` (objects,
 * arrays, enums, const, anyOf/oneOf/allOf, $ref, string formats and
 * patterns, numeric and length bounds; OpenAI's `json_schema: { schema }`
 * is read too). `json_object`: any JSON object. `regex`: text matching
 * `pattern` whole (Rust regex syntax). `grammar`: a Lark grammar as
 * llguidance reads it, or a llama.cpp GBNF grammar (`root ::= ...`).
 * `text`: free text.
 */
export type ResponseFormat =
  | { type: 'json_schema'; schema: object | boolean }
  | { type: 'json_schema'; json_schema: { name?: string; strict?: boolean; schema: object | boolean } }
  | { type: 'json_object' }
  | { type: 'regex'; pattern: string }
  | { type: 'grammar'; grammar: string }
  | { type: 'text' };

export interface GenerateOptions {
  /** Tokens to generate at most (default 256); an end-of-generation token counts. */
  maxTokens?: number;
  /** 0 (the default) is greedy decoding. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** How many recent tokens the penalties look at (default 64). */
  penaltyLastN?: number;
  /** Seed of the sampler's random generator: the same seed gives the same text. */
  seed?: number;
  /** Generation stops before any of these strings; they are not emitted. */
  stop?: string[];
  /** [token id, bias] pairs added to the logits; -Infinity bans a token. */
  logitBias?: [number, number][];
  /**
   * What the text must be: every token that cannot continue it within the
   * format is masked before sampling (the other settings still apply among
   * the rest), so the text always parses, unless `maxTokens` comes first
   * (`finishReason: 'max_tokens'`). A schema, regex or grammar that cannot
   * be compiled rejects with INVALID_ARGUMENT.
   */
  responseFormat?: ResponseFormat;
  /** Control tokens (`<|im_end|>`, Mistral's `[TOOL_CALLS]`) show in the pieces' text; a chat turn with tools sets it where the template's call syntax uses them. */
  renderControlTokens?: boolean;
  /** Stops the generation; the iterator rejects with ABORTED. */
  signal?: AbortSignal;
  /** false: reject with BUSY while another request runs, instead of queueing behind it (the default). */
  queue?: boolean;
  /**
   * Called after each batch of the prompt (256 tokens) is in the KV cache,
   * before the first piece. An abort stops a long prompt between batches;
   * the cache keeps the batches that ran. If it throws, the request rejects
   * with INVALID_ARGUMENT (the throw as its `cause`), or with what it threw
   * if that is a WebslmError.
   */
  onProgress?: (progress: PrefillProgress) => void;
}

/**
 * What a generation's `onProgress` receives: `done` of the prompt's `total`
 * tokens are in the KV cache, a prefix reused from an earlier request included
 * (so the first event may start past 0).
 */
export interface PrefillProgress {
  phase: 'prefill';
  done: number;
  total: number;
}

/** One generated token and the text it completes (possibly empty while a character or a stop string is incomplete). */
export interface Piece {
  token: number;
  text: string;
}

/** OpenAI's message shape; the chat template sees the fields that are set. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | string;
  content?: string | null;
  /** The functions an assistant turn called. */
  tool_calls?: ToolCall[];
  /** In a `tool` turn: the call it answers, and the function's name. */
  tool_call_id?: string;
  name?: string;
}

export interface ToolCall {
  id?: string;
  type?: 'function';
  /**
   * `arguments` reaches the template as given: most Hugging Face templates
   * want the object, OpenAI's API sends a JSON string (JSON.parse it for those).
   */
  function: { name: string; arguments: Record<string, unknown> | string };
}

/** A function the model may call, as in OpenAI's `tools`. */
/** OpenAI's `tool_choice`. */
export type ToolChoice = 'auto' | 'required' | 'none' | { type: 'function'; function: { name: string } };

/** A call the model made, as OpenAI returns it. */
export interface ToolCallResult {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** What `onProgress` receives while a model loads. */
export type LoadProgress =
  | { phase: 'download' | 'load'; loaded: number; total: number }
  | { phase: 'warning'; code: ErrorCode; message: string; loaded: number; total: number };

export interface ModelInfo {
  architecture: string;
  name: string | null;
  parameters: number;
  fileSize: number;
  /** The most common weight type, e.g. 'Q4_1'. */
  quantization: string;
  contextLength: number;
  trainedContextLength: number;
  vocabSize: number;
  /**
   * Bytes of the KV cache: every position of the context on each layer, but
   * a ring of window + 255 positions on a sliding-window layer (Gemma 3).
   */
  kvCacheBytes: number;
  backend: 'cpu' | 'webgpu';
  /** The GPU adapter's name and API, on the WebGPU backend. */
  adapter?: string;
  /** Why the model runs where it does, e.g. 'auto: the GPU decoded 3.1 tok/s, the CPU is expected at 41.0 tok/s'. */
  deviceReason: string;
  /** Bytes of weights one decode step reads (what 'auto' weighs the CPU's speed by). */
  decodeBytes: number;
  /** The GPU kernel family that runs the model, on the WebGPU backend (see the `gpuKernels` load option). */
  kernels?: 'software' | 'hardware' | 'hardware+f16';
  /** Threads the engine really runs on (see the `threads` load option). */
  threads: number;
  /** Where fewer threads run than were asked for: why (not cross-origin isolated, Node or Deno, a pool that did not start). */
  threadsReason?: string;
  /**
   * The wasm build that runs: SIMD128 everywhere; relaxed SIMD where the
   * runtime has the standard one (Chrome 114+, Node 22+; not Node 20's
   * pre-standard flag); threaded on cross-origin-isolated pages.
   */
  build: 'simd128' | 'relaxed-simd' | 'threads+simd128' | 'threads+relaxed-simd';
  /** Whether the engine runs in a dedicated Worker (the `worker` load option). */
  worker: boolean;
  /** Whether the model's file is in the download cache (a URL load that stored it, or came from it). */
  cached: boolean;
}

export interface Stats {
  promptTokens: number;
  /** Prompt tokens whose keys and values were already cached (a chat's earlier turns). */
  reusedTokens: number;
  generatedTokens: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  timeToFirstTokenMs: number;
  /** Of the generation's time, what its response format's token masks took. */
  constraintMs: number;
  finishReason: 'end_of_generation' | 'stop' | 'max_tokens' | 'context_full' | null;
}

export interface Candidate {
  id: number;
  logit: number;
  logprob: number;
}

export interface Score {
  /** From the second token on: its logit and log-probability, and the topK most likely alternatives. */
  tokens: (Candidate & { top: Candidate[] })[];
  perplexity: number;
}

export interface ChatCompletionRequest {
  messages: ChatMessage[];
  /** Ignored: the model is the loaded one. */
  model?: string;
  stream?: boolean;
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  seed?: number;
  stop?: string | string[];
  /** As `responseFormat`: OpenAI's `{ type: 'json_schema', json_schema: { schema } }` and `{ type: 'json_object' }`, and webslm's others. */
  response_format?: ResponseFormat;
  /** Functions the model may call; streamed, a call goes out as `delta.tool_calls` once its name is known, its arguments as they are written. */
  tools?: Tool[];
  tool_choice?: ToolChoice;
  n?: 1;
  signal?: AbortSignal;
  /** The prompt's progress, as for `chat` (not an OpenAI parameter). */
  onProgress?: (progress: PrefillProgress) => void;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: { role: 'assistant'; content: string | null; tool_calls?: ToolCallResult[] }; finish_reason: 'stop' | 'length' | 'tool_calls' }];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: [{ index: 0; delta: { role?: 'assistant'; content?: string; tool_calls?: (ToolCallResult & { index: number })[] }; finish_reason: 'stop' | 'length' | 'tool_calls' | null }];
}

/**
 * OpenAI's chat-completions shape over anything with `chat`, `info` and
 * `stats`; every generator has one as `chatCompletions`.
 */
export class ChatCompletions {
  constructor(generator: Pick<Generator, 'chat' | 'parseToolCalls' | 'info' | 'stats'>);
  create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterableIterator<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
}

/** A model in the download cache. */
export interface CachedModel {
  url: string;
  size: number;
  /** Bytes stored so far; less than `size` while a download is unfinished. */
  downloaded: number;
  complete: boolean;
  /** The SHA-256 it was verified against, if one was given. */
  sha256: string | null;
  etag: string | null;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

/** A loaded model. Requests are queued: a second generate waits for the first. */
export class Generator {
  /** The models earlier loads kept in IndexedDB. */
  static readonly cache: {
    list(): Promise<CachedModel[]>;
    /** Resolves to whether the model was cached. */
    delete(url: string | URL): Promise<boolean>;
    clear(): Promise<void>;
    /** `models`: bytes held by cached models; `usage` and `quota` of the origin, where the runtime tells. */
    estimate(): Promise<{ models: number; usage?: number; quota?: number }>;
  };
  /** OpenAI's chat-completions shape, for code written against that API. */
  readonly chatCompletions: ChatCompletions;
  static load(source: ModelSource, options?: LoadOptions): Promise<Generator>;
  readonly info: ModelInfo;
  /** Figures of the last request. */
  readonly stats: Stats;
  /** Token ids of `text`; `addSpecial` adds BOS/EOS as the model's metadata says. */
  tokenize(text: string, options?: { addSpecial?: boolean }): Promise<number[]>;
  detokenize(ids: ArrayLike<number>): Promise<string>;
  /** Streams a continuation of a prompt (text, or token ids). */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncIterableIterator<Piece>;
  /**
   * Streams the assistant's reply, reusing the KV cache of earlier turns.
   * `tools` are offered as the model's template offers them (where it
   * knows none: in a system message, and the reply is JSON,
   * `{"tool_call": ...}` or `{"response": ...}`); `toolChoice` 'required'
   * or a named function holds the reply to a call whose arguments follow
   * the function's parameters. `parseToolCalls` reads the reply. `prefix`:
   * the reply's first words, written for the model, which it continues
   * (not among the pieces; not with a response format).
   */
  chat(messages: ChatMessage[], options?: GenerateOptions & { tools?: Tool[]; toolChoice?: ToolChoice; prefix?: string }): AsyncIterableIterator<Piece>;
  /** The token ids of `messages` as the model's chat template renders them, up to the reply: a turn's prompt. */
  chatTokens(messages: ChatMessage[], options?: { tools?: Tool[] }): Promise<number[]>;
  /**
   * The text and the calls of a reply to a turn that offered tools, in the
   * template's syntax (Hermes `<tool_call>`, Llama 3.x JSON, Mistral
   * `[TOOL_CALLS]`, or the generic JSON), `arguments` as the model wrote
   * them. `partial`: the reply goes
   * on; text that may begin a call is held back, a call is given once its
   * name is known, with the arguments so far, and each reading extends the
   * one before.
   */
  parseToolCalls(text: string, options?: { partial?: boolean }): Promise<{ content: string; toolCalls: ToolCallResult[] }>;
  /** Teacher-forced log-probabilities of every token after the first, and perplexity. */
  score(input: string | ArrayLike<number>, options?: { topK?: number; signal?: AbortSignal; queue?: boolean }): Promise<Score>;
  /** Frees the model once earlier requests are done. */
  dispose(): Promise<void>;
}

/**
 * A model's tokenizer alone, built from the header of its GGUF file: the
 * whole of a vocabulary-only file (llama.cpp's `ggml-vocab-*.gguf`), the
 * first megabytes of a model. Tokenizes exactly as llama.cpp does.
 */
export class Tokenizer {
  /** Reading stops once the header is in; `size` is for a stream of unknown length. */
  static load(source: ModelSource, options?: { signal?: AbortSignal; size?: number }): Promise<Tokenizer>;
  /** As `llama_tokenize(text, addSpecial, parseSpecial)`; both default to false. */
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  /** Special tokens rendered. */
  detokenize(ids: ArrayLike<number>): string;
  readonly vocabSize: number;
  dispose(): void;
}
