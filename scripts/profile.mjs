// Where one prompt's prefill spends its time: a V8 CPU profile of the
// package in headless Chromium (the page's main thread, the library without
// a Worker) or in this Node, the functions with the most self time printed,
// and the whole profile written for DevTools' Performance panel.
//
//   WEBSLM_PROFILE=1 bash scripts/build-pkg.sh   (keeps Rust names in the wasm)
//   node scripts/profile.mjs MODEL.gguf [--tokens 512] [--threads 1] [--node] [--out prefill.cpuprofile]
//
// MODEL is a path under the repository (the browser gets it from
// scripts/serve.mjs). With more than one thread the profile is the main
// thread's: its share of each split op and everything that is not split.
import { writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tokens: { type: 'string', default: '512' },
    threads: { type: 'string', default: '1' },
    node: { type: 'boolean', default: false },
    out: { type: 'string', default: 'prefill.cpuprofile' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: node scripts/profile.mjs MODEL.gguf [--tokens N] [--threads N] [--node] [--out FILE]');
  process.exit(2);
}
const model = relative(repoRoot, resolve(positionals[0]));
const [tokens, threads] = [Number(opts.tokens), Number(opts.threads)];

/**
 * Loads the model, warms the code up on a short prompt that shares no prefix
 * with the measured one, then runs `profiled` around a prefill of `tokens`
 * tokens and one generated token. Runs in the page as in Node.
 */
async function prefill({ pkg, url, tokens, threads }, profiled) {
  const { Generator } = await import(pkg);
  const gen = await Generator.load(url, { threads, worker: false, contextLength: tokens + 8 });
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(tokens / 8));
  const ids = (await gen.tokenize(text, { addSpecial: true })).slice(0, tokens);
  for await (const _ of gen.generate(ids.slice(1, 33), { maxTokens: 2, temperature: 0 }));
  const run = async () => {
    for await (const _ of gen.generate(ids, { maxTokens: 1, temperature: 0 }));
  };
  await profiled(run);
  const result = { tokens: ids.length, prefillTokensPerSecond: gen.stats.prefillTokensPerSecond, build: gen.info.build };
  await gen.dispose();
  return result;
}

let profile;
let result;
if (opts.node) {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  const args = { pkg: new URL('../pkg/index.js', import.meta.url).href, url: resolve(repoRoot, model), tokens, threads };
  result = await prefill(args, async (run) => {
    await session.post('Profiler.start');
    await run();
    ({ profile } = await session.post('Profiler.stop'));
  });
  session.disconnect();
} else {
  const { launch } = await import('../tests/browser/chromium.mjs');
  const { serve } = await import('./serve.mjs');
  const [server, browser] = await Promise.all([serve(), launch()]);
  try {
    const page = await browser.newPage();
    const cdp = await page.context().newCDPSession(page);
    // The page calls back into this script around the measured prefill.
    await page.exposeFunction('profilerStart', () => cdp.send('Profiler.start'));
    await page.exposeFunction('profilerStop', async () => {
      ({ profile } = await cdp.send('Profiler.stop'));
    });
    await page.goto(`${server.url}/tests/browser/page.html`);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
    const source = prefill.toString();
    result = await page.evaluate(
      async ([source, args]) => {
        const prefill = new Function(`return (${source})`)();
        return prefill(args, async (run) => {
          await window.profilerStart();
          await run();
          await window.profilerStop();
        });
      },
      [source, { pkg: '/pkg/index.js', url: `/${model}`, tokens, threads }],
    );
  } finally {
    await browser.close();
    await server.close();
  }
}

await writeFile(opts.out, JSON.stringify(profile));
// Self time by function name, the largest first.
const self = new Map();
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
let total = 0;
profile.samples.forEach((id, i) => {
  const frame = nodes.get(id).callFrame;
  const name = frame.functionName || `(${frame.url.split('/').pop() || 'anonymous'})`;
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
});
console.log(`${model}: ${result.tokens} tokens at ${result.prefillTokensPerSecond.toFixed(1)} tok/s, ${threads} thread(s), ${opts.node ? `Node ${process.version}` : 'Chromium'} (${result.build} build); profile in ${opts.out}`);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
  console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 110)}`);
}
