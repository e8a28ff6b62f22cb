// The npm package in Node with the engine on the main thread: the scenarios
// shared with worker mode (scenarios.mjs), llama.cpp's teacher-forced logits
// through the JS API, and the bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { scenarios, root, modelPath, fixture, fox } from './scenarios.mjs';

const shared = scenarios({ worker: false });

test('teacher-forced scores through the JS API agree with llama.cpp (budgets of tests/llama_reference.rs)', async () => {
  let [logits, within, total, worst] = [0, 0, 0, 0];
  for (const p of fixture.prompts) {
    const tokens = [...p.prompt_token_ids, ...p.generated_token_ids];
    const s = await shared.gen.score(tokens, { topK: 40 });
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

test('the bin runs a prompt and prints JSON', async () => {
  const bin = new URL('pkg/bin/webslm.js', root).pathname;
  const run = (args) =>
    new Promise((resolve) => execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr })));
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
