// wasm-bindgen-rayon's bundler-less helper starts each pool Worker from a
// blob: copy of its own script (so that a script on a CDN can start one). A
// Content-Security-Policy without blob: in worker-src (`worker-src 'self'`)
// blocks that, and the threaded build falls back to one thread after a
// timeout. This makes a same-origin script start its Workers from its own
// URL, which such a policy allows; another origin's keeps the blob.
//
//   node scripts/patch-rayon-workers.mjs pkg/wasm/snippets
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const BLOB = `      let scriptBlob = await fetch(import.meta.url).then(r => r.blob());
      let url = URL.createObjectURL(scriptBlob);
      const worker = new Worker(url, {
        type: 'module'
      });
      worker.postMessage(workerInit);
      await waitForMsgType(worker, 'wasm_bindgen_worker_ready');
      URL.revokeObjectURL(url);`;

const OWN_URL = `      // webslm (scripts/patch-rayon-workers.mjs): a same-origin script
      // starts Workers from its own URL, which worker-src 'self' allows.
      const sameOrigin = new URL(import.meta.url).origin === self.location.origin;
      const url = sameOrigin ? import.meta.url : URL.createObjectURL(await fetch(import.meta.url).then(r => r.blob()));
      const worker = new Worker(url, {
        type: 'module'
      });
      worker.postMessage(workerInit);
      await waitForMsgType(worker, 'wasm_bindgen_worker_ready');
      if (!sameOrigin) URL.revokeObjectURL(url);`;

const snippets = process.argv[2];
let patched = 0;
for (const dir of await readdir(snippets)) {
  if (!dir.startsWith('wasm-bindgen-rayon-')) continue;
  const file = join(snippets, dir, 'src', 'workerHelpers.no-bundler.js');
  // The crate ships it with CRLF line ends.
  const source = (await readFile(file, 'utf8')).replaceAll('\r\n', '\n');
  if (!source.includes(BLOB)) throw new Error(`${file}: wasm-bindgen-rayon's Worker start changed; update scripts/patch-rayon-workers.mjs`);
  await writeFile(file, source.replace(BLOB, OWN_URL));
  patched++;
}
if (patched === 0) throw new Error(`${snippets}: no wasm-bindgen-rayon helper to patch`);
console.log(`patched ${patched} wasm-bindgen-rayon Worker start(s) for worker-src 'self'`);
