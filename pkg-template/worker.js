// The worker side of `Generator.load(source, { worker: true })`: a module
// Worker (a Web Worker in browsers and Deno, node:worker_threads in Node) that
// hosts a real Generator and answers remote.js's requests, so the engine never
// runs on the page's main thread. Every request gets its own AbortController,
// which an `abort` message for its id aborts (an aborted load ends the worker
// instead).
import { Generator, WebslmError } from './index.js';

let generator;
const controllers = new Map();

const handlers = {
  async load({ source, options }, { event }) {
    generator = await Generator.load(source, { ...options, onProgress: event });
    return generator.info;
  },
  tokenize: ({ text, options }) => generator.tokenize(text, options),
  detokenize: ({ ids }) => generator.detokenize(ids),
  parseToolCalls: ({ text, options }) => generator.parseToolCalls(text, options),
  chatTokens: ({ messages, options }) => generator.chatTokens(messages, options),
  score: ({ input, options }, { signal }) => generator.score(input, { ...options, signal }),
  generate: ({ input, options, progress }, { signal, event }) => forward(generator.generate(input, streamOptions(options, progress, signal, event)), event),
  chat: ({ input, options, progress }, { signal, event }) => forward(generator.chat(input, streamOptions(options, progress, signal, event)), event),
};

/** A streaming request's options: with `progress`, the prompt's progress goes back as `{ prefill }` events. */
function streamOptions(options, progress, signal, event) {
  return progress ? { ...options, signal, onProgress: ({ done, total }) => event({ prefill: { done, total } }) } : { ...options, signal };
}

async function forward(pieces, event) {
  for await (const piece of pieces) event({ piece });
}

/** Runs one request; its end (a result or an error) carries the generator's stats for the proxy to cache. */
async function handle({ id, type, ...payload }, post) {
  if (type === 'abort') return controllers.get(id)?.abort();
  const controller = new AbortController();
  controllers.set(id, controller);
  try {
    const result = await handlers[type](payload, { signal: controller.signal, event: (value) => post({ id, type: 'event', value }) });
    post({ id, type: 'result', result, stats: generator?.stats });
  } catch (e) {
    const error = { code: e instanceof WebslmError ? e.code : 'INTERNAL', message: e?.message ?? String(e) };
    // After a trap the engine is unusable, and the proxy ends this worker.
    post({ id, type: 'error', error, stats: error.code === 'INTERNAL' ? undefined : generator?.stats });
  } finally {
    controllers.delete(id);
  }
}

if (typeof postMessage === 'function') {
  self.onmessage = (e) => handle(e.data, (message) => self.postMessage(message));
} else {
  const { parentPort } = await import('node:worker_threads');
  parentPort.on('message', (message) => handle(message, (reply) => parentPort.postMessage(reply)));
}
