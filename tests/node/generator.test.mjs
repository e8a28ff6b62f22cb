// The npm package in Node with the engine on the main thread: the scenarios
// shared with worker mode (scenarios.mjs), llama.cpp's teacher-forced logits
// through the JS API, and the bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { scenarios, root, modelPath, fixture, fox } from './scenarios.mjs';
import { assertTeacherForced, teacherForcedInputs } from './teacher-forced.mjs';

const shared = scenarios({ worker: false });

test('teacher-forced scores through the JS API agree with llama.cpp (budgets of tests/llama_reference.rs)', async () => {
  const scores = [];
  for (const tokens of teacherForcedInputs(fixture)) scores.push(await shared.gen.score(tokens, { topK: 40 }));
  assertTeacherForced(fixture, scores, shared.gen.info.build);
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
