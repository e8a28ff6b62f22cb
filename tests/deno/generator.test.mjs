// The npm package in Deno 2: the same Generator, loaded from a path and from
// bytes, generating llama.cpp's greedy tokens; errors keep their codes.
import assert from 'node:assert/strict';
import { Generator, WebslmError } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await Deno.readTextFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));

Deno.test('loads from a path and generates llama.cpp greedy tokens', async () => {
  const gen = await Generator.load(modelPath);
  assert.equal(gen.info.architecture, 'llama');
  const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
  const tokens = [];
  for await (const piece of gen.generate(fox.prompt_token_ids, { maxTokens: 5 })) tokens.push(piece.token);
  assert.deepEqual(tokens, fox.generated_token_ids.slice(0, 5));
  let reply = '';
  for await (const piece of gen.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 3 })) reply += piece.text;
  assert.equal(gen.stats.generatedTokens, 3);
  assert.equal(typeof reply, 'string');
  await gen.dispose();
});

Deno.test('loads from bytes with progress', async () => {
  const bytes = await Deno.readFile(modelPath);
  let last;
  const gen = await Generator.load(bytes, { contextLength: 32, onProgress: (p) => (last = p) });
  assert.equal(last.loaded, bytes.byteLength);
  assert.equal(gen.info.contextLength, 32);
  await gen.dispose();
});

Deno.test('errors keep their codes', async () => {
  const code = async (promise) => {
    try {
      await promise;
    } catch (e) {
      assert.ok(e instanceof WebslmError);
      return e.code;
    }
    assert.fail('no error');
  };
  assert.equal(await code(Generator.load(new TextEncoder().encode('not a model at all'))), 'INVALID_GGUF');
  assert.equal(await code(Generator.load('/nonexistent/model.gguf')), 'IO');
  assert.equal(await code(Generator.load(modelPath, { device: 'webgpu' })), 'NO_WEBGPU');
});
