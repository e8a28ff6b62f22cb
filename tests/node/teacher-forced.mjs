// llama.cpp's teacher-forced check, shared by every runtime that scores
// through the JS API (Node here, Chromium's builds in tests/browser/), with
// the budgets of tests/llama_reference.rs and tests/gemma_reference.rs.
import assert from 'node:assert/strict';

/**
 * How close our logits must be to llama.cpp's: top-1 equal wherever its
 * top-2 gap is at least `gapForTop1`; each of its top 3 within `max`,
 * `share` of them within `within`, the mean difference at most `mean`.
 */
export const BUDGETS = {
  smollm2: { within: 0.5, share: 0.95, max: 1.25, mean: 0.25, gapForTop1: 0.5 },
  // Looser: Gemma 3 turns rounding into logits (tests/gemma_reference.rs says why).
  gemma3: { within: 0.5, share: 0.85, max: 4.0, mean: 0.3, gapForTop1: 0.5 },
  // The tiny architecture models of tests/arch_reference.rs: the real
  // models' budgets, and a tighter one that catches what those let through.
  arch: { within: 0.5, share: 0.95, max: 1.0, mean: 0.25, gapForTop1: 0.5 },
  archTight: { within: 0.1, share: 0.98, max: 0.25, mean: 0.05, gapForTop1: 0.5 },
};

/**
 * One format of a tiny architecture model's fixture (tests/fixtures/arch/)
 * in reference_greedy.json's shape: each text scored from its first token,
 * llama.cpp's top 3 at every position.
 */
export const archFixture = (json, format) => ({
  prompts: json.formats[format].prompts.map((p, i) => ({
    name: `text ${i}`,
    prompt_token_ids: p.token_ids.slice(0, 1),
    generated_token_ids: p.token_ids.slice(1),
    step_top3: p.top20.map((top) => top.slice(0, 3)),
  })),
});

/** The token ids to score for each fixture prompt: the prompt, then llama.cpp's greedy tokens. */
export const teacherForcedInputs = (fixture) => fixture.prompts.map((p) => [...p.prompt_token_ids, ...p.generated_token_ids]);

/**
 * `scores[i]`: `score(teacherForcedInputs(fixture)[i], { topK: 40 })`, judged
 * by `budgets` (one of BUDGETS); llama.cpp's top 3 must be in our top 40.
 * Returns the figures: logits compared, how many within, mean and max.
 */
export function assertTeacherForced(fixture, scores, what = '', budgets = BUDGETS.smollm2) {
  let [logits, within, total, max] = [0, 0, 0, 0];
  fixture.prompts.forEach((p, i) => {
    p.step_top3.forEach((top3, j) => {
      // score() predicts every token after the first: entry i predicts tokens[i + 1].
      const ours = scores[i].tokens[p.prompt_token_ids.length - 1 + j];
      assert.equal(ours.id, p.generated_token_ids[j]);
      if (top3[0][1] - top3[1][1] >= budgets.gapForTop1) assert.equal(ours.top[0].id, top3[0][0], `${what} ${p.name} step ${j}: top-1`);
      for (const [id, theirs] of top3) {
        const mine = ours.top.find((c) => c.id === id);
        assert.ok(mine, `${what} ${p.name} step ${j}: llama.cpp's token ${id} is not in our top 40`);
        const d = Math.abs(mine.logit - theirs);
        assert.ok(d <= budgets.max, `${what} ${p.name} step ${j}: logit ${mine.logit} vs llama.cpp ${theirs}`);
        [logits, within, total, max] = [logits + 1, within + (d <= budgets.within), total + d, Math.max(max, d)];
      }
    });
  });
  const expected = fixture.prompts.reduce((n, p) => n + 3 * p.step_top3.length, 0);
  assert.ok(logits > 0 && logits === expected, `${what}: ${logits} of ${expected} logits compared`);
  assert.ok(within / logits >= budgets.share, `${what}: ${within} of ${logits} within ${budgets.within}`);
  assert.ok(total / logits <= budgets.mean, `${what}: mean difference ${total / logits}`);
  return { logits, within, mean: total / logits, max };
}
