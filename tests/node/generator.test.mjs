// The npm package (built into pkg/ by scripts/build-pkg.sh) in Node: model
// sources, progress, generation against llama.cpp's tokens, chat cache reuse,
// queueing, aborts and error codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));

let gen;
let bytes;
let server;
let base;

before(async () => {
  bytes = await readFile(modelPath).catch(() => assert.fail(`${modelPath} is missing: run scripts/fetch-models.sh`));
  gen = await Generator.load(modelPath);
  server = createServer((req, res) => {
    if (req.url === '/model.gguf') {
      res.writeHead(200, { 'content-length': bytes.byteLength });
      res.end(bytes);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  await gen?.dispose();
  server?.close();
});

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

async function collect(iterable) {
  const pieces = [];
  for await (const p of iterable) pieces.push(p);
  return pieces;
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 0);
    return true;
  });
}

test('info describes the model and the backend', () => {
  const info = gen.info;
  assert.equal(info.architecture, 'llama');
  assert.equal(info.quantization, 'Q4_1');
  assert.equal(info.parameters, 134515008);
  assert.equal(info.contextLength, 4096);
  assert.equal(info.backend, 'cpu');
});

test('greedy generation follows llama.cpp until its first near-tie', async () => {
  for (const p of fixture.prompts.filter((p) => p.kind === 'raw')) {
    const sure = p.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5);
    const n = Math.min(sure, 12);
    const pieces = await collect(gen.generate(p.prompt_token_ids, { maxTokens: n }));
    assert.deepEqual(pieces.map((x) => x.token), p.generated_token_ids.slice(0, n), p.name);
    assert.equal(gen.stats.generatedTokens, n);
    assert.equal(gen.stats.finishReason, 'max_tokens');
  }
  assert.deepEqual(await gen.tokenize('The quick brown fox'), [504, 2365, 6354, 16438]);
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
    const g = await Generator.load(source, { onProgress: (e) => events.push(e), contextLength: 64, ...extra });
    assert.equal(g.info.contextLength, 64, kind);
    const last = events.at(-1);
    assert.equal(last.loaded, bytes.byteLength, kind);
    assert.equal(last.total, bytes.byteLength, kind);
    assert.ok(events.every((e, i) => i === 0 || e.loaded >= events[i - 1].loaded), `${kind}: progress only grows`);
    assert.deepEqual(await g.tokenize('Hello'), await gen.tokenize('Hello'));
    await g.dispose();
  }
});

test('requests are queued, never interleaved', async () => {
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
  await running;
  assert.equal((await collect(gen.generate('x', { maxTokens: 1, queue: false }))).length, 1);
});

test('aborts stop a generation promptly and leave the generator usable', async () => {
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
  assert.equal((await collect(gen.generate('Once upon a time', { maxTokens: 2 }))).length, 2);
});

test('aborts stop a load', async () => {
  const controller = new AbortController();
  await rejectsWith(
    Generator.load(new Uint8Array(bytes), { signal: controller.signal, onProgress: (e) => e.loaded > 0 && controller.abort() }),
    'ABORTED',
  );
  const already = AbortSignal.abort();
  await rejectsWith(Generator.load(modelPath, { signal: already }), 'ABORTED');
});

test('teacher-forced scores through the JS API agree with llama.cpp (budgets of tests/llama_reference.rs)', async () => {
  let [logits, within, total, worst] = [0, 0, 0, 0];
  for (const p of fixture.prompts) {
    const tokens = [...p.prompt_token_ids, ...p.generated_token_ids];
    const s = await gen.score(tokens, { topK: 40 });
    p.step_top3.forEach((top3, j) => {
      // score() predicts every token after the first: entry i predicts tokens[i + 1].
      const ours = s.tokens[p.prompt_token_ids.length - 1 + j];
      assert.equal(ours.id, p.generated_token_ids[j]);
      if (top3[0][1] - top3[1][1] >= 0.5) assert.equal(ours.top[0].id, top3[0][0], `${p.name} step ${j}: top-1`);
      for (const [id, theirs] of top3) {
        const mine = ours.top.find((c) => c.id === id);
        assert.ok(mine, `${p.name} step ${j}: llama.cpp's token ${id} is not in our top 40`);
        const d = Math.abs(mine.logit - theirs);
        assert.ok(d <= 1.25, `${p.name} step ${j}: logit ${mine.logit} vs llama.cpp ${theirs}`);
        [logits, within, total, worst] = [logits + 1, within + (d <= 0.5), total + d, Math.max(worst, d)];
      }
    });
  }
  assert.ok(logits >= 700, `${logits} logits compared`);
  assert.ok(within / logits >= 0.95, `${within} of ${logits} within 0.5`);
  assert.ok(total / logits <= 0.25, `mean difference ${total / logits}`);
});

test('scores are log-probabilities with a perplexity', async () => {
  const s = await gen.score('The capital of France is Paris', { topK: 3 });
  assert.ok(s.perplexity > 1 && Number.isFinite(s.perplexity));
  assert.ok(s.tokens.every((t) => t.logprob <= 0 && t.top.length === 3));
  const paris = s.tokens.at(-1);
  assert.equal(paris.top[0].id, paris.id, 'Paris is the most likely last token');
});

test('errors carry stable codes', async () => {
  await rejectsWith(Generator.load(new TextEncoder().encode('<!DOCTYPE html><html></html>')), 'INVALID_GGUF');
  await rejectsWith(Generator.load(bytes.subarray(0, 1 << 20)), 'INVALID_GGUF');
  // A stream shorter than its declared size is a truncated download.
  await rejectsWith(Generator.load(new Blob([bytes.subarray(0, 1 << 20)]).stream(), { size: bytes.byteLength }), 'INVALID_GGUF');
  await rejectsWith(Generator.load(patched('general.architecture', 4, 'mambo')), 'UNSUPPORTED_ARCH');
  // blk.0.ffn_down.weight is Q4_1 (3); IQ4_NL (20) is a smaller ggml type this engine does not compute with.
  await rejectsWith(Generator.load(patched('blk.0.ffn_down.weight', 4 + 16, new Uint8Array([20, 0, 0, 0]), [3, 0, 0, 0])), 'UNSUPPORTED_QUANT');
  await rejectsWith(Generator.load(modelPath, { device: 'webgpu' }), 'NO_WEBGPU');
  await rejectsWith(Generator.load('/nonexistent/model.gguf'), 'IO');
  await rejectsWith(Generator.load(`${base}/missing.gguf`), 'NETWORK');
  await rejectsWith(Generator.load('http://127.0.0.1:9/none.gguf'), 'NETWORK');
  await rejectsWith(Generator.load(modelPath, { contextLength: 1_000_000 }), 'OUT_OF_MEMORY');
  await rejectsWith(collect(gen.generate('x', { maxTokenz: 3 })), 'INVALID_ARGUMENT');
  await rejectsWith(Generator.load(modelPath, { contextLenght: 64 }), 'INVALID_ARGUMENT');
  const small = await Generator.load(modelPath, { contextLength: 16 });
  await rejectsWith(collect(small.generate('word '.repeat(40))), 'CONTEXT_OVERFLOW');
  await rejectsWith(collect(small.chat([{ role: 'user' }])), 'INVALID_ARGUMENT');
  // A request queued before dispose completes; one queued after it fails instead of waiting forever.
  const before = collect(small.generate('x', { maxTokens: 1 }));
  const disposing = small.dispose();
  const after = collect(small.generate('x', { maxTokens: 1 }));
  assert.equal((await before).length, 1);
  await rejectsWith(after, 'INVALID_ARGUMENT');
  await disposing;
  await rejectsWith(small.score('x'), 'INVALID_ARGUMENT');
  await rejectsWith(small.tokenize('x'), 'INVALID_ARGUMENT');
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

test('the bin runs a prompt and prints JSON', async () => {
  const { execFile } = await import('node:child_process');
  const bin = new URL('pkg/bin/webslm.js', root).pathname;
  const run = (args) =>
    new Promise((resolve) => execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr })));
  const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
  const out = await run(['run', modelPath, fox.user_text, '--max-tokens', '4', '--json']);
  assert.equal(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assert.deepEqual(result.tokens, fox.generated_token_ids.slice(0, 4));
  assert.equal(result.stats.generatedTokens, 4);
  const chat = await run(['run', modelPath, 'Hi', '--chat', '--max-tokens', '3']);
  assert.equal(chat.code, 0, chat.stderr);
  assert.match(chat.stderr, /decode [\d.]+ tok\/s/);
  const bad = await run(['run', '/nonexistent.gguf', 'x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error \[IO\]/);
  assert.equal((await run(['frobnicate'])).code, 2);
});
