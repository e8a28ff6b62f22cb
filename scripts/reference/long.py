#!/usr/bin/env python3
"""Makes tests/fixtures/gemma3-270m-q4_k_m/reference_long.json: llama.cpp's
greedy continuation, with its top-3 logits at every step, of the fixture's
prompts longer than Gemma 3's 512-token sliding window (`long` in
prompts.json), in reference_greedy.json's format. Needs `greedy` from
build.sh and models/gemma-3-270m-q4_k_m.gguf."""
import json, os, subprocess

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..")
fixtures = os.path.join(root, "tests", "fixtures", "gemma3-270m-q4_k_m")
model = os.path.join(root, "models", "gemma-3-270m-q4_k_m.gguf")
prompts = json.load(open(os.path.join(fixtures, "prompts.json")))

out = []
for p in prompts["long"]:
    ids = p["prompt_token_ids"]
    run = subprocess.run([os.path.join(here, "build", "greedy"), model, str(p["max_tokens"])] + [str(i) for i in ids],
                         check=True, capture_output=True, text=True)
    steps = [[int(f) if i % 2 == 0 else float(f) for i, f in enumerate(line.split()[1:])] for line in run.stdout.splitlines()]
    top3 = [[[s[0], s[1]], [s[2], s[3]], [s[4], s[5]]] for s in steps]
    generated = [t[0][0] for t in top3]
    out.append({**{k: p[k] for k in ("name", "kind", "user_text", "formatted", "prompt_token_ids", "max_tokens")},
                "generated_token_ids": generated,
                "stopped_at_eog": generated[-1] in prompts["eog_token_ids"],
                "min_top1_top2_gap": min(t[0][1] - t[1][1] for t in top3),
                "step_top3": top3})
    print(p["name"], len(ids), "prompt tokens:", generated)

json.dump({"model": prompts["model"],
           "made_by": "scripts/reference/long.py with scripts/reference/build.sh's greedy: llama-cpp-python 0.3.36's "
                      "vendored llama.cpp (0c1e570), AVX2 build, n_ctx = n_batch = n_ubatch = 2048, 2 threads, no flash "
                      "attention, full-size cache on windowed layers; the prompt as one batch, then one token at a time",
           "sampling": "greedy argmax over final-position logits, ties -> lowest id",
           "step_top3_note": "per generated position: top-3 [token_id, logit] (logits rounded to 4 decimals)",
           "prompts": out},
          open(os.path.join(fixtures, "reference_long.json"), "w"), indent=1, ensure_ascii=False)
