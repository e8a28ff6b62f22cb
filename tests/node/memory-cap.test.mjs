// When wasm memory cannot grow, as a browser that gives a tab no more memory
// does: V8's --wasm-max-mem-pages caps it in child processes, from too little
// for the weights to a little less than a long prompt needs. Whether an
// allocation that is checked fails (a tensor, the cache) or one deep inside
// the engine (which Rust aborts on, trapping the instance), the load or the
// generation fails with OUT_OF_MEMORY, never INTERNAL; the next load gets a
// fresh instance and replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const root = new URL('../../', import.meta.url);
const MODEL = new URL('models/SmolLM2-135M-Instruct.Q4_1.gguf', root).pathname;
const SMALL = new URL('models/tiny-arch/gpt2-Q4_0.gguf', root).pathname;

/** Run in a child under the cap: SmolLM2 with a long prompt, then the small model. */
const child = `
const { Generator } = await import(${JSON.stringify(new URL('pkg/index.js', root).href)});
const run = async (url, contextLength, prompt) => {
  try {
    const g = await Generator.load(url, { contextLength, cache: false });
    let tokens = 0;
    for await (const _ of g.generate(prompt, { maxTokens: 4 })) tokens++;
    await g.dispose();
    return { tokens };
  } catch (e) {
    return { code: e.code, message: e.message };
  }
};
const first = await run(${JSON.stringify(MODEL)}, 2048, 'Tell me a long story about '.repeat(40));
const second = await run(${JSON.stringify(SMALL)}, 64, 'Hi');
console.log(JSON.stringify({ first, second }));
`;

test('a memory that cannot grow gives OUT_OF_MEMORY, and the next load replies on a fresh instance', async () => {
  const seen = { checked: 0, trapped: 0, fits: 0 };
  // 64 KiB pages: 32 MiB to 144 MiB.
  for (let pages = 512; pages <= 2304; pages += 256) {
    const { stdout } = await promisify(execFile)(process.execPath, [`--wasm-max-mem-pages=${pages}`, '--input-type=module', '-e', child]);
    const { first, second } = JSON.parse(stdout.trim().split('\n').pop());
    const at = `${pages} pages: ${JSON.stringify(first)}`;
    if (first.code === undefined) {
      assert.ok(first.tokens >= 1, at);
      seen.fits++;
    } else {
      assert.equal(first.code, 'OUT_OF_MEMORY', at);
      seen[/was refused/.test(first.message) ? 'trapped' : 'checked']++;
    }
    assert.equal(second.code, undefined, `${pages} pages, then the small model: ${JSON.stringify(second)}`);
    assert.ok(second.tokens >= 1);
  }
  // Each kind of failure happened, and the largest cap is enough.
  assert.ok(seen.checked > 0 && seen.trapped > 0 && seen.fits > 0, JSON.stringify(seen));
});
