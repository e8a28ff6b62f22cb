// The main-thread side of `Generator.load(source, { worker: true })`: a proxy
// with the Generator's API whose engine runs in a dedicated Worker
// (worker.js), so loading and generation never block the page. Requests are
// messages tagged with an id; the worker answers with events (progress,
// pieces) and then one result or error, which carries the latest stats.
import { ChatCompletions, WebslmError } from './index.js';

const disposed = () => new WebslmError('INVALID_ARGUMENT', 'this generator has been disposed');
const aborted = (signal) => new WebslmError('ABORTED', 'aborted', { cause: signal.reason });
const died = (reason) =>
  reason instanceof WebslmError ? reason : new WebslmError('INTERNAL', `the worker stopped unexpectedly (${reason}); load the model again`);

/**
 * Starts worker.js: a module Web Worker where there is one (browsers, Deno),
 * else a node:worker_threads Worker. The `new Worker(new URL(...))` form is
 * the one bundlers recognise and bundle.
 */
async function spawn(message, death) {
  if (typeof Worker === 'function') {
    const url = new URL('./worker.js', import.meta.url);
    // A page's Content-Security-Policy that refuses the Worker says so only in this event.
    let refused;
    const onViolation = (e) => e.blockedURI === url.href && (refused = e);
    globalThis.document?.addEventListener('securitypolicyviolation', onViolation);
    const worker = new Worker(url, { type: 'module' });
    worker.onmessage = (e) => {
      globalThis.document?.removeEventListener('securitypolicyviolation', onViolation);
      message(e.data);
    };
    worker.onmessageerror = () => death('a reply could not be read');
    worker.onerror = (e) => {
      e.preventDefault();
      globalThis.document?.removeEventListener('securitypolicyviolation', onViolation);
      if (refused) {
        const why = `the page's Content-Security-Policy refuses the engine's Worker (${refused.effectiveDirective}): allow 'self' there, or load without worker: true`;
        return death(new WebslmError('BLOCKED', why));
      }
      // A worker that cannot load gets a plain Event, without a message.
      death(e.message || 'worker.js did not run');
    };
    return worker;
  }
  const { Worker: NodeWorker } = await import('node:worker_threads');
  // Node before 22 passes an inherited --input-type to the worker's file, which it refuses.
  const worker = new NodeWorker(new URL('./worker.js', import.meta.url), { execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')) });
  worker.on('message', message);
  worker.on('messageerror', () => death('a reply could not be read'));
  worker.on('error', (e) => death(e.message));
  worker.on('exit', (code) => death(`exit code ${code}`));
  return worker;
}

/** Whether ReadableStreams can be transferred to a Worker (Safari cannot). */
async function streamsTransfer() {
  try {
    const stream = new ReadableStream();
    await structuredClone(stream, { transfer: [stream] }).cancel();
    return true;
  } catch {
    return false;
  }
}

/** What `source` becomes in the message to the worker, and what is transferred rather than copied. */
async function sendable(source) {
  if (source instanceof URL) return { source: source.href };
  // A page's relative URL would otherwise resolve against worker.js.
  if (typeof source === 'string' && globalThis.document) return { source: new URL(source, document.baseURI).href };
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) {
    if (await streamsTransfer()) return { source, transfer: [source] };
    // Held whole until the worker has read it, like a stream without a `size` on the main thread.
    const blob = await new Response(source).blob().catch((e) => {
      throw new WebslmError('NETWORK', `could not read the stream: ${e.message}`, { cause: e });
    });
    return { source: blob };
  }
  return { source };
}

/** Calls a generation's onProgress; a throw fails the request, as index.js's prefillReporter does. */
function progress(onProgress, { done, total }) {
  try {
    onProgress({ phase: 'prefill', done, total });
  } catch (e) {
    throw e instanceof WebslmError ? e : new WebslmError('INVALID_ARGUMENT', `onProgress threw: ${e?.message ?? e}`, { cause: e });
  }
}

/** Lines up one streaming request's messages for an async generator to await in order. */
class Inbox {
  #items = [];
  #waiting = null;

  put(item) {
    if (this.#waiting) this.#waiting(item);
    else this.#items.push(item);
    this.#waiting = null;
  }

  take() {
    return this.#items.length ? this.#items.shift() : new Promise((resolve) => (this.#waiting = resolve));
  }
}

/** A Generator whose engine runs in a Worker; same API, and `info.worker` is true. */
export class RemoteGenerator {
  #worker;
  #info;
  #stats;
  #requests = new Map();
  #nextId = 0;
  /** Why new requests are refused: set by dispose() or by the worker's death. */
  #failure = null;
  #disposal = null;

  constructor() {
    /** OpenAI-style `chatCompletions.create({ messages, stream, max_tokens, ... })`. */
    this.chatCompletions = new ChatCompletions(this);
  }

  /** Called by Generator.load for `worker: true`; the options are Generator.load's. */
  static async load(source, { onProgress, signal, worker: _, ...options } = {}) {
    if (signal?.aborted) throw aborted(signal);
    const remote = new RemoteGenerator();
    remote.#worker = await spawn(
      (message) => remote.#receive(message),
      (reason) => remote.#fail(died(reason)),
    );
    // A throwing callback fails the load instead of escaping from the message handler.
    const progress = (event) => {
      try {
        onProgress?.(event);
      } catch (e) {
        remote.#fail(e instanceof WebslmError ? e : new WebslmError('INVALID_ARGUMENT', `onProgress threw: ${e?.message ?? e}`, { cause: e }));
      }
    };
    // An aborted load ends the worker at once: it may be in the middle of a long synchronous step.
    const abort = () => remote.#fail(aborted(signal));
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
    try {
      const { source: sent, transfer } = await sendable(source);
      const info = await remote.#request('load', { source: sent, options }, { transfer, event: progress }).done;
      remote.#info = { ...info, worker: true };
      return remote;
    } catch (e) {
      remote.#fail(e);
      throw e;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /** Architecture, parameters, quantization, context length, backend; `worker: true`. */
  get info() {
    return { ...this.#alive().#info };
  }

  /** Figures of the last request, as the worker reported them when it ended. */
  get stats() {
    return { ...this.#alive().#stats };
  }

  async tokenize(text, options) {
    return this.#request('tokenize', { text, options }).done;
  }

  async detokenize(ids) {
    return this.#request('detokenize', { ids }).done;
  }

  /** Streams a continuation of `prompt` (text, or token ids). */
  generate(prompt, options) {
    return this.#stream('generate', prompt, options);
  }

  /** Streams the assistant's reply to `messages`; the worker's KV cache is reused across turns. */
  chat(messages, options) {
    return this.#stream('chat', messages, options);
  }

  /** A turn's prompt tokens, as Generator.chatTokens gives them. */
  async chatTokens(messages, options) {
    return this.#request('chatTokens', { messages, options }).done;
  }

  /** The text and tool calls of a reply, as Generator.parseToolCalls reads them. */
  async parseToolCalls(text, options) {
    return this.#request('parseToolCalls', { text, options }).done;
  }

  /** Teacher-forced log-probabilities of `input` (text or ids) and perplexity. */
  async score(input, { signal, ...options } = {}) {
    return this.#request('score', { input, options }, { signal }).done;
  }

  /** Ends the worker once the requests already sent are done; later requests are refused. */
  dispose() {
    this.#failure ??= disposed();
    this.#disposal ??= (async () => {
      await Promise.allSettled([...this.#requests.values()].map((r) => r.done));
      await this.#fail(this.#failure);
    })();
    return this.#disposal;
  }

  #alive() {
    if (!this.#worker) throw this.#failure;
    return this;
  }

  /**
   * Sends one request: `done` resolves to its result, `event` receives its
   * progress or pieces, `abort()` (or an abort of `signal`) aborts it in the
   * worker.
   */
  #request(type, payload, { signal, transfer = [], event } = {}) {
    const id = this.#nextId++;
    const abort = () => this.#worker?.postMessage({ id, type: 'abort' });
    const request = { event, abort };
    request.done = new Promise((resolve, reject) => Object.assign(request, { resolve, reject }));
    if (this.#failure) request.reject(this.#failure);
    else if (signal?.aborted) request.reject(aborted(signal));
    else {
      try {
        this.#worker.postMessage({ id, type, ...payload }, transfer);
        this.#requests.set(id, request);
        signal?.addEventListener('abort', abort, { once: true });
        const forget = () => signal?.removeEventListener('abort', abort);
        request.done.then(forget, forget);
      } catch (e) {
        request.reject(new WebslmError('INVALID_ARGUMENT', `the request cannot be sent to the worker: ${e.message}`, { cause: e }));
      }
    }
    return request;
  }

  #receive({ id, type, value, result, error, stats }) {
    const request = this.#requests.get(id);
    if (!request) return;
    if (type === 'event') return request.event?.(value);
    this.#requests.delete(id);
    if (stats) this.#stats = stats;
    if (type === 'result') return request.resolve(result);
    const e = new WebslmError(error.code, error.message);
    // A trap leaves the engine unusable: so is everything queued behind it.
    if (e.code === 'INTERNAL') this.#fail(e);
    request.reject(e);
  }

  /** Terminates the worker; pending and later requests reject with `error`. */
  #fail(error) {
    if (!this.#worker) return;
    const worker = this.#worker;
    this.#worker = null;
    this.#failure = error;
    for (const request of this.#requests.values()) request.reject(error);
    this.#requests.clear();
    return worker.terminate();
  }

  /**
   * The worker pushes pieces as it makes them; the iterator hands them out in
   * order. Leaving early (break, return) or aborting cancels the generation in
   * the worker, and waits for it to end there so that `stats` are current.
   */
  #stream(type, input, { signal, onProgress, ...options } = {}) {
    const self = this;
    return (async function* () {
      // A function cannot be posted: the worker posts the prompt's progress back when asked to.
      if (onProgress !== undefined && typeof onProgress !== 'function') throw new WebslmError('INVALID_ARGUMENT', 'onProgress must be a function');
      const inbox = new Inbox();
      const request = self.#request(type, { input, options, progress: !!onProgress }, { signal, event: (item) => inbox.put(item) });
      request.done.then(
        () => inbox.put({ end: true }),
        (error) => inbox.put({ end: true, error }),
      );
      let item;
      try {
        // What arrives after an abort is dropped: a Generator on the main thread would not have made it.
        while (!(item = await inbox.take()).end) {
          if (signal?.aborted) continue;
          if (item.prefill) progress(onProgress, item.prefill);
          else yield item.piece;
        }
      } finally {
        if (!item.end) {
          request.abort();
          while (!(await inbox.take()).end);
        }
      }
      if (signal?.aborted) throw aborted(signal);
      if (item.error) throw item.error;
    })();
  }
}
