// llama.cpp's teacher-forced check, shared by every runtime that scores
// through the JS API (Node here, Chromium's builds in tests/browser/), with
// the budgets of tests/llama_reference.rs.
import assert from 'node:assert/strict';

/** The token ids to score for each fixture prompt: the prompt, then llama.cpp's greedy tokens. */
export const teacherForcedInputs = (fixture) => fixture.prompts.map((p) => [...p.prompt_token_ids, ...p.generated_token_ids]);

/**
 * `scores[i]`: `score(teacherForcedInputs(fixture)[i], { topK: 40 })`. Top-1
 * equal wherever llama.cpp's top-2 gap is at least 0.5; llama.cpp's top 3 in
 * our top 40, each logit within 1.25, 95% within 0.5, mean difference ≤ 0.25.
 */
export function assertTeacherForced(fixture, scores, what = '') {
  let [logits, within, total] = [0, 0, 0];
  fixture.prompts.forEach((p, i) => {
    p.step_top3.forEach((top3, j) => {
      // score() predicts every token after the first: entry i predicts tokens[i + 1].
      const ours = scores[i].tokens[p.prompt_token_ids.length - 1 + j];
      assert.equal(ours.id, p.generated_token_ids[j]);
      if (top3[0][1] - top3[1][1] >= 0.5) assert.equal(ours.top[0].id, top3[0][0], `${what} ${p.name} step ${j}: top-1`);
      for (const [id, theirs] of top3) {
        const mine = ours.top.find((c) => c.id === id);
        assert.ok(mine, `${what} ${p.name} step ${j}: llama.cpp's token ${id} is not in our top 40`);
        const d = Math.abs(mine.logit - theirs);
        assert.ok(d <= 1.25, `${what} ${p.name} step ${j}: logit ${mine.logit} vs llama.cpp ${theirs}`);
        [logits, within, total] = [logits + 1, within + (d <= 0.5), total + d];
      }
    });
  });
  assert.ok(logits >= 700, `${what}: ${logits} logits compared`);
  assert.ok(within / logits >= 0.95, `${what}: ${within} of ${logits} within 0.5`);
  assert.ok(total / logits <= 0.25, `${what}: mean difference ${total / logits}`);
  return { logits, within, mean: total / logits };
}
