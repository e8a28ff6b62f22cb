// One Node run of the benchmark, in a process of its own so that its peak
// RSS belongs to this run alone: loads the package from pkg/, warms up,
// times one generation and prints the figures (with the RSS before the import
// and the peak), or the error, as JSON.
//
//   node benches/node.mjs '{"model": PATH, "ids": [...] or null, "text": T, "endOfGeneration": [...], "maxTokens": N, "threads": T, "contextLength": C, "responseFormat": F or null}'
import { banEndOfGeneration, generate, promptIds, warmup } from './measure.mjs';

// The process before the package is imported: what the run adds is measured from here.
const idleBytes = process.memoryUsage.rss();
const { model, ids: given, text, endOfGeneration, maxTokens, threads, contextLength, responseFormat } = JSON.parse(process.argv[2]);
try {
  const { Generator } = await import('../pkg/index.js');
  const start = performance.now();
  const gen = await Generator.load(model, { threads, contextLength });
  const loadMs = performance.now() - start;
  // The package falls back to fewer threads where it cannot start them: such a run would measure another configuration.
  if (gen.info.threads !== threads) throw new Error(`${threads} threads asked for, the package runs ${gen.info.threads} here`);
  const bias = await banEndOfGeneration(gen, endOfGeneration);
  const ids = await promptIds(gen, { ids: given, text });
  await warmup(gen, ids, bias, responseFormat);
  const run = await generate(gen, ids, maxTokens, bias, responseFormat);
  const info = gen.info;
  await gen.dispose();
  // maxRSS is in KiB.
  const peakBytes = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ load: { loadMs, source: 'file' }, info, run, idleBytes, peakBytes }));
} catch (e) {
  console.log(JSON.stringify({ error: e.code ? `${e.code}: ${e.message}` : String(e?.message ?? e) }));
}
