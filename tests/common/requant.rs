//! A real model in every weight format: SmolLM2-135M-Instruct's Q4_1 file
//! requantized as llama.cpp's quantizer does it (scripts/reference/requant.py
//! ran `quantize` on it for each format and recorded, in
//! tests/fixtures/smollm2-requant/, the type it chose for each tensor and a
//! hash of all tensors). Each tensor is dequantized and quantized again with
//! ggml's reference quantizers into the recorded type; the hash proves the
//! result is the file llama.cpp read, tensor for tensor.

use super::GgufWriter;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use webslm::gguf::{GgufSink, Header, TensorInfo};
use webslm::quant::{self, GgmlType};

/// A GGUF file's tensors in file order: name, dims, type, bytes.
pub struct Tensors {
    pub header: Option<Header>,
    pub tensors: Vec<(TensorInfo, Vec<u8>)>,
}

impl GgufSink for Tensors {
    fn header(&mut self, header: &mut Header) -> webslm::Result<()> {
        self.header = Some(header.clone());
        Ok(())
    }
    fn rows(&mut self, info: &TensorInfo, first: u64, data: &[u8]) -> webslm::Result<()> {
        if first == 0 {
            self.tensors.push((info.clone(), Vec::with_capacity(info.size as usize)));
        }
        self.tensors.last_mut().expect("a tensor's first rows come first").1.extend_from_slice(data);
        Ok(())
    }
}

pub fn tensors(bytes: &[u8]) -> Tensors {
    let mut t = Tensors { header: None, tensors: Vec::new() };
    webslm::gguf::read_slice(bytes, &mut t).expect("a GGUF file");
    t
}

/// SHA-256 over every tensor's name, type, dimensions and bytes, by name:
/// equal for two files whose tensors are, whatever their metadata.
pub fn tensor_hash(t: &Tensors) -> String {
    let mut sorted: Vec<&(TensorInfo, Vec<u8>)> = t.tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut h = Sha256::new();
    for (info, data) in sorted {
        h.update(info.name.as_bytes());
        h.update([0]);
        h.update(info.ty.name().as_bytes());
        for d in &info.dims {
            h.update(d.to_le_bytes());
        }
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Each tensor's type, by name.
pub fn types(t: &Tensors) -> BTreeMap<String, String> {
    t.tensors.iter().map(|(info, _)| (info.name.clone(), info.ty.name().to_string())).collect()
}

/// `source` with every tensor requantized into the type `types` names for
/// it (ggml's reference quantizers), its metadata kept.
pub fn requantize(source: &Tensors, types: &BTreeMap<String, String>) -> Vec<u8> {
    let header = source.header.as_ref().expect("a header");
    let mut w = GgufWriter { alignment: header.alignment, ..GgufWriter::default() };
    let mut keys: Vec<&str> = header.metadata.keys().collect();
    keys.sort_unstable();
    for key in keys {
        w.value(key, header.metadata.get(key).expect("a listed key"));
    }
    for (info, data) in &source.tensors {
        let name = types.get(&info.name).unwrap_or_else(|| panic!("no type for {}", info.name));
        let ty = (0..64).filter_map(GgmlType::from_id).find(|t| t.name() == name).expect("a known type");
        let n = info.n_elements() as usize;
        let mut values = vec![0f32; n];
        quant::dequantize_row(info.ty, data, &mut values);
        let out = if ty == info.ty { data.clone() } else { super::quantize(ty, info.dims[0] as usize, &values) };
        w.tensor(&info.name, &info.dims, super::type_id(ty), out);
    }
    w.build()
}
