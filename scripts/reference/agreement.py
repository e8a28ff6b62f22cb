#!/usr/bin/env python3
"""How closely engines agree with the llama.cpp fixtures, teacher-forced.

Compares, at every generated position of tests/fixtures/smollm2-q4_1/
reference_greedy.json, llama.cpp's top-3 logits (made one token at a time) with
(a) this llama.cpp build run as one batch (build.sh) and (b) webslm's generate
example in --score mode. Prints the figures the budgets in
tests/llama_reference.rs are based on. Needs numpy.
"""
import json, os, subprocess, sys
import numpy as np

root = os.path.join(os.path.dirname(__file__), "..", "..")
model = os.path.join(root, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
oracle = os.path.join(os.path.dirname(__file__), "build", "logits")
example = os.path.join(root, "target", "release", "examples", "generate")
fixture = json.load(open(os.path.join(root, "tests", "fixtures", "smollm2-q4_1", "reference_greedy.json")))

def stats(diffs):
    d = np.array(diffs)
    return f"max {d.max():.3f}, mean {d.mean():.3f}, {int((d > 0.5).sum())} of {len(d)} beyond 0.5 ({(d <= 0.5).mean() * 100:.1f}% within)"

ours, theirs = [], []
for p in fixture["prompts"]:
    ids = p["prompt_token_ids"] + p["generated_token_ids"]
    n = len(p["prompt_token_ids"])
    subprocess.run([oracle, model, "/tmp/logits.bin"] + [str(i) for i in ids[:-1]], check=True)
    batch = np.fromfile("/tmp/logits.bin", dtype=np.float32).reshape(len(ids) - 1, -1)
    out = subprocess.run([example, "--model", model, "--score", "--prompt-ids", ",".join(map(str, ids[:n])),
                          "--continuation-ids", ",".join(map(str, ids[n:])), "--top-k", "400"],
                         check=True, capture_output=True, text=True).stdout
    scored = json.loads(out)["positions"]
    for k, step in enumerate(p["step_top3"]):
        mine = dict((int(i), l) for i, l in scored[k]["top"])
        for token, logit in step:
            theirs.append(abs(batch[n - 1 + k][token] - logit))
            ours.append(abs(mine[token] - logit))
print("llama.cpp (this build, one batch) vs fixtures:", stats(theirs))
print("webslm (CPU, native) vs fixtures:            ", stats(ours))
