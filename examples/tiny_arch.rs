//! Writes the tiny architecture models of tests/common/arch.rs and helps
//! scripts/reference/arch.py check them against llama.cpp:
//!
//! ```text
//! cargo run --release --example tiny_arch -- write DIR          # DIR/<arch>-<format>.gguf, F32 included; one JSON line each
//! cargo run --release --example tiny_arch -- same A.gguf B.gguf # exit 1 unless every tensor's bytes agree
//! cargo run --release --example tiny_arch -- top LOGITS.bin N_VOCAB K  # top-K [id, logit] per row, JSON
//! ```
//! `write` also tokenizes the reference texts with each model's tokenizer.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../tests/common/mod.rs"]
mod common;

use common::arch::{tiny, ARCHS, FORMATS};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::process::ExitCode;
use webslm::gguf::{GgufSink, TensorInfo};
use webslm::quant::GgmlType;

/// Texts whose tokens the references are teacher-forced along: prose, code
/// and French, 20-40 tokens each.
const TEXTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog. Then it ran into the forest, where the trees were tall",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Quelle est la capitale de la France ? La capitale de la France est Paris, une ville célèbre pour",
];

fn write(dir: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for arch in ARCHS {
        for ty in [GgmlType::F32].into_iter().chain(FORMATS) {
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

/// Every tensor's bytes, by name.
#[derive(Default)]
struct Tensors(BTreeMap<String, (GgmlType, Vec<u8>)>);

impl GgufSink for Tensors {
    fn header(&mut self, _: &webslm::gguf::Header) -> webslm::Result<()> {
        Ok(())
    }
    fn tensor(&mut self, info: &TensorInfo, data: std::borrow::Cow<'_, [u8]>) -> webslm::Result<()> {
        self.0.insert(info.name.clone(), (info.ty, data.into_owned()));
        Ok(())
    }
}

fn same(a: &str, b: &str) -> bool {
    let read = |p: &str| {
        let mut t = Tensors::default();
        webslm::gguf::read_path(p, &mut t).unwrap();
        t.0
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
        ["write", dir] => write(dir),
        ["same", a, b] => return if same(a, b) { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        ["top", path, n_vocab, k] => top(path, n_vocab.parse().unwrap(), k.parse().unwrap()),
        _ => {
            eprintln!("usage: tiny_arch write DIR | same A B | top LOGITS.bin N_VOCAB K");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
