// The Prompt API (https://github.com/webmachinelearning/prompt-api, Chrome's
// built-in `LanguageModel`) over webslm, in any browser, Node or Deno: a
// session keeps its conversation and prompts a model webslm runs here.
// Which model: `create({ model, loadOptions })`, or the defaults given to
// `installPolyfill({ model, loadOptions })`; `maxTokens` bounds a reply
// (1024 by default; the rest of the context at most). Sessions of one model share one
// Generator (one engine and KV cache); each renders its own conversation
// through the model's chat template, so a prompt after another session's
// prefills that session's history again.
import { Generator, WebslmError } from './index.js';

/** The sampling parameters `params()` reports; Chrome's built-in model reports the same. */
const PARAMS = Object.freeze({ defaultTopK: 3, maxTopK: 128, defaultTemperature: 1, maxTemperature: 2 });
const defaults = { model: undefined, loadOptions: {}, maxTokens: 1024 };
/** Generators by model source and load options, shared by the sessions of each: { gen: Promise<Generator>, users }. */
const loaded = new Map();
/** The entry of `loaded` that holds each loaded Generator, for clone(). */
const holders = new WeakMap();

const domError = (name, message) => new DOMException(message, name);

/** The `QuotaExceededError` of the explainer: a DOMException with `requested` and `quota`. */
function quotaError(requested, quota) {
  return Object.assign(domError('QuotaExceededError', `the input needs ${requested} tokens, ${quota} are available`), { requested, quota });
}

/** A webslm error in the Prompt API's terms; others as they are. */
function translated(e) {
  if (!(e instanceof WebslmError)) return e;
  const names = { ABORTED: 'AbortError', NETWORK: 'NetworkError', CONTEXT_OVERFLOW: 'QuotaExceededError', INVALID_ARGUMENT: 'NotSupportedError', UNSUPPORTED_ARCH: 'NotSupportedError', UNSUPPORTED_QUANT: 'NotSupportedError', OUT_OF_MEMORY: 'NotSupportedError', BUSY: 'InvalidStateError' };
  return Object.assign(domError(names[e.code] ?? 'OperationError', e.message), { cause: e });
}

function aborted(signal) {
  return signal.reason ?? domError('AbortError', 'aborted');
}

/** `input` as messages: a string is one user message; content is text (a string or `[{ type: 'text', value }]`). */
function messagesOf(input, { allowSystem = false } = {}) {
  const list = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input : [{ role: 'user', content: String(input) }];
  return list.map((m, i) => {
    const role = m?.role ?? 'user';
    if (!['system', 'user', 'assistant'].includes(role)) throw new TypeError(`unknown role ${JSON.stringify(role)}`);
    if (role === 'system' && !(allowSystem && i === 0)) {
      throw allowSystem ? new TypeError('a system prompt must come first') : domError('NotSupportedError', 'a system prompt can only be given in initialPrompts');
    }
    if (m.prefix && !(role === 'assistant' && i === list.length - 1)) throw domError('SyntaxError', 'prefix is only for a last assistant message');
    let content = m.content;
    if (Array.isArray(content)) {
      content = content
        .map((part) => {
          if (part?.type !== 'text') throw domError('NotSupportedError', `${part?.type} input: this model reads text only`);
          if (typeof part.value !== 'string') throw new TypeError('a text part needs a string value');
          return part.value;
        })
        .join('');
    }
    return { role, content: String(content ?? ''), prefix: !!m.prefix };
  });
}

/** A `responseConstraint` as webslm's response format: a RegExp's source, or a JSON schema. */
function formatOf(constraint) {
  if (constraint === undefined) return undefined;
  if (constraint instanceof RegExp) {
    // The whole reply matches: the anchors are implied.
    return { type: 'regex', pattern: constraint.source.replace(/^\^/, '').replace(/\$$/, '') };
  }
  if (constraint !== null && typeof constraint === 'object') return { type: 'json_schema', schema: constraint };
  throw new TypeError('responseConstraint must be a RegExp or a JSON schema object');
}

/** The instruction that tells the model about a constraint, where the input carries it. */
function constraintNote(constraint) {
  return constraint instanceof RegExp
    ? `Reply with text matching the regular expression ${constraint}.`
    : `Reply with JSON that follows this JSON schema: ${JSON.stringify(constraint)}`;
}

function monitorTarget(monitor) {
  if (typeof monitor !== 'function') return undefined;
  const target = new EventTarget();
  monitor(target);
  return target;
}

/** A `downloadprogress` event: a ProgressEvent where the runtime has one, else an Event with the same fields. */
function progressEvent(loaded) {
  if (typeof ProgressEvent === 'function') return new ProgressEvent('downloadprogress', { loaded, total: 1, lengthComputable: true });
  return Object.assign(new Event('downloadprogress'), { loaded, total: 1, lengthComputable: true });
}

/** One more session on the model: its generator (loading it unless a session has) and the release that disposes of it after the last. */
function acquire(model, loadOptions, onProgress, signal) {
  const key = JSON.stringify([typeof model === 'string' ? model : String(model), loadOptions]);
  let entry = loaded.get(key);
  if (!entry) {
    entry = { key, gen: Generator.load(model, { ...loadOptions, onProgress, signal }), users: 0 };
    loaded.set(key, entry);
    entry.gen.then(
      (gen) => holders.set(gen, entry),
      () => loaded.get(key) === entry && loaded.delete(key),
    );
  }
  return { gen: entry.gen, release: hold(entry) };
}

function hold(entry) {
  entry.users++;
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (--entry.users > 0) return;
    if (loaded.get(entry.key) === entry) loaded.delete(entry.key);
    (await entry.gen.catch(() => null))?.dispose();
  };
}

export class LanguageModel extends EventTarget {
  #gen;
  #release;
  #history;
  #params;
  #destroyed = null;
  #controllers = new Set();
  #queue = Promise.resolve();
  #usage = 0;
  onquotaoverflow = null;
  oncontextoverflow = null;

  /** Use LanguageModel.create(). */
  constructor(token, gen, release, history, { temperature, topK, maxTokens }) {
    if (token !== CONSTRUCT) throw new TypeError('Illegal constructor: use LanguageModel.create()');
    super();
    this.#gen = gen;
    this.#release = release;
    this.#history = history;
    this.#params = { temperature, topK, maxTokens };
  }

  /** 'available' where the model's file is cached whole, 'downloadable' where it is not (or in part), 'unavailable' where no model is set or the options ask for what it cannot do. */
  static async availability(options = {}) {
    const model = options.model ?? defaults.model;
    if (model === undefined || typeof WebAssembly !== 'object') return 'unavailable';
    const kinds = [...(options.expectedInputs ?? []), ...(options.expectedOutputs ?? [])].map((e) => e?.type ?? 'text');
    if (kinds.some((t) => t !== 'text')) return 'unavailable';
    if (typeof model !== 'string' || !/^https?:/.test(new URL(model, globalThis.location?.href ?? 'file:///').href)) return 'available';
    try {
      const url = new URL(model, globalThis.location?.href).href;
      const cached = (await Generator.cache.list()).find((m) => m.url === url);
      return cached?.complete ? 'available' : 'downloadable';
    } catch {
      return 'downloadable';
    }
  }

  static async params() {
    return (await LanguageModel.availability()) === 'unavailable' ? null : { ...PARAMS };
  }

  /**
   * A session. Beside the explainer's options: `model` (a URL, path or any
   * source Generator.load takes), `loadOptions` (its options) and
   * `maxTokens` (a reply's limit).
   */
  static async create(options = {}) {
    const { signal, monitor, initialPrompts = [], model = defaults.model, loadOptions = defaults.loadOptions, maxTokens = defaults.maxTokens } = options;
    if (!(Number.isInteger(maxTokens) && maxTokens > 0)) throw new RangeError('maxTokens must be a positive integer');
    if (signal?.aborted) throw aborted(signal);
    let { temperature = PARAMS.defaultTemperature, topK = PARAMS.defaultTopK } = options;
    if (!(temperature >= 0)) throw new RangeError('temperature must be 0 or more');
    if (!(topK >= 1)) throw new RangeError('topK must be 1 or more');
    temperature = Math.min(temperature, PARAMS.maxTemperature);
    topK = Math.min(Math.floor(topK), PARAMS.maxTopK);
    if ((await LanguageModel.availability(options)) === 'unavailable') {
      throw domError('NotSupportedError', model === undefined ? 'no model: pass create({ model }) or installPolyfill({ model })' : 'this model reads and writes text only');
    }
    const history = messagesOf(initialPrompts, { allowSystem: true });
    if (history.some((m) => m.prefix)) throw domError('SyntaxError', 'initialPrompts cannot end with a prefix');
    const progress = monitorTarget(monitor);
    progress?.dispatchEvent(progressEvent(0));
    const onProgress = progress && (({ loaded, total }) => total && loaded < total && progress.dispatchEvent(progressEvent(loaded / total)));
    const { gen: pending, release } = acquire(model, loadOptions, onProgress, signal);
    let gen;
    try {
      gen = await pending;
      if (signal?.aborted) throw aborted(signal);
    } catch (e) {
      await release();
      throw translated(e);
    }
    progress?.dispatchEvent(progressEvent(1));
    const session = new LanguageModel(CONSTRUCT, gen, release, history, { temperature, topK, maxTokens });
    try {
      const usage = await session.#measure(history);
      if (usage > session.inputQuota) throw quotaError(usage, session.inputQuota);
      session.#usage = usage;
    } catch (e) {
      session.destroy();
      throw translated(e);
    }
    signal?.addEventListener('abort', () => session.destroy(aborted(signal)), { once: true });
    return session;
  }

  get temperature() {
    return this.#params.temperature;
  }

  get topK() {
    return this.#params.topK;
  }

  /** Tokens the conversation takes, control tokens included. */
  get inputUsage() {
    return this.#usage;
  }

  get contextUsage() {
    return this.#usage;
  }

  /** Tokens the session can hold: the model's context. */
  get inputQuota() {
    return this.#gen.info.contextLength;
  }

  get contextWindow() {
    return this.inputQuota;
  }

  /** The reply to `input` (a string or messages), whole. */
  async prompt(input, options = {}) {
    let reply = '';
    for await (const piece of this.#reply(input, options)) reply += piece;
    return reply;
  }

  /** The reply to `input` as a ReadableStream of its pieces. */
  promptStreaming(input, options = {}) {
    const pieces = this.#reply(input, options);
    return new ReadableStream({
      async pull(controller) {
        try {
          const { value, done } = await pieces.next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (e) {
          controller.error(e);
        }
      },
      async cancel() {
        await pieces.return();
      },
    });
  }

  /** Adds `input` to the conversation without a reply. */
  async append(input, { signal } = {}) {
    const messages = messagesOf(input);
    if (messages.some((m) => m.prefix)) throw domError('SyntaxError', 'append takes no prefix');
    return this.#exclusive(signal, async () => {
      await this.#fit(messages, signal);
      this.#history.push(...messages);
      this.#usage = await this.#measure(this.#history);
    });
  }

  /** Tokens `input` would add to the conversation (with the constraint's instruction, unless omitted). */
  async measureInputUsage(input, options = {}) {
    this.#check();
    if (options.signal?.aborted) throw aborted(options.signal);
    const messages = this.#withConstraint(messagesOf(input), options);
    return (await this.#measure([...this.#history, ...messages])) - this.#usage;
  }

  measureContextUsage(input, options = {}) {
    return this.measureInputUsage(input, options);
  }

  /** A session with this one's conversation and parameters, sharing its model. */
  async clone({ signal } = {}) {
    this.#check();
    if (signal?.aborted) throw aborted(signal);
    const release = hold(holders.get(this.#gen));
    const copy = new LanguageModel(CONSTRUCT, this.#gen, release, this.#history.map((m) => ({ ...m })), this.#params);
    copy.#usage = this.#usage;
    signal?.addEventListener('abort', () => copy.destroy(aborted(signal)), { once: true });
    return copy;
  }

  /** Ends the session: running and later calls reject with an AbortError; the model is freed once no session uses it. */
  destroy(reason = domError('AbortError', 'the session was destroyed')) {
    if (this.#destroyed) return;
    this.#destroyed = reason;
    for (const c of this.#controllers) c.abort(reason);
    this.#release();
  }

  #check() {
    if (this.#destroyed) throw this.#destroyed;
  }

  #withConstraint(messages, { responseConstraint, omitResponseConstraintInput }) {
    if (omitResponseConstraintInput && responseConstraint === undefined) throw new TypeError('omitResponseConstraintInput needs a responseConstraint');
    if (responseConstraint === undefined || omitResponseConstraintInput) return messages;
    const note = constraintNote(responseConstraint);
    const last = messages.findLastIndex((m) => m.role === 'user');
    return messages.map((m, i) => (i === last ? { ...m, content: `${m.content}\n\n${note}` } : m));
  }

  /**
   * The tokens of `messages` as the model's chat template renders them, up
   * to the reply; none for no messages (which some templates, Gemma 3's
   * among them, cannot render).
   */
  async #measure(messages) {
    if (messages.length === 0) return 0;
    return (await this.#gen.chatTokens(messages.map(({ role, content }) => ({ role, content })))).length;
  }

  /**
   * Drops the oldest non-system turns until `messages` fit beside the
   * conversation (a `quotaoverflow` event says so); a QuotaExceededError
   * where they cannot.
   */
  async #fit(messages, signal) {
    const needed = (await this.#measure([...this.#history, ...messages])) - this.#usage;
    const system = this.#history[0]?.role === 'system' ? 1 : 0;
    const floor = await this.#measure(this.#history.slice(0, system));
    if (floor + needed > this.inputQuota) throw quotaError(needed, this.inputQuota - this.#usage);
    let dropped = false;
    while ((await this.#measure([...this.#history, ...messages])) > this.inputQuota && this.#history.length > system) {
      if (signal?.aborted) throw aborted(signal);
      // A user turn and the reply to it go together.
      this.#history.splice(system, this.#history[system + 1]?.role === 'assistant' ? 2 : 1);
      dropped = true;
    }
    if (dropped) {
      this.#usage = await this.#measure(this.#history);
      for (const type of ['quotaoverflow', 'contextoverflow']) {
        const event = new Event(type);
        this.dispatchEvent(event);
        this[`on${type}`]?.call(this, event);
      }
    }
  }

  /** Runs `f` after the session's earlier calls, aborted by `signal` or by destroy(). */
  #exclusive(signal, f) {
    this.#check();
    if (signal?.aborted) return Promise.reject(aborted(signal));
    const controller = new AbortController();
    const forward = () => controller.abort(aborted(signal));
    signal?.addEventListener('abort', forward, { once: true });
    this.#controllers.add(controller);
    const run = this.#queue.then(async () => {
      this.#check();
      if (controller.signal.aborted) throw controller.signal.reason;
      try {
        return await f(controller.signal);
      } catch (e) {
        throw controller.signal.aborted ? controller.signal.reason : translated(e);
      }
    });
    const done = () => {
      this.#controllers.delete(controller);
      signal?.removeEventListener('abort', forward);
    };
    this.#queue = run.then(done, done);
    return run;
  }

  /** The reply's pieces; the turn joins the conversation once it is whole. */
  async *#reply(input, options) {
    const { signal, responseConstraint } = options;
    const format = formatOf(responseConstraint);
    let messages = this.#withConstraint(messagesOf(input), options);
    const prefix = messages.at(-1)?.prefix ? messages.at(-1).content : undefined;
    if (prefix !== undefined) {
      if (format) throw domError('NotSupportedError', 'a prefix cannot be combined with a responseConstraint');
      messages = messages.slice(0, -1);
    }
    const queue = [];
    let wake;
    let finished = false;
    let failure;
    // Leaving early (a cancelled stream) stops the reply.
    const left = new AbortController();
    const run = this.#exclusive(signal ? AbortSignal.any([signal, left.signal]) : left.signal, async (aborting) => {
      await this.#fit(messages, aborting);
      const conversation = [...this.#history, ...messages].map(({ role, content }) => ({ role, content }));
      const room = this.inputQuota - (await this.#measure([...this.#history, ...messages]));
      const { temperature, topK, maxTokens } = this.#params;
      const sampling = temperature === 0 ? { temperature: 0 } : { temperature, topK };
      let reply = prefix ?? '';
      for await (const piece of this.#gen.chat(conversation, { ...sampling, seed: Math.floor(Math.random() * 2 ** 32), maxTokens: Math.max(1, Math.min(room, maxTokens)), responseFormat: format, prefix, signal: aborting })) {
        reply += piece.text;
        if (piece.text) {
          queue.push(piece.text);
          wake?.();
        }
      }
      this.#history.push(...messages, { role: 'assistant', content: reply, prefix: false });
      this.#usage = await this.#measure(this.#history);
    });
    run.then(
      () => (finished = true),
      (e) => (failure = e),
    ).finally(() => wake?.());
    try {
      for (;;) {
        if (queue.length) yield queue.shift();
        else if (failure) throw failure;
        else if (finished) return;
        else await new Promise((resolve) => (wake = resolve));
      }
    } finally {
      wake = undefined;
      if (!finished && !failure) left.abort(domError('AbortError', 'the reply was not read to its end'));
      await run.catch(() => {});
    }
  }
}

const CONSTRUCT = Symbol('LanguageModel');

/**
 * Sets `globalThis.LanguageModel` to webslm's where the runtime has none,
 * with `model`, `loadOptions` and `maxTokens` as `create()`'s defaults.
 * Chrome has its own (from 138), whose model may be unavailable (not yet
 * downloaded, or a device it does not run on: headless Chromium 156 says
 * 'unavailable'); it stays unless `force` is true. Returns the
 * `LanguageModel` now in place.
 */
export function installPolyfill({ model, loadOptions = {}, maxTokens = 1024, force = false } = {}) {
  Object.assign(defaults, { model, loadOptions, maxTokens });
  if (force || !globalThis.LanguageModel) globalThis.LanguageModel = LanguageModel;
  return globalThis.LanguageModel;
}
