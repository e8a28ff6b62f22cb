// Worker mode in Deno 2: the engine in a module Web Worker, loaded from a path,
// generating llama.cpp's greedy tokens; errors cross with their codes, and
// calls after dispose are refused.
import assert from 'node:assert/strict';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await Deno.readTextFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));

async function code(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof WebslmError);
    return e.code;
  }
  assert.fail('no error');
}

Deno.test('worker mode: loads from a path and generates llama.cpp greedy tokens', async () => {
  let last;
  const gen = await Generator.load(modelPath, { worker: true, onProgress: (p) => (last = p) });
  try {
    assert.equal(gen.info.worker, true);
    assert.equal(last.loaded, last.total);
    const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
    const tokens = [];
    for await (const piece of gen.generate(fox.prompt_token_ids, { maxTokens: 5 })) tokens.push(piece.token);
    assert.deepEqual(tokens, fox.generated_token_ids.slice(0, 5));
    assert.equal(gen.stats.generatedTokens, 5);
    assert.equal(await code(gen.generate('x', { maxTokenz: 1 }).next()), 'INVALID_ARGUMENT');
  } finally {
    await gen.dispose();
  }
  assert.equal(await code(gen.tokenize('x')), 'INVALID_ARGUMENT');
});

Deno.test('worker mode: a failed load ends its worker', async () => {
  assert.equal(await code(Generator.load(new TextEncoder().encode('not a model at all'), { worker: true })), 'INVALID_GGUF');
  assert.equal(await code(Generator.load('/nonexistent/model.gguf', { worker: true })), 'IO');
});
