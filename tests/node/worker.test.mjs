// Worker mode of the npm package in Node: Generator.load(source, { worker: true })
// runs the engine in a node:worker_threads Worker behind the Generator's API.
// Tokens against the main thread's and llama.cpp's, a free main thread, KV
// reuse, sources, progress, queueing, aborts, error codes and dispose.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
const fox = fixture.prompts.find((p) => p.name === 'raw_fox');

let gen;
let local;
let bytes;
const progress = [];

before(async () => {
  bytes = await readFile(modelPath).catch(() => assert.fail(`${modelPath} is missing: run scripts/fetch-models.sh`));
  gen = await Generator.load(modelPath, { worker: true, onProgress: (e) => progress.push(e) });
  local = await Generator.load(modelPath);
});

after(async () => {
  await gen?.dispose();
  await local?.dispose();
});

async function collect(iterable) {
  const pieces = [];
  for await (const p of iterable) pieces.push(p);
  return pieces;
}

/** A worker-mode load expected to fail; one that succeeds is disposed, so that its worker cannot keep the tests running. */
async function loadRejects(source, options, code) {
  const loading = Generator.load(source, { worker: true, ...options });
  await rejectsWith(loading.then(async (g) => (await g.dispose(), g)), code);
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 0);
    return true;
  });
}

test('loads from a path in a worker, with progress', () => {
  assert.equal(gen.info.worker, true);
  assert.equal(local.info.worker, false);
  assert.deepEqual({ ...gen.info, worker: false }, local.info);
  assert.ok(progress.length > 2, `${progress.length} progress events`);
  assert.deepEqual(progress.at(-1), { phase: 'load', loaded: bytes.byteLength, total: bytes.byteLength });
  assert.ok(progress.every((e, i) => i === 0 || e.loaded >= progress[i - 1].loaded), 'progress only grows');
});

test("greedy tokens are the main thread's and llama.cpp's", async () => {
  for (const p of fixture.prompts.filter((p) => p.kind === 'raw')) {
    const remote = await collect(gen.generate(p.prompt_token_ids, { maxTokens: 8 }));
    assert.deepEqual(remote, await collect(local.generate(p.prompt_token_ids, { maxTokens: 8 })), p.name);
    assert.equal(gen.stats.generatedTokens, 8);
    assert.equal(gen.stats.finishReason, 'max_tokens');
    // llama.cpp agrees until its first near-tie, as in generator.test.mjs.
    const sure = Math.min(p.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5), 8);
    assert.deepEqual(remote.slice(0, sure).map((x) => x.token), p.generated_token_ids.slice(0, sure), p.name);
  }
  const text = await collect(gen.generate(fox.user_text, { maxTokens: 3 }));
  assert.deepEqual(text, await collect(local.generate(fox.user_text, { maxTokens: 3 })));
  assert.deepEqual(await gen.tokenize('The quick brown fox'), [504, 2365, 6354, 16438]);
  assert.deepEqual(await gen.tokenize('Hi', { addSpecial: true }), await local.tokenize('Hi', { addSpecial: true }));
  assert.equal(await gen.detokenize([504, 2365, 6354, 16438]), 'The quick brown fox');
});

test('the main thread stays free while the worker generates', async () => {
  // On the main thread a timer can only fire between tokens, about once per
  // token; with the engine in a worker it keeps firing while each token is made.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  let pieces;
  try {
    pieces = await collect(gen.generate('Once upon a time', { maxTokens: 32 }));
  } finally {
    clearInterval(timer);
  }
  assert.equal(pieces.length, 32);
  assert.ok(ticks > 2 * pieces.length, `${ticks} ticks during ${pieces.length} tokens`);
});

test('a second chat turn reuses the KV cache in the worker', async () => {
  const messages = [{ role: 'user', content: 'Name a color.' }];
  const reply = (await collect(gen.chat(messages, { maxTokens: 4 }))).map((p) => p.text).join('');
  const first = gen.stats.promptTokens;
  messages.push({ role: 'assistant', content: reply }, { role: 'user', content: 'And another?' });
  await collect(gen.chat(messages, { maxTokens: 2 }));
  assert.ok(gen.stats.reusedTokens >= first, `reused ${gen.stats.reusedTokens} of ${first}`);
});

test('every kind of source loads in a worker, with progress', async () => {
  const server = createServer((req, res) => {
    if (req.url !== '/model.gguf') return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': bytes.byteLength });
    res.end(bytes);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sources = {
    Uint8Array: new Uint8Array(bytes),
    ArrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    Blob: new Blob([bytes]),
    ReadableStream: new Blob([bytes]).stream(),
    'ReadableStream with size': [new Blob([bytes]).stream(), { size: bytes.byteLength }],
    URL: `http://127.0.0.1:${server.address().port}/model.gguf`,
    'file URL': new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root),
  };
  try {
    for (const [kind, entry] of Object.entries(sources)) {
      const [source, extra] = Array.isArray(entry) ? entry : [entry, {}];
      const events = [];
      const g = await Generator.load(source, { worker: true, contextLength: 64, onProgress: (e) => events.push(e), ...extra });
      try {
        assert.equal(g.info.contextLength, 64, kind);
        assert.equal(events.at(-1).loaded, bytes.byteLength, kind);
        assert.equal(events.at(-1).total, bytes.byteLength, kind);
        assert.deepEqual(await g.tokenize('Hello'), await local.tokenize('Hello'), kind);
      } finally {
        await g.dispose();
      }
    }
  } finally {
    server.close();
  }
});

test('requests are queued, never interleaved; queue: false gives BUSY', async () => {
  const order = [];
  const run = async (tag) => {
    for await (const _ of gen.generate('Once upon a time', { maxTokens: 2 })) order.push(tag);
  };
  await Promise.all([run('a'), run('b'), gen.score('The capital', { topK: 1 }).then(() => order.push('s'))]);
  assert.equal(order.join(''), 'aabbs');
  const running = collect(gen.generate('Once upon a time', { maxTokens: 3 }));
  await rejectsWith(gen.score('x', { queue: false }), 'BUSY');
  await rejectsWith(collect(gen.generate('x', { maxTokens: 1, queue: false })), 'BUSY');
  assert.equal((await running).length, 3);
  assert.equal((await collect(gen.generate('x', { maxTokens: 1, queue: false }))).length, 1);
});

test('an abort stops a generation in the worker and leaves the generator usable', async () => {
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
  assert.ok(gen.stats.generatedTokens < 50, `the worker went on to ${gen.stats.generatedTokens} tokens`);
  await rejectsWith(collect(gen.generate('x', { signal: AbortSignal.abort() })), 'ABORTED');
  await rejectsWith(gen.score('x', { signal: AbortSignal.abort() }), 'ABORTED');
  const next = await collect(gen.generate(fox.prompt_token_ids, { maxTokens: 2 }));
  assert.deepEqual(next.map((p) => p.token), fox.generated_token_ids.slice(0, 2));
});

test('leaving a for await early cancels the generation in the worker', async () => {
  for await (const _ of gen.generate('Once upon a time', { maxTokens: 50 })) break;
  assert.ok(gen.stats.generatedTokens < 50, `the worker went on to ${gen.stats.generatedTokens} tokens`);
  const next = await collect(gen.generate(fox.prompt_token_ids, { maxTokens: 2 }));
  assert.deepEqual(next.map((p) => p.token), fox.generated_token_ids.slice(0, 2));
});

test('an abort stops a load in a worker', async () => {
  const controller = new AbortController();
  await loadRejects(new Uint8Array(bytes), { signal: controller.signal, onProgress: (e) => e.loaded > 0 && controller.abort() }, 'ABORTED');
  await loadRejects(modelPath, { signal: AbortSignal.abort() }, 'ABORTED');
});

test('errors cross from the worker with their codes', async () => {
  await loadRejects(new TextEncoder().encode('<!DOCTYPE html><html></html>'), {}, 'INVALID_GGUF');
  await loadRejects('/nonexistent/model.gguf', {}, 'IO');
  await loadRejects(modelPath, { device: 'webgpu' }, 'NO_WEBGPU');
  await rejectsWith(collect(gen.generate('x', { maxTokenz: 3 })), 'INVALID_ARGUMENT');
  // An option that cannot be sent to the worker.
  await rejectsWith(collect(gen.generate('x', { stop: [() => 'x'] })), 'INVALID_ARGUMENT');
  const small = await Generator.load(modelPath, { worker: true, contextLength: 16 });
  try {
    await rejectsWith(collect(small.generate('word '.repeat(40))), 'CONTEXT_OVERFLOW');
    assert.equal((await collect(small.generate('x', { maxTokens: 1 }))).length, 1, 'usable after an error');
  } finally {
    await small.dispose();
  }
});

test("scores are the main thread's", async () => {
  const s = await gen.score('The capital of France is Paris', { topK: 3 });
  assert.deepEqual(s, await local.score('The capital of France is Paris', { topK: 3 }));
  const paris = s.tokens.at(-1);
  assert.equal(paris.top[0].id, paris.id, 'Paris is the most likely last token');
});

test('chatCompletions speaks the OpenAI shape through the worker', async () => {
  const messages = [{ role: 'user', content: 'What is the capital of France?' }];
  const whole = await gen.chatCompletions.create({ messages, max_tokens: 3 });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 3);
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 3);
  const chunks = [];
  for await (const c of await gen.chatCompletions.create({ messages, max_tokens: 3, stream: true })) chunks.push(c);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), whole.choices[0].message.content);
});

test('dispose waits for the requests before it, then refuses calls', async () => {
  const g = await Generator.load(modelPath, { worker: true, contextLength: 32 });
  const earlier = collect(g.generate('x', { maxTokens: 1 }));
  const disposing = g.dispose();
  await rejectsWith(collect(g.generate('x', { maxTokens: 1 })), 'INVALID_ARGUMENT');
  assert.equal((await earlier).length, 1);
  await disposing;
  await rejectsWith(g.score('x'), 'INVALID_ARGUMENT');
  await rejectsWith(g.tokenize('x'), 'INVALID_ARGUMENT');
  assert.throws(() => g.info, (e) => e instanceof WebslmError && e.code === 'INVALID_ARGUMENT');
  await g.dispose();
});

test('dispose ends the worker, so a Node process can exit', async () => {
  // A live worker keeps Node running: the child exits only if dispose ended it.
  const script = `
    import { Generator } from ${JSON.stringify(new URL('pkg/index.js', root).href)};
    const gen = await Generator.load(${JSON.stringify(modelPath)}, { worker: true, contextLength: 32 });
    for await (const piece of gen.generate(${JSON.stringify(fox.prompt_token_ids)}, { maxTokens: 1 })) console.log(piece.token);
    await gen.dispose();`;
  const run = await new Promise((resolve) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 300_000 }, (error, stdout, stderr) => resolve({ error, stdout, stderr })),
  );
  assert.equal(run.error, null, run.stderr);
  assert.equal(Number(run.stdout), fox.generated_token_ids[0]);
});
