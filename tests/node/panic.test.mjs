// A Rust panic traps the wasm instance. It must not reach a user as a silent
// failure: the generators on that instance reject with INTERNAL and the
// panic's message, and the next load runs on a fresh instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));

async function collect(iterable) {
  const pieces = [];
  for await (const p of iterable) pieces.push(p);
  return pieces;
}

async function rejectsInternal(promise) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebslmError, `expected a WebslmError, got ${e}`);
    assert.equal(e.code, 'INTERNAL', e.message);
    assert.match(e.message, /deliberate panic/);
    assert.match(e.message, /load the model again/);
    return true;
  });
}

test('a panic stops the generators on its instance; the next load gets a fresh one', async () => {
  const trapped = await Generator.load(modelPath, { contextLength: 64 });
  // The glue module index.js loaded first: the instance `trapped` runs on.
  const glue = await import(`../../pkg/wasm/webslm-${trapped.info.build}.js`);
  assert.throws(() => glue.__panicForTesting('deliberate panic'), WebAssembly.RuntimeError);

  await rejectsInternal(trapped.tokenize('x'));
  await rejectsInternal(collect(trapped.generate('x', { maxTokens: 1 })));
  await rejectsInternal(trapped.score('x'));
  await trapped.dispose();

  const fresh = await Generator.load(modelPath, { contextLength: 64 });
  const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
  const tokens = (await collect(fresh.generate(fox.prompt_token_ids, { maxTokens: 4 }))).map((p) => p.token);
  assert.deepEqual(tokens, fox.generated_token_ids.slice(0, 4));
  assert.deepEqual(await Generator.cache.list(), []);
  await fresh.dispose();
});

// Inside a generation, on the page's thread and in a Worker: the test suite's
// option `__panicForTesting: n` makes the engine panic once n tokens are out.
for (const worker of [false, true]) {
  test(`a panic inside a generation${worker ? ' in a Worker' : ''}: INTERNAL, and the next load replies`, async () => {
    const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
    const trapped = await Generator.load(modelPath, { contextLength: 64, worker });
    const before = [];
    await assert.rejects(
      (async () => {
        for await (const p of trapped.generate(fox.prompt_token_ids, { maxTokens: 8, __panicForTesting: 2 })) before.push(p.token);
      })(),
      (e) => e instanceof WebslmError && e.code === 'INTERNAL' && /deliberate panic after 2 tokens/.test(e.message),
    );
    assert.deepEqual(before, fox.generated_token_ids.slice(0, 2));
    await assert.rejects(collect(trapped.generate('x', { maxTokens: 1 })), (e) => e.code === 'INTERNAL');
    await trapped.dispose();

    const fresh = await Generator.load(modelPath, { contextLength: 64, worker });
    const tokens = (await collect(fresh.generate(fox.prompt_token_ids, { maxTokens: 4 }))).map((p) => p.token);
    assert.deepEqual(tokens, fox.generated_token_ids.slice(0, 4));
    await fresh.dispose();
  });
}
