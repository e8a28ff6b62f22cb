// When the browser's storage cannot take a model, in headless Chromium's
// off-the-record contexts (Playwright's default): a quota made small with
// DevTools' Storage.overrideQuotaForOrigin, refused before the download or
// during it, and a page whose IndexedDB cannot be opened. The model loads
// uncached with a warning, or fails with `cache: 'required'`; a model cached
// before stays, and loads offline with the same bytes (its SHA-256 checked).
// Two tabs that download the same URL at once keep one copy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { serve } from '../../scripts/serve.mjs';
import { launch } from './chromium.mjs';

const root = new URL('../../', import.meta.url);
const MODEL = 'models/SmolLM2-135M-Instruct.Q4_1.gguf';
/** A model small enough for the small quota: cached first, it must stay cached. */
const SMALL = 'models/tiny-arch/gpt2-Q4_0.gguf';
const QUOTA = 40 << 20;

let server;
let browser;

before(async () => {
  for (const file of [MODEL, SMALL, 'pkg/index.js']) {
    await stat(new URL(file, root)).catch(() => assert.fail(`${file} is missing: run scripts/test.sh (it makes what the tests need)`));
  }
  server = await serve();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh off-the-record context's page on the test page, its quota `quota` bytes where given. */
async function freshPage({ quota, script } = {}) {
  const context = await browser.newContext();
  if (script) await context.addInitScript(script);
  const page = await context.newPage();
  await page.goto(`${server.url}/tests/browser/page.html`);
  if (quota !== undefined) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: quota });
  }
  return { page, close: () => context.close() };
}

/**
 * Loads `url` with `options` in `page`, generates a token and disposes:
 * the warnings, `info.cached`, the error's code (or null) and the cache's
 * list afterwards.
 */
function load(page, url, options = {}) {
  return page.evaluate(
    async ([url, options]) => {
      const { Generator } = await window.webslm;
      const warnings = [];
      let result;
      try {
        const gen = await Generator.load(url, { ...options, onProgress: (e) => e.phase === 'warning' && warnings.push(e) });
        let tokens = 0;
        for await (const _piece of gen.generate('The', { maxTokens: 2, temperature: 0 })) tokens++;
        result = { cached: gen.info.cached, tokens, error: null };
        await gen.dispose();
      } catch (e) {
        result = { error: e.code, message: e.message };
      }
      const list = (await Generator.cache.list().catch(() => [])).map((m) => ({ url: new URL(m.url).pathname, complete: m.complete }));
      return { ...result, warnings, list };
    },
    [url, options],
  );
}

test('a quota smaller than the model: it loads uncached with a warning, and the model cached before stays', async () => {
  const { page, close } = await freshPage({ quota: QUOTA });
  try {
    const small = await load(page, `/${SMALL}`);
    assert.equal(small.cached, true, JSON.stringify(small));
    const big = await load(page, `/${MODEL}`);
    assert.equal(big.error, null, big.message);
    assert.equal(big.cached, false);
    assert.equal(big.warnings.length, 1, JSON.stringify(big.warnings));
    assert.equal(big.warnings[0].code, 'QUOTA_EXCEEDED');
    assert.match(big.warnings[0].message, /without being cached/);
    assert.ok(big.tokens >= 1);
    assert.deepEqual(big.list, [{ url: `/${SMALL}`, complete: true }]);
  } finally {
    await close();
  }
});

test('a quota that runs out during the download (the estimate promised more): it loads uncached, and the model cached before stays', async () => {
  // As Chromium's off-the-record contexts do: estimate() tells of far more than a write may take.
  const { page, close } = await freshPage({
    quota: QUOTA,
    script: () => {
      navigator.storage.estimate = async () => ({ quota: 10 * 2 ** 30, usage: 0 });
    },
  });
  try {
    assert.equal((await load(page, `/${SMALL}`)).cached, true);
    const big = await load(page, `/${MODEL}`);
    assert.equal(big.error, null, big.message);
    assert.equal(big.cached, false);
    assert.deepEqual(big.warnings.map((w) => w.code), ['QUOTA_EXCEEDED']);
    // The warning came once the cache was full, not before the download.
    assert.ok(big.warnings[0].loaded > 0, JSON.stringify(big.warnings[0]));
    assert.deepEqual(big.list, [{ url: `/${SMALL}`, complete: true }]);
    // Loaded again, it downloads again (and warns again): nothing half-stored was left behind to resume from.
    const again = await load(page, `/${MODEL}`);
    assert.equal(again.cached, false);
    assert.deepEqual(again.list, [{ url: `/${SMALL}`, complete: true }]);
  } finally {
    await close();
  }
});

test("cache: 'required' fails with QUOTA_EXCEEDED where the model does not fit, leaving the cache as it was: the model cached before loads offline, its bytes the same", async () => {
  const { page, close } = await freshPage({ quota: QUOTA });
  try {
    assert.equal((await load(page, `/${SMALL}`)).cached, true);
    const big = await load(page, `/${MODEL}`, { cache: 'required' });
    assert.equal(big.error, 'QUOTA_EXCEEDED', big.message);
    assert.deepEqual(big.list, [{ url: `/${SMALL}`, complete: true }]);
    const bad = await load(page, `/${SMALL}`, { cache: 'sometimes' });
    assert.equal(bad.error, 'INVALID_ARGUMENT', bad.message);
    // Offline, from the cache alone, hashed against the file on disk.
    const sha256 = createHash('sha256').update(await readFile(new URL(SMALL, root))).digest('hex');
    await page.context().setOffline(true);
    const offline = await load(page, `/${SMALL}`, { cache: 'required', sha256 });
    assert.equal(offline.error, null, offline.message);
    assert.equal(offline.cached, true);
    const wrong = await load(page, `/${SMALL}`, { cache: 'required', sha256: '0'.repeat(64) });
    assert.equal(wrong.error, 'INTEGRITY', wrong.message);
  } finally {
    await close();
  }
});

test("where IndexedDB cannot be opened the model loads uncached with a warning; cache: 'required' fails with IO", async () => {
  // As in private windows of browsers that refuse IndexedDB there.
  const { page, close } = await freshPage({
    script: () => {
      indexedDB.open = () => {
        throw new DOMException('IndexedDB is off in this window', 'InvalidStateError');
      };
    },
  });
  try {
    const plain = await load(page, `/${SMALL}`);
    assert.equal(plain.error, null, plain.message);
    assert.equal(plain.cached, false);
    assert.deepEqual(plain.warnings.map((w) => w.code), ['IO']);
    assert.match(plain.warnings[0].message, /IndexedDB cannot be opened here \(.*IndexedDB is off in this window/);
    const required = await load(page, `/${SMALL}`, { cache: 'required' });
    assert.equal(required.error, 'IO', required.message);
    const off = await load(page, `/${SMALL}`, { cache: false });
    assert.deepEqual([off.cached, off.warnings], [false, []]);
  } finally {
    await close();
  }
});

test('two tabs download the same URL at once: one copy is kept, both load, and it loads offline with its bytes the same', async () => {
  const context = await browser.newContext();
  try {
    const pages = [await context.newPage(), await context.newPage()];
    for (const page of pages) await page.goto(`${server.url}/tests/browser/page.html`);
    const [a, b] = await Promise.all(pages.map((page) => load(page, `/${MODEL}`)));
    for (const tab of [a, b]) {
      assert.equal(tab.error, null, tab.message);
      assert.ok(tab.tokens >= 1);
    }
    const stored = await pages[0].evaluate(async () =>
      (await (await window.webslm).Generator.cache.list()).map((m) => ({ url: new URL(m.url).pathname, complete: m.complete, size: m.size, downloaded: m.downloaded })),
    );
    const size = (await stat(new URL(MODEL, root))).size;
    assert.deepEqual(stored, [{ url: `/${MODEL}`, complete: true, size, downloaded: size }]);
    const sha256 = createHash('sha256').update(await readFile(new URL(MODEL, root))).digest('hex');
    await context.setOffline(true);
    const offline = await load(pages[1], `/${MODEL}`, { cache: 'required', sha256 });
    assert.equal(offline.error, null, offline.message);
    assert.equal(offline.cached, true);
  } finally {
    await context.close();
  }
});
