#!/usr/bin/env python3
"""Makes tests/fixtures/arch/<arch>.json: llama.cpp's teacher-forced top-20
logits for the tiny model of each architecture in tests/common/arch.rs
(random weights, a real tokenizer from llama.cpp's vocabularies), in each
weight format, along three texts.

The models come from `cargo run --example reference_models -- tiny`, which the
tests repeat byte for byte (the fixture keeps each file's SHA-256). Their
quantized tensors are checked to be exactly what llama.cpp's own quantizer
(`quantize ... pure`, build.sh) makes of the F32 model, so that llama.cpp's
reference reads files its quantizer could have written. Needs build.sh's
`logits` and `quantize`, and models/llama.cpp/ (scripts/fetch-models.sh).
Takes about 3 minutes."""
import json, os, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
build = os.path.join(here, "build")
out_dir = os.path.join(build, "arch")
example = os.path.join(root, "target", "release", "examples", "reference_models")
fixtures = os.path.join(root, "tests", "fixtures", "arch")
FTYPES = {"F16": 1, "Q8_0": 7, "Q4_0": 2}
TOP = 20

subprocess.run(["cargo", "build", "--release", "--example", "reference_models"], cwd=root, check=True)
lines = subprocess.run([example, "tiny", out_dir], check=True, capture_output=True, text=True).stdout
models = [json.loads(l) for l in lines.splitlines()]
os.makedirs(fixtures, exist_ok=True)

for arch in dict.fromkeys(m["arch"] for m in models):
    master = next(m for m in models if m["arch"] == arch and m["format"] == "F32")
    formats = {}
    for m in models:
        if m["arch"] != arch or m["format"] == "F32":
            continue
        theirs = os.path.join(out_dir, f"{arch}-{m['format']}-llama-quantize.gguf")
        subprocess.run([os.path.join(build, "quantize"), master["file"], theirs, str(FTYPES[m["format"]]), "pure"],
                       check=True)
        same = subprocess.run([example, "same", m["file"], theirs], capture_output=True, text=True)
        if same.returncode != 0:
            sys.exit(f"{arch} {m['format']}: our tensors differ from llama.cpp's quantizer:\n{same.stdout}")
        prompts, gaps = [], []
        for text, ids in zip(m["texts"], m["prompts"]):
            logits = os.path.join(out_dir, "logits.bin")
            subprocess.run([os.path.join(build, "logits"), m["file"], logits] + [str(i) for i in ids], check=True)
            top = json.loads(subprocess.run([example, "top", logits, str(m["n_vocab"]), str(TOP)],
                                            check=True, capture_output=True, text=True).stdout)
            # The positions that predict ids[1:].
            top = [[[i, round(l, 4)] for i, l in row] for row in top[:-1]]
            gaps += [row[0][1] - row[1][1] for row in top]
            prompts.append({"text": text, "token_ids": ids, "top20": top})
        q = statistics.quantiles(gaps, n=4)
        formats[m["format"]] = {
            "file_bytes": m["bytes"],
            "sha256": m["sha256"],
            "tensors_as_llama_quantize_pure": True,
            "top1_top2_gap": {"min": round(min(gaps), 4), "quartiles": [round(x, 4) for x in q],
                              "share_at_least_0_5": round(sum(g >= 0.5 for g in gaps) / len(gaps), 4)},
            "prompts": prompts,
        }
        print(f"{arch} {m['format']}: {len(gaps)} positions, top-2 gap min {min(gaps):.3f}, "
              f"quartiles {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}, {sum(g >= 0.5 for g in gaps)} at least 0.5")
    json.dump({"arch": arch,
               "made_by": "scripts/reference/arch.py: tests/common/arch.rs's tiny model through build.sh's logits "
                          "(llama-cpp-python 0.3.36's vendored llama.cpp 0c1e570, AVX2 build, n_ctx = n_batch = 512, "
                          "2 threads, no flash attention), each text as one batch",
               "top20_note": "per position predicting token_ids[1:]: llama.cpp's top-20 [token_id, logit], ties to the "
                             "lower id",
               "formats": formats},
              open(os.path.join(fixtures, f"{arch}.json"), "w"), separators=(",", ":"))
