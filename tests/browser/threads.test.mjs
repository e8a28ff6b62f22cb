// The threaded build in headless Chromium: on a cross-origin-isolated page
// `threads: 2` runs on two threads (the page's thread and one Worker), in the
// page and in worker mode's Worker (nested Workers), with the single-threaded
// build's greedy tokens and llama.cpp's; a page without isolation falls back
// to one thread, which is not an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { isolatedAndPlain } from './chromium.mjs';

const root = new URL('../../', import.meta.url);
const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
const raw = fixture.prompts.filter((p) => p.kind === 'raw');
// The threaded build splits the same per-row and per-head sums over threads,
// so its logits are bit for bit the single-threaded build's: every token matches.
const TOKENS = 16;

let env;

before(async () => {
  await stat(new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root)).catch(() => assert.fail(`${MODEL} is missing: run scripts/fetch-models.sh`));
  await stat(new URL('pkg/index.js', root)).catch(() => assert.fail('pkg/ is missing: run scripts/build-pkg.sh'));
  env = await isolatedAndPlain();
});

after(() => env?.close());

/** Loads SmolLM2 with `options` in `page` and generates greedily from every raw prompt. */
function run(page, options) {
  return page.evaluate(
    async ([url, options, prompts, n]) => {
      const { Generator } = await window.webslm;
      const g = await Generator.load(url, { contextLength: 256, cache: false, ...options });
      const tokens = [];
      let decode = 0;
      for (const prompt of prompts) {
        const ids = [];
        for await (const p of g.generate(prompt, { maxTokens: n })) ids.push(p.token);
        tokens.push(ids);
        decode += g.stats.decodeTokensPerSecond / prompts.length;
      }
      const info = g.info;
      await g.dispose();
      window.show(`${JSON.stringify(options)}: ${info.build}, ${info.threads} threads, ${decode.toFixed(1)} tok/s decoding`);
      return { info, tokens, decode };
    },
    [MODEL, options, raw.map((p) => p.prompt_token_ids), TOKENS],
  );
}

/** Each prompt's tokens up to llama.cpp's first near-tie, as tests/node/generator.test.mjs compares them. */
function assertLlamaCpp(tokens) {
  raw.forEach((p, i) => {
    const tie = p.step_top3.findIndex((s) => s[0][1] - s[1][1] < 0.5);
    const sure = tie < 0 ? TOKENS : Math.min(tie, TOKENS);
    assert.deepEqual(tokens[i].slice(0, sure), p.generated_token_ids.slice(0, sure), p.name);
  });
}

test('threads: 2 on an isolated page runs the threaded build on two threads, with the single-threaded tokens', async (t) => {
  const { page, errors } = await env.open(env.isolated);
  try {
    assert.equal(await page.evaluate(() => window.crossOriginIsolated), true);
    const single = await run(page, { threads: 1 });
    const threaded = await run(page, { threads: 2 });
    assert.equal(single.info.threads, 1);
    assert.doesNotMatch(single.info.build, /^threads\+/);
    assert.equal(threaded.info.threads, 2);
    assert.equal(threaded.info.threadsReason, undefined);
    assert.match(threaded.info.build, /^threads\+(simd128|relaxed-simd)$/);
    assertLlamaCpp(single.tokens);
    assert.deepEqual(threaded.tokens, single.tokens);
    t.diagnostic(`decode: ${single.decode.toFixed(1)} tok/s on ${single.info.build}, ${threaded.decode.toFixed(1)} tok/s on ${threaded.info.build} with 2 threads`);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('worker mode runs the threaded build too (its pool is nested Workers)', async () => {
  const { page, errors } = await env.open(env.isolated);
  try {
    const threaded = await run(page, { threads: 2, worker: true });
    assert.equal(threaded.info.worker, true);
    assert.equal(threaded.info.threads, 2);
    assert.match(threaded.info.build, /^threads\+/);
    assertLlamaCpp(threaded.tokens);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('a page without cross-origin isolation falls back to one thread', async () => {
  const { page, errors } = await env.open(env.plain);
  try {
    assert.equal(await page.evaluate(() => window.crossOriginIsolated), false);
    const fallback = await run(page, { threads: 2 });
    assert.equal(fallback.info.threads, 1);
    assert.match(fallback.info.threadsReason, /not cross-origin isolated/);
    assert.doesNotMatch(fallback.info.build, /^threads\+/);
    assertLlamaCpp(fallback.tokens);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('after a panic inside a generation on a threaded instance the next load gets a fresh one, with its own pool', async () => {
  const { page } = await env.open(env.isolated);
  try {
    const result = await page.evaluate(
      async ([url, prompt]) => {
        const { Generator } = await window.webslm;
        const trapped = await Generator.load(url, { threads: 2, contextLength: 64, cache: false });
        // The test suite's option: the engine panics once two tokens are out.
        const before = [];
        const panic = await (async () => {
          for await (const p of trapped.generate(prompt, { maxTokens: 8, __panicForTesting: 2 })) before.push(p.token);
        })().catch((e) => ({ code: e.code, message: e.message }));
        const error = await trapped.tokenize('x').catch((e) => ({ code: e.code, message: e.message }));
        await trapped.dispose();
        const fresh = await Generator.load(url, { threads: 2, contextLength: 64, cache: false });
        const tokens = [];
        for await (const p of fresh.generate(prompt, { maxTokens: 4 })) tokens.push(p.token);
        const info = fresh.info;
        await fresh.dispose();
        return { before, panic, error, tokens, info };
      },
      [MODEL, raw[0].prompt_token_ids],
    );
    assert.deepEqual(result.before, raw[0].generated_token_ids.slice(0, 2));
    assert.equal(result.panic.code, 'INTERNAL');
    assert.match(result.panic.message, /deliberate panic after 2 tokens/);
    assert.equal(result.error.code, 'INTERNAL');
    assert.match(result.error.message, /deliberate panic/);
    assert.equal(result.info.threads, 2);
    assert.deepEqual(result.tokens, raw[0].generated_token_ids.slice(0, 4));
  } finally {
    await page.close();
  }
});
