// Every architecture's tiny model (tests/common/arch.rs, written into
// models/tiny-arch/ by scripts/test.sh) through the JS API on Node's build,
// teacher-forced against llama.cpp (tests/fixtures/arch/) with the budgets
// of tests/arch_reference.rs, in each weight format. The file must be the
// one llama.cpp read: its SHA-256 is the fixture's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Generator } from '../../pkg/index.js';
import { BUDGETS, archFixture, assertTeacherForced, teacherForcedInputs } from './teacher-forced.mjs';

const root = new URL('../../', import.meta.url);
const ARCHS = ['qwen2', 'qwen3', 'smollm3', 'phi3', 'phi2', 'gpt2'];

for (const arch of ARCHS) {
  const json = JSON.parse(await readFile(new URL(`tests/fixtures/arch/${arch}.json`, root)));
  for (const format of Object.keys(json.formats)) {
    test(`${arch} ${format}: teacher-forced scores through the JS API agree with llama.cpp`, async (t) => {
      const path = new URL(`models/tiny-arch/${arch}-${format}.gguf`, root).pathname;
      const bytes = await readFile(path).catch(() =>
        assert.fail(`${path} is missing: cargo run --release --example reference_models -- tiny models/tiny-arch F16 Q8_0 Q4_0`),
      );
      assert.equal(createHash('sha256').update(bytes).digest('hex'), json.formats[format].sha256, `${path} is not the file llama.cpp read`);
      const fixture = archFixture(json, format);
      const g = await Generator.load(path, { contextLength: 512 });
      try {
        assert.equal(g.info.architecture, arch);
        const scores = [];
        for (const tokens of teacherForcedInputs(fixture)) scores.push(await g.score(tokens, { topK: 40 }));
        const what = `${arch} ${format} (${g.info.build})`;
        const r = assertTeacherForced(fixture, scores, what, BUDGETS.arch);
        assertTeacherForced(fixture, scores, what, BUDGETS.archTight);
        t.diagnostic(`${r.logits} logits: ${((100 * r.within) / r.logits).toFixed(1)}% within 0.5, mean ${r.mean.toFixed(4)}, max ${r.max.toFixed(3)}`);
      } finally {
        await g.dispose();
      }
    });
  }
}
