// The relaxed-SIMD build in Node: chosen where Node's relaxed SIMD computes
// the standard dot product (Node 22+), with the SIMD128 build's greedy tokens;
// not chosen in Node 20, whose --experimental-wasm-relaxed-simd is
// pre-standard. The build is chosen once per process, so the flag is tried in
// a child process.
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
const FLAG = '--experimental-wasm-relaxed-simd';

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

test('Node runs the relaxed-SIMD build where its relaxed SIMD is the standard one, with the SIMD128 tokens', async (t) => {
  const g = await Generator.load(modelPath, { contextLength: 64 });
  const here = [];
  for await (const p of g.generate(fox.prompt_token_ids, { maxTokens: TOKENS })) here.push(p.token);
  const build = g.info.build;
  await g.dispose();
  const tie = fox.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5);
  assert.deepEqual(here.slice(0, tie), fox.generated_token_ids.slice(0, tie), build);

  const flagged = build === 'relaxed-simd' ? null : await child([FLAG]).catch(() => null);
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) assert.equal(build, 'relaxed-simd', `Node ${process.version} has standard relaxed SIMD`);
  if (major === 20) {
    // Node 20's flag turns on a pre-standard relaxed dot product (-120 where the standard gives -60): never chosen.
    assert.equal(build, 'simd128');
    assert.equal(flagged?.build, 'simd128', `with ${FLAG}`);
    t.diagnostic(`Node ${process.version} (V8 ${process.versions.v8}): SIMD128, also with ${FLAG}`);
    return;
  }
  const relaxed = build === 'relaxed-simd' ? { build, tokens: here } : flagged;
  if (relaxed?.build !== 'relaxed-simd') return t.skip(`no standard relaxed SIMD in Node ${process.version}`);
  if (flagged) assert.deepEqual(relaxed.tokens, here, 'the SIMD128 build in this process');
  assert.deepEqual(relaxed.tokens.slice(0, tie), fox.generated_token_ids.slice(0, tie));
});
