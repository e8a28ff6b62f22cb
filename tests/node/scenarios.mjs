// What the npm package (built into pkg/ by scripts/build-pkg.sh) does alike
// with the engine on the calling thread and in a Worker: model sources,
// progress, generation against llama.cpp's tokens, chat cache reuse,
// queueing, aborts, error codes, dispose and the OpenAI shape. scenarios()
// registers them as node:test tests for one mode; Node runs them from
// generator.test.mjs and worker.test.mjs, Deno from tests/deno/. In worker
// mode, tokens, scores and info are also checked against a generator on the
// main thread.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Generator, WebslmError } from '../../pkg/index.js';

export const root = new URL('../../', import.meta.url);
export const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
export const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
export const fox = fixture.prompts.find((p) => p.name === 'raw_fox');

export async function collect(iterable) {
  const pieces = [];
  for await (const p of iterable) pieces.push(p);
  return pieces;
}

export async function rejectsWith(promise, code, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 0);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/**
 * Registers the shared tests with the engine in a Worker (`worker: true`) or
 * not; returns `{ gen }`, the generator they share, for a file's own tests.
 */
export function scenarios({ worker }) {
  let gen;
  let local;
  let bytes;
  let server;
  let base;
  const progress = [];
  const load = (source, options = {}) => Generator.load(source, { worker, ...options });

  /** A load expected to fail; one that succeeds is disposed, so that its worker cannot keep the tests running. */
  const loadRejects = (source, options, code, message) =>
    rejectsWith(load(source, options).then(async (g) => (await g.dispose(), g)), code, message);

  /**
   * SmolLM2's bytes with the value after header key `key` (skipping `gap`
   * bytes) replaced by `value` of the same length, so the rest stays in place.
   */
  function patched(key, gap, value, was) {
    const copy = new Uint8Array(bytes);
    const at = Buffer.from(copy.buffer).indexOf(key) + key.length + gap;
    const replacement = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    const offset = typeof value === 'string' ? 8 : 0; // a string value starts with its u64 length
    if (was) assert.deepEqual([...copy.subarray(at, at + was.length)], was);
    copy.set(replacement, at + offset);
    return copy;
  }

  before(async () => {
    bytes = await readFile(modelPath).catch(() => assert.fail(`${modelPath} is missing: run scripts/fetch-models.sh`));
    gen = await load(modelPath, { onProgress: (e) => progress.push(e) });
    // What worker mode is checked against; on the main thread, the generator itself.
    local = worker ? await Generator.load(modelPath) : gen;
    server = createServer((req, res) => {
      if (req.url !== '/model.gguf') return res.writeHead(404).end();
      res.writeHead(200, { 'content-length': bytes.byteLength });
      res.end(bytes);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });

  after(async () => {
    await gen?.dispose();
    if (worker) await local?.dispose();
    server?.close();
  });

  test('info describes the model and the backend; the load reported progress', () => {
    const info = gen.info;
    assert.equal(info.architecture, 'llama');
    assert.equal(info.quantization, 'Q4_1');
    assert.equal(info.parameters, 134515008);
    assert.equal(info.contextLength, 4096);
    assert.equal(info.backend, 'cpu');
    // One thread in Node and Deno, and why, where more were asked for.
    if (info.threads < Math.min(globalThis.navigator?.hardwareConcurrency || 1, 4)) assert.match(info.threadsReason, /Node and Deno run one thread/);
    else assert.equal(info.threadsReason, undefined);
    // Node and Deno have no WebGPU: 'auto' says so.
    assert.match(info.deviceReason, /^auto: no hardware WebGPU adapter/);
    // SmolLM2's matrices, its tied embedding table included (the output projection).
    assert.ok(info.decodeBytes > 0.95 * info.fileSize && info.decodeBytes < info.fileSize, `${info.decodeBytes} of ${info.fileSize} bytes`);
    assert.equal(info.worker, worker);
    assert.equal(local.info.worker, false);
    assert.deepEqual({ ...info, worker: false }, local.info);
    assert.ok(progress.length > 2, `${progress.length} progress events`);
    assert.deepEqual(progress.at(-1), { phase: 'load', loaded: bytes.byteLength, total: bytes.byteLength });
    assert.ok(progress.every((e, i) => i === 0 || e.loaded >= progress[i - 1].loaded), 'progress only grows');
  });

  test('greedy generation follows llama.cpp until its first near-tie', async () => {
    for (const p of fixture.prompts.filter((p) => p.kind === 'raw')) {
      const pieces = await collect(gen.generate(p.prompt_token_ids, { maxTokens: 12 }));
      assert.equal(gen.stats.generatedTokens, 12);
      assert.equal(gen.stats.finishReason, 'max_tokens');
      const sure = Math.min(p.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5), 12);
      assert.deepEqual(pieces.slice(0, sure).map((x) => x.token), p.generated_token_ids.slice(0, sure), p.name);
      assert.deepEqual(pieces, await collect(local.generate(p.prompt_token_ids, { maxTokens: 12 })), p.name);
    }
    // The fox's first five are llama.cpp's, its near-tie at the third included.
    const five = await collect(gen.generate(fox.prompt_token_ids, { maxTokens: 5 }));
    assert.deepEqual(five.map((x) => x.token), fox.generated_token_ids.slice(0, 5));
    const text = await collect(gen.generate(fox.user_text, { maxTokens: 3 }));
    assert.equal(text.length, 3);
    assert.deepEqual(text, await collect(local.generate(fox.user_text, { maxTokens: 3 })));
    assert.deepEqual(await gen.tokenize('The quick brown fox'), [504, 2365, 6354, 16438]);
    assert.deepEqual(await gen.tokenize('Hi', { addSpecial: true }), await local.tokenize('Hi', { addSpecial: true }));
    assert.equal(await gen.detokenize([504, 2365, 6354, 16438]), 'The quick brown fox');
  });

  test('a second chat turn prefills only the new message', async () => {
    const messages = [{ role: 'user', content: 'Name a color.' }];
    const reply = (await collect(gen.chat(messages, { maxTokens: 4 }))).map((p) => p.text).join('');
    const first = gen.stats.promptTokens;
    messages.push({ role: 'assistant', content: reply }, { role: 'user', content: 'And another?' });
    await collect(gen.chat(messages, { maxTokens: 2 }));
    assert.ok(gen.stats.reusedTokens >= first, `reused ${gen.stats.reusedTokens} of ${first}`);
  });

  test('every kind of source loads, with progress', async () => {
    const sources = {
      Uint8Array: new Uint8Array(bytes),
      ArrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      Blob: new Blob([bytes]),
      ReadableStream: new Blob([bytes]).stream(),
      'ReadableStream with size': [new Blob([bytes]).stream(), { size: bytes.byteLength }],
      URL: `${base}/model.gguf`,
      'file URL': new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root),
    };
    for (const [kind, entry] of Object.entries(sources)) {
      const [source, extra] = Array.isArray(entry) ? entry : [entry, {}];
      const events = [];
      const g = await load(source, { onProgress: (e) => events.push(e), contextLength: 64, ...extra });
      try {
        assert.equal(g.info.contextLength, 64, kind);
        assert.equal(events.at(-1).loaded, bytes.byteLength, kind);
        assert.equal(events.at(-1).total, bytes.byteLength, kind);
        assert.ok(events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded), `${kind}: progress only grows`);
        assert.deepEqual(await g.tokenize('Hello'), await local.tokenize('Hello'), kind);
      } finally {
        await g.dispose();
      }
    }
  });

  test('a throwing onProgress fails the load, whatever the source', async () => {
    const onProgress = () => {
      throw new Error('oops');
    };
    for (const source of [new Uint8Array(bytes), modelPath, `${base}/model.gguf`]) {
      await loadRejects(source, { onProgress }, 'INVALID_ARGUMENT', /^onProgress threw: oops$/);
    }
    // Also at the last event, once every byte is in.
    const atTheEnd = ({ loaded, total }) => {
      if (loaded === total) throw new Error('at the end');
    };
    await loadRejects(`${base}/model.gguf`, { onProgress: atTheEnd }, 'INVALID_ARGUMENT', /at the end/);
    await loadRejects(modelPath, { onProgress: atTheEnd }, 'INVALID_ARGUMENT', /at the end/);
    // A WebslmError it throws is the load's error.
    const own = () => {
      throw new WebslmError('ABORTED', 'enough');
    };
    await loadRejects(`${base}/model.gguf`, { onProgress: own }, 'ABORTED', /^enough$/);
  });

  test('requests are queued, never interleaved; queue: false gives BUSY', async () => {
    const order = [];
    const run = async (tag) => {
      for await (const _ of gen.generate('Once upon a time', { maxTokens: 3 })) order.push(tag);
    };
    await Promise.all([run('a'), run('b'), gen.score('The capital of France is', { topK: 2 }).then(() => order.push('s'))]);
    assert.equal(order.join(''), 'aaabbbs');
    // Opting out of the queue gives BUSY while a request runs, and works once it is done.
    const running = collect(gen.generate('Once upon a time', { maxTokens: 3 }));
    await rejectsWith(gen.score('x', { queue: false }), 'BUSY');
    await rejectsWith(collect(gen.generate('x', { maxTokens: 1, queue: false })), 'BUSY');
    assert.equal((await running).length, 3);
    assert.equal((await collect(gen.generate('x', { maxTokens: 1, queue: false }))).length, 1);
  });

  test('an abort stops a generation promptly and leaves the generator usable', async () => {
    const controller = new AbortController();
    const pieces = [];
    await rejectsWith(
      (async () => {
        for await (const p of gen.generate('Once upon a time', { maxTokens: 50, signal: controller.signal })) {
          pieces.push(p);
          if (pieces.length === 2) controller.abort();
        }
      })(),
      'ABORTED',
    );
    assert.equal(pieces.length, 2);
    assert.ok(gen.stats.generatedTokens < 50, `the engine went on to ${gen.stats.generatedTokens} tokens`);
    await rejectsWith(collect(gen.generate('x', { signal: AbortSignal.abort() })), 'ABORTED');
    await rejectsWith(gen.score('x', { signal: AbortSignal.abort() }), 'ABORTED');
    const next = await collect(gen.generate(fox.prompt_token_ids, { maxTokens: 2 }));
    assert.deepEqual(next.map((p) => p.token), fox.generated_token_ids.slice(0, 2));
  });

  test('leaving a for await early cancels the generation', async () => {
    for await (const _ of gen.generate('Once upon a time', { maxTokens: 50 })) break;
    assert.ok(gen.stats.generatedTokens < 50, `the engine went on to ${gen.stats.generatedTokens} tokens`);
    const next = await collect(gen.generate(fox.prompt_token_ids, { maxTokens: 2 }));
    assert.deepEqual(next.map((p) => p.token), fox.generated_token_ids.slice(0, 2));
  });

  test('an abort stops a load', async () => {
    const controller = new AbortController();
    await loadRejects(new Uint8Array(bytes), { signal: controller.signal, onProgress: (e) => e.loaded > 0 && controller.abort() }, 'ABORTED');
    await loadRejects(modelPath, { signal: AbortSignal.abort() }, 'ABORTED');
  });

  test('scores are log-probabilities with a perplexity', async () => {
    const s = await gen.score('The capital of France is Paris', { topK: 3 });
    assert.ok(s.perplexity > 1 && Number.isFinite(s.perplexity));
    assert.ok(s.tokens.every((t) => t.logprob <= 0 && t.top.length === 3));
    const paris = s.tokens.at(-1);
    assert.equal(paris.top[0].id, paris.id, 'Paris is the most likely last token');
    assert.deepEqual(s, await local.score('The capital of France is Paris', { topK: 3 }));
  });

  test('errors carry stable codes', async () => {
    await loadRejects(new TextEncoder().encode('<!DOCTYPE html><html></html>'), {}, 'INVALID_GGUF');
    await loadRejects(bytes.subarray(0, 1 << 20), {}, 'INVALID_GGUF');
    // A stream shorter than its declared size is a truncated download.
    await loadRejects(new Blob([bytes.subarray(0, 1 << 20)]).stream(), { size: bytes.byteLength }, 'INVALID_GGUF');
    await loadRejects(patched('general.architecture', 4, 'mambo'), {}, 'UNSUPPORTED_ARCH');
    // blk.0.ffn_down.weight is Q4_1 (3); IQ4_NL (20) is a smaller ggml type this engine does not compute with.
    await loadRejects(patched('blk.0.ffn_down.weight', 4 + 16, new Uint8Array([20, 0, 0, 0]), [3, 0, 0, 0]), {}, 'UNSUPPORTED_QUANT');
    // Node has no WebGPU; Deno has, on whatever adapter the machine has.
    if (!globalThis.navigator?.gpu) await loadRejects(modelPath, { device: 'webgpu' }, 'NO_WEBGPU');
    await loadRejects('/nonexistent/model.gguf', {}, 'IO');
    await loadRejects(`${base}/missing.gguf`, {}, 'NETWORK');
    await loadRejects('http://127.0.0.1:9/none.gguf', {}, 'NETWORK');
    await loadRejects(modelPath, { contextLength: 1_000_000 }, 'OUT_OF_MEMORY');
    await loadRejects(modelPath, { contextLenght: 64 }, 'INVALID_ARGUMENT');
    await rejectsWith(collect(gen.generate('x', { maxTokenz: 3 })), 'INVALID_ARGUMENT');
    // An option that is not data (and cannot be sent to a worker).
    await rejectsWith(collect(gen.generate('x', { stop: [() => 'x'] })), 'INVALID_ARGUMENT');
    const small = await load(modelPath, { contextLength: 16 });
    try {
      await rejectsWith(collect(small.generate('word '.repeat(40))), 'CONTEXT_OVERFLOW');
      await rejectsWith(collect(small.chat([{ content: 'hi' }])), 'INVALID_ARGUMENT');
      assert.equal((await collect(small.generate('x', { maxTokens: 1 }))).length, 1, 'usable after an error');
    } finally {
      await small.dispose();
    }
  });

  test('dispose waits for the requests before it, then refuses calls', async () => {
    const g = await load(modelPath, { contextLength: 32 });
    const earlier = collect(g.generate('x', { maxTokens: 1 }));
    const disposing = g.dispose();
    // Queued after dispose: it fails instead of waiting forever.
    await rejectsWith(collect(g.generate('x', { maxTokens: 1 })), 'INVALID_ARGUMENT');
    assert.equal((await earlier).length, 1);
    await disposing;
    await rejectsWith(g.score('x'), 'INVALID_ARGUMENT');
    await rejectsWith(g.tokenize('x'), 'INVALID_ARGUMENT');
    assert.throws(() => g.info, (e) => e instanceof WebslmError && e.code === 'INVALID_ARGUMENT');
    await g.dispose();
  });

  test('chatCompletions speaks the OpenAI shape, streamed or not', async () => {
    const messages = [{ role: 'user', content: 'What is the capital of France?' }];
    const whole = await gen.chatCompletions.create({ model: 'any', messages, max_tokens: 6 });
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.choices[0].message.role, 'assistant');
    assert.equal(whole.choices[0].finish_reason, 'length');
    assert.equal(whole.usage.completion_tokens, 6);
    assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 6);

    const chunks = [];
    for await (const c of await gen.chatCompletions.create({ messages, max_tokens: 6, stream: true })) chunks.push(c);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
    const streamed = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(streamed, whole.choices[0].message.content, 'greedy: the same text either way');
    await rejectsWith(gen.chatCompletions.create({ messages, logprobs: true }), 'INVALID_ARGUMENT');
  });

  return {
    get gen() {
      return gen;
    },
  };
}
