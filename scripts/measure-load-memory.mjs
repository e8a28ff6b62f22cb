// How much memory a browser tab needs to load a model through the package:
// the peak resident memory (VmHWM) of the Chromium renderer that hosts the
// page, next to the file size and the load time, for a cold load and for a
// second load of the same URL after dispose() of the first. A measurement,
// not a test: it prints what it sees.
//
//   node scripts/measure-load-memory.mjs [--json] [--model models/NAME.gguf]
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { serve } from './serve.mjs';
import { launch, memory, rendererPid, resetPeak } from '../tests/browser/chromium.mjs';

const root = new URL('../', import.meta.url);
let options;
try {
  options = parseArgs({ options: { json: { type: 'boolean' }, model: { type: 'string', default: 'models/SmolLM2-135M-Instruct.Q4_1.gguf' } } }).values;
} catch (e) {
  console.error(`${e.message}\nusage: node scripts/measure-load-memory.mjs [--json] [--model models/NAME.gguf]`);
  process.exit(2);
}
const { json, model } = options;

/** One Generator.load of `url` in the page (kept as window.gen), with the renderer's memory around it. */
async function measureLoad(page, pid, url) {
  const peakReset = await resetPeak(pid);
  const before = await memory(pid);
  const { ms, loaded } = await page.evaluate(async (url) => {
    const { Generator } = await window.webslm;
    let loaded = 0;
    const start = performance.now();
    window.gen = await Generator.load(url, { onProgress: (e) => (loaded = e.loaded) });
    return { ms: performance.now() - start, loaded };
  }, url);
  const after = await memory(pid);
  return { loadMs: Math.round(ms), loadedBytes: loaded, rssBefore: before.rss, rssAfter: after.rss, peakRss: after.peak, peakReset };
}

const fileBytes = (await stat(new URL(model, root))).size;
const server = await serve();
const browser = await launch();
let report;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e}`));
  await page.goto(`${server.url}/tests/browser/page.html`);
  await page.evaluate(() => window.webslm);
  const pid = await rendererPid(page);
  const url = `/${model}`;
  const cold = await measureLoad(page, pid, url);
  await page.evaluate(() => window.gen.dispose());
  const second = await measureLoad(page, pid, url);
  if ((await rendererPid(page)) !== pid) throw new Error('the page moved to another renderer process during the measurement');
  report = { chromium: browser.version(), model, fileBytes, rendererPid: pid, loads: { cold, second } };
} finally {
  await browser.close();
  await server.close();
}

if (json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const rows = [['load', 'time', 'RSS before', 'RSS after', 'peak RSS', 'peak / file', 'peak - before']];
  for (const [name, m] of Object.entries(report.loads)) {
    rows.push([
      name + (m.peakReset ? '' : ' (peak since process start)'),
      `${(m.loadMs / 1000).toFixed(2)} s`,
      mib(m.rssBefore),
      mib(m.rssAfter),
      mib(m.peakRss),
      `${(m.peakRss / fileBytes).toFixed(2)}x`,
      mib(m.peakRss - m.rssBefore),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(`${report.model}: ${mib(fileBytes)} (${fileBytes} bytes); Chromium ${report.chromium}, renderer pid ${report.rendererPid}`);
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}
