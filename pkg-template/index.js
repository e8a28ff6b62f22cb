// The public API: a thin layer over the wasm engine (src/web.rs). It turns any
// model source into a stream of chunks pushed into the engine, turns token
// stepping into async iterators, queues requests, and honours AbortSignals.

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof Deno === 'undefined';
const isDeno = typeof Deno !== 'undefined';

/** An error with a stable `code` (INVALID_GGUF, UNSUPPORTED_ARCH, ABORTED, ...). */
export class WebslmError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'WebslmError';
    this.code = code;
  }
}

const CODES = new Set(['INVALID_GGUF', 'UNSUPPORTED_ARCH', 'UNSUPPORTED_QUANT', 'NO_WEBGPU', 'OUT_OF_MEMORY', 'QUOTA_EXCEEDED', 'NETWORK', 'ABORTED', 'CONTEXT_OVERFLOW', 'BUSY', 'INTEGRITY', 'TOKENIZER', 'CHAT_TEMPLATE', 'INVALID_ARGUMENT', 'IO', 'BLOCKED', 'INTERNAL']);

/** `e` as a WebslmError; a trap marks `instance`, the engine it came from, unusable. */
function wrap(e, instance) {
  if (e instanceof WebslmError) return e;
  if (CODES.has(e?.code)) {
    // Its memory grown as far as it could, and wasm memory never shrinks:
    // the next load gets a fresh instance (generators on this one go on).
    if (e.code === 'OUT_OF_MEMORY' && instance) instance.retired = true;
    return new WebslmError(e.code, e.message, { cause: e });
  }
  // Node's and Deno's file errors (ENOENT, EACCES, NotFound, ...).
  if (e?.syscall || (isDeno && e instanceof Deno.errors.NotFound)) return new WebslmError('IO', e.message, { cause: e });
  if (e && e.name === 'AbortError') return new WebslmError('ABORTED', 'aborted', { cause: e });
  if (e instanceof WebAssembly.RuntimeError) {
    // A trap leaves the instance unusable. Without a panic it may be an
    // allocation that the memory could not grow for, which Rust aborts on.
    if (instance) instance.poisoned = true;
    const refused = !instance?.panic && instance?.glue ? instance.glue.refusedAllocation() : 0;
    if (refused > 0) {
      return new WebslmError('OUT_OF_MEMORY', `not enough memory: an allocation of ${refused} bytes was refused (the engine's memory could not grow); load the model again, with a smaller contextLength or model`, { cause: e });
    }
    return new WebslmError('INTERNAL', `the engine stopped after an internal error (${instance?.panic ?? e.message}); load the model again`, { cause: e });
  }
  return new WebslmError('NETWORK', e?.message ?? String(e), { cause: e });
}

/**
 * Yields to the event loop for one task: a message through a fresh
 * MessageChannel, since nested `setTimeout(0)` is clamped to 4 ms in
 * browsers (1 ms in Node), a tax on every token. The channel is closed on
 * arrival, so an abandoned generation leaves no port keeping Node running.
 */
function nextTurn() {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(0);
  });
}

function checkAbort(signal) {
  if (signal?.aborted) throw new WebslmError('ABORTED', 'aborted', { cause: signal.reason });
}

/**
 * The engine variants scripts/build-pkg.sh builds, best first: threads where
 * the page is cross-origin isolated and more than one thread is asked for,
 * relaxed SIMD where the runtime has the standard one, else plain SIMD128.
 */
const BUILDS = ['threads+relaxed-simd', 'threads+simd128', 'relaxed-simd', 'simd128'];

/**
 * Whether relaxed SIMD computes what the kernels rely on: a tiny module's
 * i32x4.relaxed_dot_i8x16_i7x16_add_s of -3s and 5s must give 4 × -15 = -60
 * a lane. Validating is not enough: Node 20 (V8 11.3) behind
 * --experimental-wasm-relaxed-simd has a pre-standard version that gives -120.
 */
function relaxedSimdWorks() {
  const splat = (byte) => [0xfd, 0x0c, ...Array(16).fill(byte)]; // v128.const
  const body = [0, ...splat(0xfd), ...splat(5), ...splat(0), 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0, 0x0b];
  const header = [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0];
  const bytes = new Uint8Array([...header, 10, body.length + 2, 1, body.length, ...body]);
  try {
    return WebAssembly.validate(bytes) && new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f() === -60;
  } catch {
    return false;
  }
}
const relaxedSimd = relaxedSimdWorks();

/**
 * Workers on shared memory need a cross-origin-isolated page or worker; Node
 * and Deno run the single-threaded builds.
 */
const threadsPossible = !isNode && !isDeno && globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function' && typeof Worker === 'function';

/** The pool's Workers start in well under a second; one that never reports ready (a blocked blob: URL) must not hang the load. */
const POOL_TIMEOUT_MS = 30000;

/** Threads to run on: the `threads` option, or hardwareConcurrency capped at 4, never more than the cores. */
function threadCount(option) {
  const cores = globalThis.navigator?.hardwareConcurrency || 1;
  if (option === undefined) return Math.min(cores, 4);
  if (!Number.isInteger(option) || option < 1) throw new WebslmError('INVALID_ARGUMENT', `threads must be a positive integer, not ${JSON.stringify(option)}`);
  return Math.min(option, cores);
}

/**
 * Whether `device: 'auto'` should take the GPU: a WebGPU adapter that is a
 * real GPU. Software adapters (SwiftShader, lavapipe) emulate one on the
 * CPU, slower than the CPU backend itself; `device: 'webgpu'` still takes
 * them.
 */
async function hardwareGpu() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return false;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return false;
    const info = adapter.info ?? {};
    if (adapter.isFallbackAdapter || info.isFallbackAdapter) return false;
    return !/swiftshader|llvmpipe|lavapipe|software/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
  } catch {
    return false;
  }
}

const GPU_KERNELS = ['auto', 'software', 'hardware'];

/**
 * Figures `device: 'auto'` keeps between loads (CPU calibrations, verdicts),
 * in their own IndexedDB database; in memory where there is none (Node,
 * Deno) or it fails (a private window).
 */
const figures = (() => {
  const memory = new Map();
  const DB = 'webslm-device-figures';
  let db;
  const open = () =>
    (db ??= new Promise((resolve, reject) => {
      const request = globalThis.indexedDB.open(DB, 1);
      request.onupgradeneeded = () => request.result.createObjectStore('figures');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    }));
  const run = async (mode, op) => {
    const store = (await open()).transaction('figures', mode).objectStore('figures');
    return new Promise((resolve, reject) => {
      const request = op(store);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  };
  return {
    async get(key) {
      if (!globalThis.indexedDB) return memory.get(key);
      return run('readonly', (s) => s.get(key)).catch(() => memory.get(key));
    },
    async set(key, value) {
      memory.set(key, value);
      if (globalThis.indexedDB) await run('readwrite', (s) => s.put(value, key)).catch(() => {});
    },
  };
})();

/** What identifies a model source between loads: its URL, or a file's name, size and date; null for bytes and streams. */
function sourceKey(source) {
  if (typeof source === 'string' || source instanceof URL) return String(source);
  if (typeof File !== 'undefined' && source instanceof File) return `file:${source.name}:${source.size}:${source.lastModified}`;
  return null;
}

/** Whether a source can be read a second time (to load a model again on the CPU). */
function rereadable(source) {
  return !(typeof ReadableStream !== 'undefined' && source instanceof ReadableStream);
}

/**
 * Decode tokens a second on a loaded generator: the time between the second
 * and third pieces of a greedy reply (the first decode step makes the
 * decode kernels' pipelines), retried on other prompts where the model ends
 * sooner. One step, because on a slow adapter each takes seconds.
 */
async function timedDecode(g, signal) {
  for (const prompt of ['1, 2, 3,', 'The', 'Once upon a time']) {
    const times = [];
    for await (const _ of g.generate(prompt, { maxTokens: 3, signal })) times.push(performance.now());
    if (times.length === 3 && times[2] > times[1]) return 1000 / (times[2] - times[1]);
  }
  throw new Error('the model ended every timed prompt within two tokens');
}

/** This CPU's decode GEMV rate (bytes a millisecond) for a weight type, on the build and threads a CPU load would run, calibrated once an adapter. */
async function cpuRate(adapter, threads, quantization) {
  const { glue, build, threads: n } = await engine(threadCount(threads));
  const key = `cpu|${adapter}|${build}|${n}|${quantization}`;
  const known = await figures.get(key);
  if (known) return known;
  const rate = glue.calibrateCpu(quantization);
  await figures.set(key, rate);
  return rate;
}

/** The WebGPU adapter's vendor and architecture as the browser tells them (wgpu has no name for it). */
async function adapterName() {
  try {
    const info = (await globalThis.navigator.gpu.requestAdapter())?.info ?? {};
    return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'WebGPU';
  } catch {
    return 'WebGPU';
  }
}

/** Why this runtime cannot run the threaded build. */
function singleThreadReason() {
  if (isNode || isDeno) return 'Node and Deno run one thread (the threaded build needs Web Workers sharing memory)';
  if (globalThis.crossOriginIsolated !== true) return 'the page is not cross-origin isolated (COOP and COEP headers), so it has no SharedArrayBuffer';
  return 'this runtime has no SharedArrayBuffer or Worker';
}

/** The builds to try for `threads`, best first; a threaded one that fails to start falls back to the next. */
function candidates(threads) {
  return BUILDS.filter((b) => (threads > 1 && threadsPossible) || !b.startsWith('threads+')).filter((b) => relaxedSimd || !b.endsWith('relaxed-simd'));
}

/**
 * The wasm engines, one per build and thread count: its glue module, and
 * whether a panic has made it unusable. A panic traps the instance mid-call
 * and may leave its memory inconsistent, so the generators on it stop, and the
 * next load gets a fresh instance (a second copy of the glue module, imported
 * under another URL; a threaded one gets its own pool of Workers, and the
 * trapped one's idle Workers stay until the page goes).
 */
const live = new Map();
/** How many times each build's glue module has been imported. */
const imports = new Map();

/** The engine for `threads` threads (1: single-threaded); resolves to `{ glue, instance, build, threads }`. */
function engine(threads = 1) {
  const key = threads > 1 && threadsPossible ? threads : 1;
  const current = live.get(key);
  if (current && !current.poisoned && !current.retired) return current.ready;
  const instance = { poisoned: false, retired: false, panic: undefined };
  instance.ready = (async () => {
    const builds = candidates(key);
    // Why fewer threads run than were asked for, where they do.
    let reason = threads > 1 && !threadsPossible ? singleThreadReason() : undefined;
    for (const [i, build] of builds.entries()) {
      try {
        const runtime = await start(build, build.startsWith('threads+') ? key : 1, instance);
        return runtime.threads < threads ? { ...runtime, threadsReason: reason ?? `${runtime.threads} of ${threads} threads started` } : runtime;
      } catch (e) {
        // A threads request that cannot be honoured runs on one thread instead.
        if (i === builds.length - 1) throw e;
        if (build.startsWith('threads+')) reason = `the threaded build did not start (${e?.message ?? e})`;
      }
    }
  })();
  live.set(key, instance);
  return instance.ready;
}

/** Instantiates `build`, with a pool of `threads - 1` Workers beside the calling thread. */
async function start(build, threads, instance) {
  const name = `webslm-${build.replace('+', '-')}`;
  const count = (imports.get(name) ?? 0) + 1;
  imports.set(name, count);
  const glue = await import(`./wasm/${name}.js${count > 1 ? `?instance=${count}` : ''}`);
  const url = new URL(`./wasm/${name}_bg.wasm`, import.meta.url);
  let module_or_path = url;
  if (isNode) module_or_path = await (await import('node:fs/promises')).readFile(url);
  else if (isDeno && url.protocol === 'file:') module_or_path = await Deno.readFile(url);
  await glue.default({ module_or_path }).catch((e) => {
    // A page's Content-Security-Policy without 'wasm-unsafe-eval' refuses to compile it.
    if (/Content.Security.Policy/i.test(e?.message)) {
      throw new WebslmError('BLOCKED', `the page's Content-Security-Policy does not let WebAssembly compile: add 'wasm-unsafe-eval' to script-src (${e.message})`, { cause: e });
    }
    throw e;
  });
  instance.glue = glue;
  glue.setPanicHandler((message) => {
    instance.poisoned = true;
    instance.panic = message;
  });
  if (threads > 1) {
    let timer;
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the thread pool did not start')), POOL_TIMEOUT_MS)));
    await Promise.race([glue.initThreadPool(threads - 1), timeout]).finally(() => clearTimeout(timer));
  }
  return { glue, instance, build, threads: glue.threadCount() };
}

/** A live engine for the cache calls, which any build serves. */
function anyEngine() {
  const ready = [...live.values()].find((i) => !i.poisoned && !i.retired);
  return ready ? ready.ready : engine();
}

function poisonedError(instance) {
  return new WebslmError('INTERNAL', `the engine stopped after an internal error (${instance.panic ?? 'a wasm trap'}); load the model again`);
}

/**
 * The absolute http(s) URL a source names, if it names one: those load
 * through the engine's downloader and cache. In a page, a relative URL is
 * resolved against the page.
 */
function httpUrl(source) {
  if (source instanceof URL) return /^https?:$/.test(source.protocol) ? source.href : undefined;
  if (typeof source !== 'string') return undefined;
  if (/^https?:/i.test(source)) return source;
  const base = globalThis.location?.href;
  if (!isNode && !isDeno && base && !/^(blob|data):/i.test(source)) return new URL(source, base).href;
  return undefined;
}

/** Yields the bytes of any supported source as Uint8Array chunks, with its total size. */
async function openSource(source, signal) {
  if (source instanceof Uint8Array) return { size: source.byteLength, chunks: sliceChunks(source) };
  if (source instanceof ArrayBuffer) return { size: source.byteLength, chunks: sliceChunks(new Uint8Array(source)) };
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { size: source.size, chunks: readStream(source.stream()) };
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) return { size: undefined, chunks: readStream(source) };
  const text = source instanceof URL ? source.href : source;
  if (typeof text !== 'string') throw new WebslmError('INVALID_ARGUMENT', 'a model source is a URL, a path, a File/Blob, an ArrayBuffer, a Uint8Array or a ReadableStream');
  if (/^(blob|data):/i.test(text) || (!isNode && !isDeno)) return fetchSource(text, signal);
  const path = text.startsWith('file:') ? new URL(text) : text;
  if (isNode) {
    const file = await (await import('node:fs/promises')).open(path, 'r');
    const size = (await file.stat()).size;
    return { size, chunks: readFileChunks(file) };
  }
  const file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  return { size, chunks: readStream(file.readable) };
}

/**
 * A Node file's bytes, 4 MiB at a time into one reused buffer: each chunk is
 * valid until the next is asked for, which every consumer here allows (it
 * pushes a chunk into the engine before it asks). A fresh buffer a chunk
 * would leave hundreds of MiB of a large model waiting for the GC.
 */
async function* readFileChunks(file) {
  const buffer = new Uint8Array(4 << 20);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

function* sliceChunks(bytes) {
  const step = 16 << 20;
  for (let i = 0; i < bytes.byteLength; i += step) yield bytes.subarray(i, Math.min(i + step, bytes.byteLength));
}

async function* readStream(stream) {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function fetchSource(url, signal) {
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (e) {
    throw e?.name === 'AbortError' ? wrap(e) : new WebslmError('NETWORK', `could not fetch ${url}: ${e.message}`, { cause: e });
  }
  if (!response.ok) throw new WebslmError('NETWORK', `fetching ${url} failed: HTTP ${response.status}`);
  const length = Number(response.headers.get('content-length'));
  return { size: Number.isFinite(length) && length > 0 ? length : undefined, chunks: readStream(response.body) };
}

/** What a load whose onProgress threw rejects with, for any source (remote.js says the same in worker mode). */
function progressError(e) {
  return e instanceof WebslmError ? e : new WebslmError('INVALID_ARGUMENT', `onProgress threw: ${e?.message ?? e}`, { cause: e });
}

/**
 * What a generation calls after each batch of its prompt: `onProgress`, if
 * given, with `{ phase: 'prefill', done, total }`; a throw fails the request
 * as it fails a load. remote.js checks the same in worker mode.
 */
function prefillReporter(onProgress) {
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new WebslmError('INVALID_ARGUMENT', 'onProgress must be a function');
  return ({ done, total }) => {
    try {
      onProgress?.({ phase: 'prefill', done, total });
    } catch (e) {
      throw progressError(e);
    }
  };
}

/**
 * glue.loadUrl, where a throwing onProgress fails the load as it does for
 * other sources: the engine's downloader ignores a callback's throw, so the
 * throw is kept, the download aborted, and the throw is the load's error.
 */
async function loadUrl(glue, url, options, onProgress, signal, gpu) {
  if (!onProgress) return glue.loadUrl(url, options, undefined, signal, gpu);
  const controller = new AbortController();
  const forward = () => controller.abort(signal.reason);
  signal?.addEventListener('abort', forward, { once: true });
  let thrown;
  const report = (event) => {
    try {
      onProgress(event);
    } catch (e) {
      thrown ??= progressError(e);
      controller.abort(thrown);
    }
  };
  try {
    const engine = await glue.loadUrl(url, options, report, controller.signal, gpu).catch((e) => {
      throw thrown ?? e;
    });
    // The last event comes once every byte is in, so the load may still succeed after it threw.
    if (thrown) {
      engine.free();
      throw thrown;
    }
    return engine;
  } finally {
    signal?.removeEventListener('abort', forward);
  }
}

/**
 * The engine checks every offset against the file size before it allocates,
 * so the size must be known first: a bare ReadableStream without the `size`
 * option is collected (held whole, once) to learn it.
 */
async function withSize({ size, chunks }, declared) {
  if (size !== undefined) return { size, chunks };
  if (declared !== undefined) return { size: declared, chunks };
  const parts = [];
  let total = 0;
  for await (const c of chunks) {
    parts.push(c);
    total += c.byteLength;
  }
  return { size: total, chunks: parts };
}

const LOAD_KEYS = ['device', 'gpuKernels', '__cpuRateForTesting', 'threads', 'contextLength', 'chatTemplate', 'cache', 'sha256', 'chunkSize', 'onProgress', 'signal', 'size', 'worker'];
const FINISH_REASONS = { end_of_generation: 'stop', stop: 'stop', max_tokens: 'length', context_full: 'length' };
/** OpenAI's parameters, and webslm's `signal` and `onProgress` (the prompt's progress, as for chat). */
const COMPLETION_KEYS = ['messages', 'model', 'stream', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'frequency_penalty', 'presence_penalty', 'seed', 'stop', 'response_format', 'tools', 'tool_choice', 'n', 'signal', 'onProgress'];

/**
 * OpenAI's chat-completions shape over anything with `chat`,
 * `parseToolCalls`, `info` and `stats`: a Generator, or remote.js's proxy of
 * one in a Worker. With `tools` offered, a streamed reply is read again at
 * each piece (`parseToolCalls` with `partial`): its text and each call's
 * arguments go out as they grow, a call once its name is known.
 */
export class ChatCompletions {
  #gen;
  constructor(gen) {
    this.#gen = gen;
  }

  /** Resolves to a `chat.completion`, or with `stream: true` to an async iterable of `chat.completion.chunk`s. */
  async create(request) {
    for (const key of Object.keys(request ?? {})) {
      if (!COMPLETION_KEYS.includes(key)) throw new WebslmError('INVALID_ARGUMENT', `unsupported parameter ${key} (supported: ${COMPLETION_KEYS.join(', ')})`);
    }
    const { messages, stream = false, n = 1, signal, onProgress } = request;
    if (n !== 1) throw new WebslmError('INVALID_ARGUMENT', 'only n = 1 is supported');
    const options = { signal, onProgress };
    const set = (key, value) => value !== undefined && value !== null && (options[key] = value);
    set('maxTokens', request.max_completion_tokens ?? request.max_tokens);
    set('temperature', request.temperature);
    set('topP', request.top_p);
    set('topK', request.top_k);
    set('minP', request.min_p);
    set('frequencyPenalty', request.frequency_penalty);
    set('presencePenalty', request.presence_penalty);
    set('seed', request.seed);
    set('stop', typeof request.stop === 'string' ? [request.stop] : request.stop);
    set('responseFormat', request.response_format);
    set('tools', request.tools);
    set('toolChoice', request.tool_choice);
    const id = `chatcmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const created = Math.floor(Date.now() / 1000);
    const model = this.#gen.info.name ?? this.#gen.info.architecture;
    const pieces = this.#gen.chat(messages, options);
    const usage = () => {
      const s = this.#gen.stats;
      return { prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens };
    };
    const finish = () => FINISH_REASONS[this.#gen.stats.finishReason] ?? 'stop';
    const offered = request.tools?.length > 0 && request.tool_choice !== 'none';
    const gen = this.#gen;
    const callId = (i) => `call_${id.slice(9)}_${i}`;
    /** The whole reply as `{ content, tool_calls }` (calls only where tools were offered and the model made some). */
    const read = async () => {
      let text = '';
      for await (const p of pieces) text += p.text;
      if (!offered) return { content: text, tool_calls: [] };
      const { content, toolCalls } = await gen.parseToolCalls(text);
      return { content, tool_calls: toolCalls.map((c, i) => ({ ...c, id: callId(i) })) };
    };
    if (!stream) {
      const { content, tool_calls } = await read();
      const message = tool_calls.length ? { role: 'assistant', content: content || null, tool_calls } : { role: 'assistant', content };
      return {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message, finish_reason: tool_calls.length ? 'tool_calls' : finish() }],
        usage: usage(),
      };
    }
    const chunk = (delta, finish_reason = null) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason }] });
    return (async function* () {
      yield chunk({ role: 'assistant', content: '' });
      if (!offered) {
        for await (const p of pieces) if (p.text) yield chunk({ content: p.text });
        yield chunk({}, finish());
        return;
      }
      // What has gone out: the text, and each call's arguments.
      let text = '';
      let sent = '';
      const sentArguments = [];
      /** What `now` adds to `before`, where it extends it. */
      const added = (before, now) => (now.length > before.length && now.startsWith(before) ? now.slice(before.length) : '');
      /** The chunks that take the stream from what has gone out to `reading`. */
      const deltas = function* ({ content, toolCalls }) {
        const more = added(sent, content);
        if (more) {
          yield chunk({ content: more });
          sent = content;
        }
        for (const [index, call] of toolCalls.entries()) {
          if (sentArguments[index] === undefined) {
            yield chunk({ tool_calls: [{ index, id: callId(index), type: 'function', function: { name: call.function.name, arguments: '' } }] });
            sentArguments[index] = '';
          }
          const args = added(sentArguments[index], call.function.arguments);
          if (args) {
            yield chunk({ tool_calls: [{ index, function: { arguments: args } }] });
            sentArguments[index] = call.function.arguments;
          }
        }
      };
      for await (const p of pieces) {
        if (!p.text) continue;
        text += p.text;
        yield* deltas(await gen.parseToolCalls(text, { partial: true }));
      }
      const whole = await gen.parseToolCalls(text);
      yield* deltas(whole);
      yield chunk({}, whole.toolCalls.length ? 'tool_calls' : finish());
    })();
  }
}


/** The models kept in IndexedDB by earlier loads (where the runtime has IndexedDB). */
const cache = {
  /** Every cached or partly downloaded model: url, size, downloaded, complete, sha256, etag, updatedAt. */
  list: () => withGlue((glue) => glue.cacheList()),
  /** Removes one model; resolves to whether it was there. */
  delete: (url) => withGlue((glue) => glue.cacheDelete(httpUrl(url) ?? String(url))),
  /** Removes every cached model. */
  clear: () => withGlue((glue) => glue.cacheClear()),
  /** Bytes held by cached models, and the origin's usage and quota where known. */
  estimate: () => withGlue((glue) => glue.cacheEstimate()),
};

async function withGlue(f) {
  let instance;
  try {
    const ready = await anyEngine();
    instance = ready.instance;
    return await f(ready.glue);
  } catch (e) {
    throw wrap(e, instance);
  }
}

/** A loaded model, ready to generate, chat and score. */
export class Generator {
  /** The download cache: list, delete, clear, estimate. */
  static cache = cache;

  #engine;
  #instance;
  #build;
  #threads;
  #adapter;
  #kernels;
  #reason;
  #threadsReason;
  #queue = Promise.resolve();
  #pending = 0;
  #disposed = false;

  /** `runtime`: what engine() resolved to (the instance, its build and threads), and the GPU adapter's name and kernel family. */
  constructor(engine, { instance, build, threads, threadsReason, adapter, kernels, reason }) {
    this.#engine = engine;
    this.#instance = instance;
    this.#build = build;
    this.#threads = threads;
    this.#adapter = adapter;
    this.#kernels = kernels;
    this.#reason = reason;
    this.#threadsReason = threadsReason;
    /** OpenAI-style `chatCompletions.create({ messages, stream, max_tokens, ... })`. */
    this.chatCompletions = new ChatCompletions(this);
  }

  /**
   * Loads a GGUF model. `source`: URL string or URL, File/Blob, ArrayBuffer,
   * Uint8Array, ReadableStream, or (Node, Deno) a file path. With
   * `worker: true` the engine runs in a dedicated Worker (remote.js).
   */
  static async load(source, options = {}) {
    for (const key of Object.keys(options)) {
      if (!LOAD_KEYS.includes(key)) throw new WebslmError('INVALID_ARGUMENT', `unknown load option ${key} (known: ${LOAD_KEYS.join(', ')})`);
    }
    if (options.worker) return (await import('./remote.js')).RemoteGenerator.load(source, options);
    const { device = 'auto', gpuKernels = 'auto', chatTemplate, signal } = options;
    if (!GPU_KERNELS.includes(gpuKernels)) throw new WebslmError('INVALID_ARGUMENT', `unknown gpuKernels ${JSON.stringify(gpuKernels)} (${GPU_KERNELS.join(', ')})`);
    if (chatTemplate !== undefined && typeof chatTemplate !== 'string') throw new WebslmError('INVALID_ARGUMENT', 'chatTemplate must be a string (a Jinja chat template)');
    if (device !== 'auto' && device !== 'cpu' && device !== 'webgpu') throw new WebslmError('INVALID_ARGUMENT', `unknown device ${JSON.stringify(device)} (auto, webgpu, cpu)`);
    if (device === 'webgpu' && !globalThis.navigator?.gpu) throw new WebslmError('NO_WEBGPU', 'this runtime has no WebGPU (navigator.gpu); use device: "cpu" or "auto"');
    checkAbort(signal);
    const hardware = device !== 'cpu' && (await hardwareGpu());
    if (device === 'cpu') return Generator.#loadOn(source, options, { gpu: false, reason: 'asked for the CPU' });
    if (device === 'webgpu') return Generator.#loadOn(source, options, { gpu: true, hardware, reason: 'asked for WebGPU' });
    if (!hardware) return Generator.#loadOn(source, options, { gpu: false, reason: 'auto: no hardware WebGPU adapter (a software one runs slower than the CPU path)' });
    return Generator.#loadAuto(source, options);
  }

  /**
   * `device: 'auto'` with a hardware adapter: the GPU unless it proves
   * slower. After loading, a short timed decode on the GPU is weighed
   * against the CPU's expected speed (the model's decode bytes over this
   * CPU's calibrated GEMV rate); where the CPU wins, the model is loaded
   * again on the CPU. Both the calibration and the verdict are kept in
   * IndexedDB for the adapter (the verdict for the model's URL or file too),
   * so that the next load goes straight to the faster device.
   */
  static async #loadAuto(source, options) {
    const adapter = await adapterName();
    const key = sourceKey(source);
    const verdictKey = key && `verdict|${adapter}|${options.gpuKernels ?? 'auto'}|${key}`;
    const past = verdictKey && (await figures.get(verdictKey));
    const compared = (v) => `the GPU decoded ${v.gpu.toFixed(1)} tok/s, the CPU is expected at ${v.cpu.toFixed(1)} tok/s`;
    if (past?.backend === 'cpu') return Generator.#loadOn(source, options, { gpu: false, reason: `auto: measured before on this adapter: ${compared(past)}` });
    const g = await Generator.#loadOn(source, options, { gpu: true, hardware: true, orCpu: true, adapter, reason: '' });
    if (g.#engine.device() === 'cpu') {
      // Unless the adapter did not even open (#loadOn says so).
      g.#reason ||= "auto: the GPU cannot hold this model (its header shows a format or size past the adapter's limits)";
      return g;
    }
    if (past?.backend === 'webgpu') {
      g.#reason = `auto: measured before on this adapter: ${compared(past)}`;
      return g;
    }
    try {
      const gpu = await timedDecode(g, options.signal);
      const { decodeBytes, quantization } = g.info;
      const rate = options.__cpuRateForTesting ?? (await cpuRate(adapter, options.threads, quantization));
      const verdict = { gpu, cpu: (rate / decodeBytes) * 1000 };
      verdict.backend = verdict.cpu > verdict.gpu ? 'cpu' : 'webgpu';
      g.#reason = `auto: ${compared(verdict)}`;
      if (verdict.backend === 'cpu' && !rereadable(source)) {
        g.#reason += ', but a stream cannot be read twice: the GPU kept it';
        return g;
      }
      if (verdictKey) await figures.set(verdictKey, verdict);
      if (verdict.backend === 'webgpu') return g;
      await g.dispose();
      return Generator.#loadOn(source, options, { gpu: false, reason: `auto: ${compared(verdict)}` });
    } catch (e) {
      if (e?.code === 'ABORTED') {
        await g.dispose();
        throw e;
      }
      g.#reason = `auto: the GPU, not measured (${e?.message ?? e})`;
      return g;
    }
  }

  /**
   * Loads on the CPU, or with `gpu` on the WebGPU adapter (`orCpu`: the CPU
   * where the GPU cannot hold the model; `adapter`: its name, where the
   * caller has asked for it already).
   */
  static async #loadOn(source, options, { gpu: wantGpu, hardware = false, orCpu = false, adapter, reason }) {
    const { gpuKernels = 'auto', threads, contextLength, chatTemplate, onProgress, signal, size, cache = true, sha256, chunkSize } = options;
    let runtime;
    try {
      checkAbort(signal);
      // The GPU runs the model: the single-threaded builds carry its backend.
      runtime = await engine(wantGpu ? 1 : threadCount(threads));
      const { glue } = runtime;
      let gpu;
      if (wantGpu) {
        // The kernels follow the adapter as the browser describes it
        // (wgpu sees only whether it is a fallback adapter).
        const kernels = gpuKernels === 'auto' ? (hardware ? 'hardware' : 'software') : gpuKernels;
        try {
          gpu = await glue.openGpu(orCpu, kernels);
        } catch (e) {
          if (!orCpu) throw e;
          reason = `auto: the WebGPU adapter did not open (${e?.message ?? e})`;
        }
      }
      // A copy: engine() hands every load the same runtime object.
      runtime = gpu ? { ...runtime, adapter: adapter ?? (await adapterName()), kernels: gpu.kernels(), reason } : { ...runtime, reason };
      const url = httpUrl(source);
      if (url) return new Generator(await loadUrl(glue, url, { contextLength, chatTemplate, cache, sha256, chunkSize }, onProgress, signal, gpu), runtime);
      const { size: total, chunks } = await withSize(await openSource(source, signal), size);
      const loader = new glue.ModelLoader(total, contextLength, sha256, gpu, chatTemplate);
      const report = (loaded) => {
        try {
          onProgress?.({ phase: 'load', loaded, total });
        } catch (e) {
          throw progressError(e);
        }
      };
      let loaded = 0;
      report(loaded);
      for await (const chunk of chunks) {
        checkAbort(signal);
        loader.push(chunk);
        loaded += chunk.byteLength;
        report(loaded);
      }
      checkAbort(signal);
      return new Generator(loader.finish(), runtime);
    } catch (e) {
      throw wrap(e, runtime?.instance);
    }
  }

  /** Architecture, parameters, quantization, context length, backend (and GPU adapter), threads and build. */
  get info() {
    const engine = this.#live();
    const device = engine.device();
    const backend = device === 'cpu' ? { backend: 'cpu' } : { backend: 'webgpu', adapter: this.#adapter ?? device, kernels: this.#kernels };
    const fewer = this.#threadsReason ? { threadsReason: this.#threadsReason } : {};
    return { ...engine.info(), ...backend, deviceReason: this.#reason, threads: this.#threads, ...fewer, build: this.#build, worker: false };
  }

  /** Figures of the last request. */
  get stats() {
    return this.#live().stats();
  }

  /** Async so that a generator in a Worker has the same API. */
  async tokenize(text, { addSpecial = false } = {}) {
    return Array.from(this.#call(() => this.#live().tokenize(text, addSpecial)));
  }

  async detokenize(ids) {
    return this.#call(() => this.#live().detokenize(Uint32Array.from(ids)));
  }

  /** The token ids of `messages` as the model's chat template renders them, up to the reply (a turn's prompt). */
  async chatTokens(messages, { tools } = {}) {
    return Array.from(this.#call(() => this.#live().chatTokens(messages, tools)));
  }

  /** Streams a continuation of `prompt` (text, or token ids). */
  generate(prompt, options = {}) {
    return this.#stream(() => (typeof prompt === 'string' ? this.#live().tokenize(prompt, true) : Uint32Array.from(prompt)), options);
  }

  /**
   * Streams the assistant's reply to `messages` (OpenAI's shape: [{role, content, tool_calls, ...}]),
   * offering `tools` as the model's template does (or, where it knows none,
   * in a system message, the reply then JSON); `toolChoice` 'required' or a
   * named function holds the reply to a call. `parseToolCalls` reads the
   * calls out of the reply. `prefix`: the reply's first words, written for
   * the model, which it continues (they are not among the pieces). The KV
   * cache is reused across turns.
   */
  chat(messages, { tools, toolChoice, prefix, ...options } = {}) {
    const prefixed = (ids) => {
      if (!prefix) return ids;
      if (typeof prefix !== 'string') throw new WebslmError('INVALID_ARGUMENT', 'prefix must be a string');
      if (options.responseFormat) throw new WebslmError('INVALID_ARGUMENT', 'a prefix cannot be combined with a response format, which holds the whole reply');
      const rest = this.#live().tokenize(prefix, false);
      const all = new Uint32Array(ids.length + rest.length);
      all.set(ids);
      all.set(rest, ids.length);
      return all;
    };
    if (!tools) {
      return this.#stream(() => {
        if (toolChoice !== undefined) throw new WebslmError('INVALID_ARGUMENT', 'toolChoice needs tools');
        return prefixed(this.#live().chatTokens(messages, undefined));
      }, options);
    }
    return this.#stream(() => {
      const turn = this.#live().toolChatTokens(messages, tools, toolChoice);
      if (turn.responseFormat && (options.responseFormat || prefix)) {
        throw new WebslmError('INVALID_ARGUMENT', 'this tool choice (or a template that knows no tools) sets the response format itself: leave responseFormat and prefix out');
      }
      return { ...turn, tokens: prefixed(Uint32Array.from(turn.tokens)) };
    }, options);
  }

  /**
   * The text and the tool calls of a reply to a chat turn that offered
   * tools, read in the syntax of the model's template: `{ content,
   * toolCalls }`, each call `{ id, type: 'function', function: { name,
   * arguments } }` with `arguments` the JSON text the model wrote, as
   * OpenAI gives them. `partial`: the reply goes on; text that may begin a
   * call is held back, a call is given once its name is known with the
   * arguments written so far, and the next reading extends this one (what
   * chatCompletions streams as deltas).
   */
  async parseToolCalls(text, { partial = false } = {}) {
    return this.#call(() => this.#live().parseToolCalls(text, partial));
  }

  /** Teacher-forced log-probabilities of `input` (text or ids) and perplexity. */
  async score(input, { topK = 0, signal, queue } = {}) {
    const release = await this.#acquire(queue);
    try {
      checkAbort(signal);
      const ids = typeof input === 'string' ? this.#call(() => this.#live().tokenize(input, true)) : Uint32Array.from(input);
      return this.#gpu ? await this.#callAsync(() => this.#live().scoreAsync(ids, 1, topK)) : this.#call(() => this.#live().score(ids, 1, topK));
    } finally {
      release();
    }
  }

  /** Frees the engine once the requests before it are done; the generator cannot be used afterwards. */
  async dispose() {
    const release = await this.#acquire();
    try {
      if (!this.#disposed) {
        this.#disposed = true;
        // A trapped instance is left alone: calling into it again could trap again.
        if (!this.#instance.poisoned) this.#engine.free();
      }
    } finally {
      // Requests queued behind the disposal fail with a clear error instead of waiting forever.
      release();
    }
  }

  #live() {
    if (this.#disposed) throw new WebslmError('INVALID_ARGUMENT', 'this generator has been disposed');
    if (this.#instance.poisoned) throw poisonedError(this.#instance);
    return this.#engine;
  }

  #call(f) {
    try {
      return f();
    } catch (e) {
      throw wrap(e, this.#instance);
    }
  }

  /** Whether the model runs on the GPU, whose engine calls are promises (startAsync, nextAsync, scoreAsync). */
  get #gpu() {
    return this.#adapter !== undefined;
  }

  /** #call for the engine's promises. */
  async #callAsync(f) {
    try {
      return await f();
    } catch (e) {
      throw wrap(e, this.#instance);
    }
  }

  /**
   * Waits for every request before this one (requests are queued, never
   * interleaved) and resolves to the function that lets the next one run.
   * With `queue === false` it rejects with BUSY instead of waiting.
   */
  #acquire(queue = true) {
    if (queue === false && this.#pending > 0) {
      return Promise.reject(new WebslmError('BUSY', 'another request is running; wait for it, or leave the queue option at its default to queue this one'));
    }
    this.#pending++;
    const previous = this.#queue;
    let release;
    this.#queue = new Promise((resolve) => (release = resolve));
    return previous.then(() => () => {
      this.#pending--;
      release();
    });
  }

  /**
   * The engine runs the prompt a batch (256 tokens) a call, answering
   * `{ prefill }` for each, so that a long prompt reports its progress and
   * an abort stops it between batches; the cache keeps the batches that ran.
   */
  /**
   * `prompt()` gives the token ids, or `{ tokens, responseFormat,
   * renderControlTokens }` where the request itself sets them (a chat turn
   * with tools).
   */
  #stream(prompt, options) {
    const { signal, queue, onProgress, ...rest } = options;
    const start = () => {
      const p = prompt();
      if (!p.tokens) return [p, rest];
      const turn = { ...rest, responseFormat: p.responseFormat ?? rest.responseFormat };
      if (p.renderControlTokens) turn.renderControlTokens = true;
      return [Uint32Array.from(p.tokens), turn];
    };
    const self = this;
    // The request joins the queue when iteration starts; errors surface there
    // too (the engine rejects misspelt options).
    return (async function* () {
      const report = prefillReporter(onProgress);
      const release = await self.#acquire(queue);
      try {
        checkAbort(signal);
        const engine = self.#live();
        const gpu = self.#gpu;
        if (gpu) await self.#callAsync(() => engine.startAsync(...start()));
        else self.#call(() => engine.start(...start()));
        try {
          for (;;) {
            checkAbort(signal);
            const piece = gpu ? await self.#callAsync(() => engine.nextAsync()) : self.#call(() => engine.next());
            if (piece === null) return;
            if (piece.prefill) report(piece.prefill);
            else yield piece;
            // Let the event loop breathe (and an abort arrive) between tokens and batches.
            await nextTurn();
          }
        } finally {
          if (!self.#instance.poisoned) engine.cancel();
        }
      } finally {
        release();
      }
    })();
  }
}

/**
 * A model's tokenizer alone, built from the header of its GGUF file: the
 * whole of a vocabulary-only file (llama.cpp's `ggml-vocab-*.gguf`), the
 * first megabytes of a model. Tokenizes exactly as llama.cpp does.
 */
export class Tokenizer {
  #inner;
  #instance;

  constructor(inner, instance) {
    this.#inner = inner;
    this.#instance = instance;
  }

  /**
   * `source` as for `Generator.load`; reading stops once the header is in.
   * `options`: `signal`, and `size` for a stream of unknown length.
   */
  static async load(source, { signal, size } = {}) {
    let runtime;
    try {
      checkAbort(signal);
      runtime = await anyEngine();
      const url = httpUrl(source);
      const opened = url ? await fetchSource(url, signal) : await openSource(source, signal);
      const { size: total, chunks } = await withSize(opened, size);
      const loader = new runtime.glue.TokenizerLoader(total);
      try {
        for await (const chunk of chunks) {
          checkAbort(signal);
          if (loader.push(chunk)) break;
        }
        return new Tokenizer(loader.finish(), runtime.instance);
      } finally {
        loader.free();
      }
    } catch (e) {
      throw wrap(e, runtime?.instance);
    }
  }

  /** Text to ids, as `llama_tokenize(text, addSpecial, parseSpecial)`. */
  tokenize(text, { addSpecial = false, parseSpecial = false } = {}) {
    return Array.from(this.#call(() => this.#inner.tokenize(text, addSpecial, parseSpecial)));
  }

  /** Ids to text, special tokens rendered. */
  detokenize(ids) {
    return this.#call(() => this.#inner.detokenize(Uint32Array.from(ids)));
  }

  get vocabSize() {
    return this.#call(() => this.#inner.vocabSize);
  }

  dispose() {
    if (!this.#instance.poisoned) this.#inner?.free();
    this.#inner = undefined;
  }

  #call(f) {
    if (!this.#inner) throw new WebslmError('INVALID_ARGUMENT', 'this tokenizer has been disposed');
    if (this.#instance.poisoned) throw poisonedError(this.#instance);
    try {
      return f();
    } catch (e) {
      throw wrap(e, this.#instance);
    }
  }
}
