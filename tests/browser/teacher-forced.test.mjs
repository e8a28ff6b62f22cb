// llama.cpp's teacher-forced check through the builds Chromium runs: the
// relaxed-SIMD build on a plain page (one thread), the threaded
// relaxed-SIMD build on a cross-origin-isolated page (two threads), and the
// WebGPU backend on SwiftShader's adapter. Node checks the SIMD128 build
// (tests/node/generator.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { isolatedAndPlain } from './chromium.mjs';
import { assertTeacherForced, teacherForcedInputs } from '../node/teacher-forced.mjs';

const root = new URL('../../', import.meta.url);
const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));

let env;

before(async () => {
  await stat(new URL('pkg/index.js', root)).catch(() => assert.fail('pkg/ is missing: run scripts/build-pkg.sh'));
  env = await isolatedAndPlain();
});

after(() => env?.close());

/** Loads SmolLM2 on a page of `server` with `threads` on `device` and scores every fixture prompt. */
async function scoreAll(server, threads, device) {
  const { page, errors } = await env.open(server);
  const result = await page.evaluate(
    async ([url, threads, device, inputs]) => {
      const { Generator } = await window.webslm;
      const g = await Generator.load(url, { contextLength: 512, cache: false, threads, device });
      const scores = [];
      for (const tokens of inputs) scores.push(await g.score(tokens, { topK: 40 }));
      const info = g.info;
      await g.dispose();
      return { info, scores };
    },
    [MODEL, threads, device, teacherForcedInputs(fixture)],
  );
  await page.close();
  assert.deepEqual(errors, []);
  return result;
}

for (const [what, server, threads, device, build] of [
  ['a plain page, one thread', () => env.plain, 1, 'cpu', 'relaxed-simd'],
  ['an isolated page, two threads', () => env.isolated, 2, 'cpu', 'threads+relaxed-simd'],
  ['a plain page, WebGPU (SwiftShader)', () => env.plain, 1, 'webgpu', 'relaxed-simd'],
]) {
  test(`teacher-forced scores agree with llama.cpp on ${what} (${build})`, async () => {
    const { info, scores } = await scoreAll(server(), threads, device);
    assert.equal(info.backend, device);
    assert.equal(info.build, build);
    assert.equal(info.threads, threads);
    assertTeacherForced(fixture, scores, device === 'cpu' ? build : `${build} on WebGPU`);
  });
}
