// Headless Chromium for the browser tests and measurements: Debian's build
// (scripts/setup.sh installs it), driven by playwright-core, which downloads
// no browser of its own.
import { access, readFile, writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

// WebGPU through SwiftShader, so that a machine without a GPU still has an
// adapter; nothing that reaches out of the machine (sync, updates, QUIC).
export const ARGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,WebGPU',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/**
 * Launches a fresh browser. playwright gives every launch a new temporary
 * profile (its own --user-data-dir) and deletes it in `browser.close()`, so
 * no cache or storage carries over from one launch to the next.
 */
export async function launch() {
  await access(executablePath).catch(() => {
    throw new Error(`${executablePath} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  });
  return chromium.launch({ executablePath, headless: true, args: ARGS });
}

/**
 * A browser and two servers of the repository (scripts/serve.mjs), one with
 * cross-origin isolation and one without, for tests that compare what each
 * page gets. `open(server)` opens the test page (tests/browser/page.html)
 * and collects its uncaught errors; `close()` ends all three.
 */
export async function isolatedAndPlain() {
  const { serve } = await import('../../scripts/serve.mjs');
  const [isolated, plain, browser] = await Promise.all([serve(), serve({ isolated: false }), launch()]);
  return {
    isolated,
    plain,
    async open(server) {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${server.url}/tests/browser/page.html`);
      return { page, errors };
    },
    close: () => Promise.all([browser.close(), isolated.close(), plain.close()]),
  };
}

/**
 * A browser with the test page (tests/browser/page.html) open, served by a
 * server of the repository (scripts/serve.mjs): `{ page, close }`.
 */
export async function testPage() {
  const { serve } = await import('../../scripts/serve.mjs');
  const [server, browser] = await Promise.all([serve(), launch()]);
  const page = await browser.newPage();
  await page.goto(`${server.url}/tests/browser/page.html`);
  return { page, close: () => Promise.all([browser.close(), server.close()]) };
}

/**
 * The pid of the renderer process that hosts `page`'s main frame. The browser
 * names it in the TracingStartedInBrowser event of a (momentary) trace, which
 * is exact even with spare or site-isolated renderers around; the frame is
 * matched by its DevTools id, and the pid checked against the browser's own
 * list of renderer processes.
 */
export async function rendererPid(page) {
  const browser = page.context().browser();
  const session = await page.context().newCDPSession(page);
  const { frameTree } = await session.send('Page.getFrameTree');
  await session.detach();
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  const trace = JSON.parse((await browser.stopTracing()).toString());
  const frames = (trace.traceEvents ?? trace)
    .filter((e) => e.name === 'TracingStartedInBrowser')
    .flatMap((e) => e.args?.data?.frames ?? []);
  const pid = frames.find((f) => f.frame === frameTree.frame.id)?.processId;
  if (!pid) throw new Error(`the trace names no process for the page's main frame (${frames.length} frames traced)`);

  const browserSession = await browser.newBrowserCDPSession();
  const { processInfo } = await browserSession.send('SystemInfo.getProcessInfo');
  await browserSession.detach();
  if (!processInfo.some((p) => p.type === 'renderer' && p.id === pid)) {
    throw new Error(`process ${pid} is not one of this browser's renderers`);
  }
  // Chromium rewrites its process title, so the arguments may be joined by spaces rather than NULs.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!/(^|[\s\0])--type=renderer([\s\0]|$)/.test(cmdline)) throw new Error(`process ${pid} is not a Chromium renderer on this machine`);
  return pid;
}

/** VmRSS and VmHWM of a process, in bytes. */
export async function memory(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/**
 * Sets VmHWM back to the current RSS (Linux's clear_refs "5"), so that the
 * peak read afterwards belongs to what ran in between. False where that is not
 * allowed: the peak then counts from the process's start.
 */
export async function resetPeak(pid) {
  return writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}
