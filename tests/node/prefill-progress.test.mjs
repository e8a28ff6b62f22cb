// A long prompt runs a batch (256 tokens) per engine call: generate, chat and
// chatCompletions report `{ phase: 'prefill', done, total }` after each batch,
// and an abort between batches stops the request and leaves the generator
// usable with a consistent KV cache; on the main thread and in worker mode.
// The tiny phi3 of models/tiny-arch/ (it has a chat template) keeps it quick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { Generator } from '../../pkg/index.js';
import { collect, rejectsWith } from './scenarios.mjs';

const path = new URL('../../models/tiny-arch/phi3-Q8_0.gguf', import.meta.url).pathname;
await access(path).catch(() => assert.fail(`${path} is missing: cargo run --release --example reference_models -- tiny models/tiny-arch F16 Q8_0 Q4_0`));

const BATCH = 256;
/** 600 ids within the vocabulary: three batches, the last one short. */
const prompt = Array.from({ length: 600 }, (_, i) => (i * 37 + 5) % 1000);
const other = [...prompt.slice(0, 100), ...prompt.slice(0, 400).reverse()];
const load = (worker) => Generator.load(path, { worker, contextLength: 1024 });

/** The tokens of a greedy generation and the progress events it reported. */
async function run(gen, ids, options = {}) {
  const events = [];
  const pieces = await collect(gen.generate(ids, { maxTokens: 8, onProgress: (e) => events.push(e), ...options }));
  return { tokens: pieces.map((p) => p.token), events };
}

function assertProgress(events, total, first) {
  assert.ok(events.every((e) => e.phase === 'prefill' && e.total === total), JSON.stringify(events));
  for (let i = 1; i < events.length; i++) assert.ok(events[i].done > events[i - 1].done, JSON.stringify(events));
  assert.equal(events.at(-1).done, total);
  assert.equal(events.length, Math.ceil((total - first) / BATCH));
  assert.equal(events[0].done, Math.min(first + BATCH, total));
}

/** What each prompt gives on a fresh generator on the main thread, without onProgress. */
const expected = {};
{
  const fresh = await load(false);
  try {
    for (const [name, ids] of Object.entries({ prompt, other })) {
      const pieces = await collect(fresh.generate(ids, { maxTokens: 8 }));
      expected[name] = pieces.map((p) => p.token);
      await collect(fresh.generate([999], { maxTokens: 1 }));
    }
  } finally {
    await fresh.dispose();
  }
}

for (const worker of [false, true]) {
  const mode = worker ? 'worker mode' : 'main thread';

  test(`${mode}: a long prompt reports its progress batch by batch and generates what it does without`, async () => {
    const gen = await load(worker);
    try {
      const { tokens, events } = await run(gen, prompt);
      assertProgress(events, prompt.length, 0);
      assert.equal(events.length, 3);
      assert.deepEqual(tokens, expected.prompt);
      // The same prompt again reuses all of it but its last token: one event, which counts the reused prefix.
      const again = await run(gen, prompt);
      assert.deepEqual(again.events, [{ phase: 'prefill', done: prompt.length, total: prompt.length }]);
      assert.equal(gen.stats.reusedTokens, prompt.length - 1);
      assert.deepEqual(again.tokens, expected.prompt);
    } finally {
      await gen.dispose();
    }
  });

  test(`${mode}: an abort from onProgress stops the prompt between batches; the cache keeps exactly the batches that ran`, async () => {
    const gen = await load(worker);
    try {
      const controller = new AbortController();
      const events = [];
      const onProgress = (e) => {
        events.push(e);
        controller.abort();
      };
      await rejectsWith(collect(gen.generate(prompt, { maxTokens: 8, signal: controller.signal, onProgress })), 'ABORTED');
      assert.deepEqual(events, [{ phase: 'prefill', done: BATCH, total: prompt.length }]);
      if (!worker) {
        // On the main thread nothing runs after the abort: the next request reuses the first batch and no more.
        const resumed = await run(gen, prompt);
        assert.equal(gen.stats.reusedTokens, BATCH);
        assertProgress(resumed.events, prompt.length, BATCH);
        assert.deepEqual(resumed.tokens, expected.prompt);
      } else {
        // The worker hears of the abort a batch or more later; whatever it kept, the tokens are a fresh run's.
        assert.deepEqual((await run(gen, prompt)).tokens, expected.prompt);
      }
      // A prompt that diverges inside the cached part gives a fresh run's tokens too.
      assert.deepEqual((await run(gen, other)).tokens, expected.other);
    } finally {
      await gen.dispose();
    }
  });

  test(`${mode}: a throwing or misspelt onProgress fails the request with INVALID_ARGUMENT; the generator stays usable`, async () => {
    const gen = await load(worker);
    try {
      const onProgress = () => {
        throw new Error('boom');
      };
      await rejectsWith(collect(gen.generate(prompt, { maxTokens: 8, onProgress })), 'INVALID_ARGUMENT', /onProgress threw: boom/);
      await rejectsWith(collect(gen.generate(prompt, { maxTokens: 8, onProgress: 'yes' })), 'INVALID_ARGUMENT', /onProgress/);
      await rejectsWith(collect(gen.generate(prompt, { maxTokens: 8, onProgres: true })), 'INVALID_ARGUMENT', /unknown generate option `onProgres`/);
      assert.deepEqual((await run(gen, prompt)).tokens, expected.prompt);
    } finally {
      await gen.dispose();
    }
  });

  test(`${mode}: chat and chatCompletions report the progress of the rendered prompt`, async () => {
    const gen = await load(worker);
    try {
      const messages = [{ role: 'user', content: 'word '.repeat(400) }];
      const events = [];
      await collect(gen.chat(messages, { maxTokens: 2, onProgress: (e) => events.push(e) }));
      const total = gen.stats.promptTokens;
      assert.ok(total > BATCH && total < 1024, `${total} prompt tokens`);
      assertProgress(events, total, 0);
      // Another prompt first, so that the next one reuses nothing.
      await collect(gen.generate([999], { maxTokens: 1 }));
      const streamed = [];
      const chunks = await gen.chatCompletions.create({ messages, max_tokens: 2, stream: true, onProgress: (e) => streamed.push(e) });
      await collect(chunks);
      assert.deepEqual(streamed, events);
    } finally {
      await gen.dispose();
    }
  });
}
