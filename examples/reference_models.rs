//! Writes the models the tests check against llama.cpp and helps
//! scripts/reference/arch.py and requant.py make their fixtures:
//!
//! ```text
//! reference_models tiny DIR [FORMAT...]   # tests/common/arch.rs's models as DIR/<arch>-<format>.gguf
//!                                         # (F32 and every format by default); a JSON line each
//! reference_models tensors FILE           # {"types": {tensor: type}, "hash": tensor hash} (tests/common/requant.rs)
//! reference_models requant SOURCE TYPES.json OUT  # SOURCE requantized into the types TYPES.json names
//! reference_models same A.gguf B.gguf     # exit 1 unless every tensor's bytes agree
//! reference_models top LOGITS.bin N_VOCAB K  # top-K [id, logit] per row, JSON
//! ```
//! (`cargo run --release --example reference_models -- ...`). `tiny` also
//! tokenizes the reference texts with each model's tokenizer.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../tests/common/mod.rs"]
mod common;

use common::arch::{tiny, ARCHS, FORMATS};
use common::requant::{requantize, tensor_hash, tensors, types};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::process::ExitCode;
use webslm::quant::GgmlType;

/// Texts whose tokens the references are teacher-forced along: prose, code
/// and French, 20-40 tokens each.
const TEXTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog. Then it ran into the forest, where the trees were tall",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Quelle est la capitale de la France ? La capitale de la France est Paris, une ville célèbre pour",
];

fn write(dir: &str, formats: &[GgmlType]) {
    std::fs::create_dir_all(dir).unwrap();
    for arch in ARCHS {
        for &ty in formats {
            let bytes = tiny(arch, ty);
            let file = format!("{dir}/{arch}-{}.gguf", ty.name());
            std::fs::write(&file, &bytes).unwrap();
            let session = webslm::Session::load_bytes(&bytes, webslm::LoadOptions::default()).unwrap();
            let prompts: Vec<Vec<u32>> = TEXTS.iter().map(|t| session.tokenize(t, true).unwrap()).collect();
            let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            let line = serde_json::json!({
                "arch": arch, "format": ty.name(), "file": file, "bytes": bytes.len(), "sha256": sha,
                "n_vocab": session.hparams().n_vocab, "texts": TEXTS, "prompts": prompts,
            });
            println!("{line}");
        }
    }
}

/// Whether two files hold the same tensors, byte for byte; prints those that differ.
fn same(a: &str, b: &str) -> bool {
    let read = |p: &str| -> BTreeMap<String, (GgmlType, Vec<u8>)> {
        tensors(&std::fs::read(p).unwrap()).tensors.into_iter().map(|(i, d)| (i.name, (i.ty, d))).collect()
    };
    let (a, b) = (read(a), read(b));
    let mut ok = a.len() == b.len();
    for (name, (ty, data)) in &a {
        match b.get(name) {
            Some((ty2, data2)) if ty == ty2 && data == data2 => {}
            Some((ty2, _)) => {
                println!("{name}: {} vs {}, bytes differ", ty.name(), ty2.name());
                ok = false;
            }
            None => {
                println!("{name}: missing");
                ok = false;
            }
        }
    }
    ok
}

fn top(path: &str, n_vocab: usize, k: usize) {
    let bytes = std::fs::read(path).unwrap();
    let logits: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let rows: Vec<Vec<(u32, f32)>> = logits
        .chunks_exact(n_vocab)
        .map(|row| {
            let mut ids: Vec<u32> = (0..n_vocab as u32).collect();
            // Ties to the lower id, as the greedy fixtures break them.
            ids.sort_by(|&i, &j| row[j as usize].total_cmp(&row[i as usize]).then(i.cmp(&j)));
            ids[..k].iter().map(|&i| (i, row[i as usize])).collect()
        })
        .collect();
    println!("{}", serde_json::to_string(&rows).unwrap());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["tensors", file] => {
            let t = tensors(&std::fs::read(file).unwrap());
            println!("{}", serde_json::json!({ "types": types(&t), "hash": tensor_hash(&t) }));
        }
        ["requant", source, types, out] => {
            let types = serde_json::from_str(&std::fs::read_to_string(types).unwrap()).unwrap();
            std::fs::write(out, requantize(&tensors(&std::fs::read(source).unwrap()), &types)).unwrap();
        }
        ["tiny", dir, ref formats @ ..] => {
            let all: Vec<GgmlType> = [GgmlType::F32].into_iter().chain(FORMATS).collect();
            let chosen: Vec<GgmlType> = match formats {
                [] => all,
                names => names
                    .iter()
                    .map(|n| *all.iter().find(|t| t.name() == *n).expect("F32, F16, Q8_0 or Q4_0"))
                    .collect(),
            };
            write(dir, &chosen)
        }
        ["same", a, b] => return if same(a, b) { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        ["top", path, n_vocab, k] => top(path, n_vocab.parse().unwrap(), k.parse().unwrap()),
        _ => {
            eprintln!("usage: reference_models tiny DIR [FORMAT...] | tensors FILE | requant SOURCE TYPES.json OUT | same A B | top LOGITS.bin N_VOCAB K");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
