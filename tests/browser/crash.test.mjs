// Downloads cut short. The browser killed mid-download (SIGKILL: no unload,
// no last write) and started again on the same profile: the download
// resumes from the last whole chunk it stored and ends as the file on disk
// (its SHA-256 checked); Chromium runs as its own process here, so that the
// test can kill it, and playwright-core drives it over the DevTools
// protocol. The site's storage cleared behind the page's back mid-download
// (DevTools' Storage.clearDataForOrigin): the load fails with a clear error
// or completes, and either way what loads next is the model (llama.cpp's
// greedy tokens), never a mix of old and new bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chromium } from 'playwright-core';
import { serve } from '../../scripts/serve.mjs';
import { ARGS, executablePath, launch } from './chromium.mjs';

const root = new URL('../../', import.meta.url);
const MODEL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';
const CHUNK = 4 << 20;

let server;
let profile;

before(async () => {
  await stat(new URL('pkg/index.js', root)).catch(() => assert.fail('pkg/ is missing: run scripts/build-pkg.sh'));
  // About 10 s for the whole file: time to kill the browser part-way.
  server = await serve({ throttle: 10 << 20 });
  profile = await mkdtemp(join(tmpdir(), 'webslm-profile-'));
});

after(async () => {
  await server?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

/** Chromium on `profile`, its process and a page of the test page over CDP. */
async function start() {
  const proc = spawn(executablePath, [...ARGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise((ok, fail) => {
    let text = '';
    proc.stderr.on('data', (d) => {
      text += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (m) ok(m[1]);
    });
    proc.once('exit', (code) => fail(new Error(`chromium exited (${code}): ${text}`)));
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const page = await browser.contexts()[0].newPage();
  await page.goto(`${server.url}/tests/browser/page.html`);
  return { proc, browser, page };
}

test('a browser killed mid-download resumes it from its last whole chunk on the next start, and the file ends byte for byte', async () => {
  const size = (await stat(new URL(MODEL, root))).size;
  const sha256 = createHash('sha256').update(await readFile(new URL(MODEL, root))).digest('hex');

  const first = await start();
  first.page.evaluate(async (url) => (await window.webslm).Generator.load(url, { sha256: undefined }), `/${MODEL}`).catch(() => {});
  // Killed once a few chunks are in.
  while (server.sent < 3.5 * CHUNK) await new Promise((ok) => setTimeout(ok, 50));
  const exited = new Promise((ok) => first.proc.once('exit', ok));
  first.proc.kill('SIGKILL');
  await exited;

  const second = await start();
  try {
    const stored = await second.page.evaluate(async () => (await (await window.webslm).Generator.cache.list()).map((m) => ({ complete: m.complete, downloaded: m.downloaded })));
    assert.equal(stored.length, 1, JSON.stringify(stored));
    const { complete, downloaded } = stored[0];
    assert.equal(complete, false);
    assert.ok(downloaded >= CHUNK && downloaded % CHUNK === 0 && downloaded < size, `${downloaded} bytes kept`);
    const ranges = server.ranges.length;
    const loaded = await second.page.evaluate(
      async ([url, sha256]) => {
        const { Generator } = await window.webslm;
        const g = await Generator.load(url, { sha256 });
        let tokens = 0;
        for await (const _ of g.generate('The', { maxTokens: 2 })) tokens++;
        const cached = g.info.cached;
        await g.dispose();
        return { tokens, cached, list: (await Generator.cache.list()).map((m) => m.complete) };
      },
      [`/${MODEL}`, sha256],
    );
    assert.ok(loaded.tokens >= 1);
    assert.deepEqual(loaded.list, [true]);
    // The data came from where the stored chunks end, none of it again.
    const resumed = server.ranges.slice(ranges).filter((r) => r && !r.startsWith('bytes=0-'));
    assert.ok(resumed.some((r) => r.startsWith(`bytes=${downloaded}-`)), `${downloaded} kept; ${JSON.stringify(server.ranges)}`);
  } finally {
    await second.browser.close();
    second.proc.kill('SIGKILL');
  }
});

test('storage cleared mid-download: a clear error or a whole model, and the next load is the model', async (t) => {
  const fixture = JSON.parse(await readFile(new URL('tests/fixtures/smollm2-q4_1/reference_greedy.json', root)));
  const fox = fixture.prompts.find((p) => p.name === 'raw_fox');
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/tests/browser/page.html`);
    const run = (url, prompt) =>
      page.evaluate(
        async ([url, prompt]) => {
          const { Generator } = await window.webslm;
          try {
            const g = await Generator.load(url);
            const tokens = [];
            for await (const p of g.generate(prompt, { maxTokens: 6 })) tokens.push(p.token);
            await g.dispose();
            return { tokens };
          } catch (e) {
            return { code: e.code, message: e.message };
          }
        },
        [url, prompt],
      );
    const sent = server.sent;
    const first = run(`/${MODEL}`, fox.prompt_token_ids);
    while (server.sent < sent + 2.5 * CHUNK) await new Promise((ok) => setTimeout(ok, 50));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.clearDataForOrigin', { origin: server.url, storageTypes: 'all' });
    const cut = await first;
    t.diagnostic(`the load cleared under: ${cut.code ? `${cut.code}: ${cut.message}` : 'completed'}`);
    if (cut.code === undefined) assert.deepEqual(cut.tokens, fox.generated_token_ids.slice(0, 6));
    else assert.ok(['IO', 'NETWORK'].includes(cut.code), `${cut.code}: ${cut.message}`);
    const next = await run(`/${MODEL}`, fox.prompt_token_ids);
    assert.equal(next.code, undefined, next.message);
    assert.deepEqual(next.tokens, fox.generated_token_ids.slice(0, 6));
  } finally {
    await browser.close();
  }
});
