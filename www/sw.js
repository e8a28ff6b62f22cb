// Keeps the page and the package available offline. Network first, so a
// rebuilt package is picked up at once; the cached copy when the network is
// gone. Model files are not kept here: the package caches them in IndexedDB,
// and their range requests pass straight through. app.js registers it for the
// folder above www/, so that it also serves the engine's Worker (pkg/).
const CACHE = 'webslm-demo-v2';
const SHELL = [
  './',
  'index.html',
  'app.js',
  'style.css',
  'icon.svg',
  '../pkg/index.js',
  '../pkg/remote.js',
  '../pkg/worker.js',
  // Every build the package may pick (scripts/build-pkg.sh); the thread
  // pool's Worker script, under a hashed name, is kept when first fetched.
  ...['simd128', 'relaxed-simd', 'threads-simd128', 'threads-relaxed-simd'].flatMap((b) => [`../pkg/wasm/webslm-${b}.js`, `../pkg/wasm/webslm-${b}_bg.wasm`]),
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => {})
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin || request.headers.has('range') || url.pathname.endsWith('.gguf')) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        if (response.ok) await cache.put(request, response.clone());
        return response;
      } catch (e) {
        const cached = await cache.match(request);
        if (cached) return cached;
        throw e;
      }
    })(),
  );
});
