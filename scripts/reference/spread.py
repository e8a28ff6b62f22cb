#!/usr/bin/env python3
"""llama.cpp's own spread on a requantized SmolLM2 file (requant.py made
it): its teacher-forced top-3 logits of tests/fixtures/smollm2-requant/
<FORMAT>.json (one batch, 2 threads) against the same llama.cpp fed one
token at a time, and on 1 thread; the figures of the budgets.
`spread.py FORMAT...`"""
import array, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
N_VOCAB = 49152

def stats(name, diffs):
    within = sum(d <= 0.5 for d in diffs)
    print(f"  {name}: {len(diffs)} logits, {within} ({100 * within / len(diffs):.1f}%) within 0.5, "
          f"mean {sum(diffs) / len(diffs):.3f}, max {max(diffs):.3f}")

for fmt in sys.argv[1:]:
    fixture = json.load(open(os.path.join(root, "tests", "fixtures", "smollm2-requant", f"{fmt}.json")))
    model = os.path.join(here, "build", "requant", f"smollm2-{fmt}.gguf")
    print(fmt)
    for what, env in [("one token at a time", {"LOGITS_BATCH": "1"}), ("one thread", {"LOGITS_THREADS": "1"})]:
        diffs = []
        for p in fixture["prompts"]:
            ids = p["prompt_token_ids"] + p["generated_token_ids"]
            out = os.path.join(here, "build", "requant", "spread.bin")
            subprocess.run([os.path.join(here, "build", "logits"), model, out] + [str(i) for i in ids[:-1]],
                           check=True, env=os.environ | env)
            logits = array.array("f")
            with open(out, "rb") as f:
                logits.frombytes(f.read())
            n = len(p["prompt_token_ids"])
            for k, step in enumerate(p["step_top3"]):
                row = (n - 1 + k) * N_VOCAB
                diffs += [abs(logits[row + token] - logit) for token, logit in step]
        stats(what, diffs)
