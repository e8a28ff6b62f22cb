// The relaxed-SIMD build in Node: chosen where Node validates relaxed SIMD
// (Node 22+; Node 20 only with --experimental-wasm-relaxed-simd), with the
// SIMD128 build's greedy tokens. The build is chosen once per process, so it
// runs in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Generator } from '../../pkg/index.js';

const root = new URL('../../', import.meta.url);
const modelPath = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
const TOKENS = 16;

// i8x16.relaxed_swizzle, as index.js probes for it.
const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);
const native = WebAssembly.validate(probe);

/** The build and the greedy tokens of the fox prompt in a Node started with `args`. */
async function child(args) {
  const script = `
    import { Generator } from ${JSON.stringify(new URL('pkg/index.js', root).href)};
    const g = await Generator.load(${JSON.stringify(modelPath)}, { contextLength: 64 });
    const tokens = [];
    for await (const p of g.generate(${JSON.stringify(fox.prompt_token_ids)}, { maxTokens: ${TOKENS} })) tokens.push(p.token);
    console.log(JSON.stringify({ build: g.info.build, tokens }));
    await g.dispose();`;
  const { stdout } = await promisify(execFile)(process.execPath, [...args, '--input-type=module', '-e', script]);
  return JSON.parse(stdout);
}

test('Node runs the relaxed-SIMD build where it has relaxed SIMD, with the tokens of the SIMD128 build', async (t) => {
  const g = await Generator.load(modelPath, { contextLength: 64 });
  const here = [];
  for await (const p of g.generate(fox.prompt_token_ids, { maxTokens: TOKENS })) here.push(p.token);
  const build = g.info.build;
  await g.dispose();
  assert.equal(build, native ? 'relaxed-simd' : 'simd128');

  const relaxed = native ? { build, tokens: here } : await child(['--experimental-wasm-relaxed-simd']);
  t.diagnostic(`Node ${process.version}: relaxed SIMD ${native ? 'by default' : 'with --experimental-wasm-relaxed-simd'}`);
  assert.equal(relaxed.build, 'relaxed-simd');
  const tie = fox.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5);
  assert.deepEqual(relaxed.tokens.slice(0, tie), fox.generated_token_ids.slice(0, tie));
  if (!native) assert.deepEqual(relaxed.tokens, here);
});
