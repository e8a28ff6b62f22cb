// Worker mode of the npm package in Node: Generator.load(source, { worker: true })
// runs the engine in a node:worker_threads Worker behind the Generator's API.
// The scenarios shared with the main thread (scenarios.mjs, which also checks
// tokens, scores and info against a main-thread generator), a free main
// thread, and a dispose that lets the process exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { scenarios, root, modelPath, fox, collect } from './scenarios.mjs';

const shared = scenarios({ worker: true });

test('the main thread stays free while the worker generates', async () => {
  // On the main thread a timer can only fire between tokens, about once per
  // token; with the engine in a worker it keeps firing while each token is made.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  let pieces;
  try {
    pieces = await collect(shared.gen.generate('Once upon a time', { maxTokens: 32 }));
  } finally {
    clearInterval(timer);
  }
  assert.equal(pieces.length, 32);
  assert.ok(ticks > 2 * pieces.length, `${ticks} ticks during ${pieces.length} tokens`);
});

test('dispose ends the worker, so a Node process can exit', async () => {
  // A live worker keeps Node running: the child exits only if dispose ended it.
  const script = `
    import { Generator } from ${JSON.stringify(new URL('pkg/index.js', root).href)};
    const gen = await Generator.load(${JSON.stringify(modelPath)}, { worker: true, contextLength: 32 });
    for await (const piece of gen.generate(${JSON.stringify(fox.prompt_token_ids)}, { maxTokens: 1 })) console.log(piece.token);
    await gen.dispose();`;
  const run = await new Promise((resolve) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 300_000 }, (error, stdout, stderr) => resolve({ error, stdout, stderr })),
  );
  assert.equal(run.error, null, run.stderr);
  assert.equal(Number(run.stdout), fox.generated_token_ids[0]);
});
