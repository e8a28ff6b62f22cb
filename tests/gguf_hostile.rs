//! Damaged and hostile GGUF files: each kind of damage gives its own typed
//! error, never a panic and never a huge allocation.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{tiny_llama, tiny_llama_writer, type_id, GgufWriter};
use webslm::gguf::{self, GgufError, GgufSink, Header, TensorInfo};
use webslm::quant::GgmlType;
use webslm::{Error, LoadOptions, Session};

/// Counts what the stream delivers, checking that every tensor comes as
/// whole rows, in order.
#[derive(Default)]
struct Count {
    headers: usize,
    tensors: usize,
    bytes: u64,
    /// The row the tensor being delivered goes on at.
    next_row: u64,
    /// The most bytes delivered in one call.
    largest: usize,
}

impl GgufSink for Count {
    fn header(&mut self, _: &mut Header) -> webslm::Result<()> {
        self.headers += 1;
        Ok(())
    }
    fn rows(&mut self, info: &TensorInfo, first: u64, data: &[u8]) -> webslm::Result<()> {
        assert_eq!(first, self.next_row, "`{}` in order", info.name);
        assert_eq!(data.len() as u64 % info.row_bytes(), 0, "`{}` in whole rows", info.name);
        self.next_row = first + data.len() as u64 / info.row_bytes();
        if self.next_row == info.n_rows() {
            self.tensors += 1;
            self.next_row = 0;
        }
        self.bytes += data.len() as u64;
        self.largest = self.largest.max(data.len());
        Ok(())
    }
}

fn gguf_error(bytes: &[u8]) -> GgufError {
    common::fuzz_seed(bytes);
    match gguf::read_slice(bytes, &mut Count::default()) {
        Err(Error::InvalidGguf(e)) => e,
        other => panic!("expected an invalid-GGUF error, got {:?}", other.map(|h| h.tensors.len())),
    }
}

fn load_error(bytes: &[u8]) -> Error {
    common::fuzz_seed(bytes);
    match Session::load_bytes(bytes, LoadOptions::default()) {
        Err(e) => e,
        Ok(_) => panic!("a damaged file loaded"),
    }
}

#[test]
fn the_tiny_model_is_well_formed() {
    let bytes = tiny_llama();
    let mut count = Count::default();
    let header = gguf::read_slice(&bytes, &mut count).unwrap();
    assert_eq!(count.headers, 1);
    assert_eq!(count.tensors, header.tensors.len());
    assert_eq!(header.version, 3);
    assert!(Session::load_bytes(&bytes, LoadOptions::default()).is_ok());
}

#[test]
fn truncation_at_twenty_points_is_reported_as_truncation() {
    let bytes = tiny_llama();
    let header = gguf::read_slice(&bytes, &mut Count::default()).unwrap();
    let data = header.data_offset as usize;
    let mut cuts = vec![0, 2, 4, 6, 8, 12, 16, 20, 24, 30, 100, data / 3, data / 2, data - 1, data, data + 1];
    cuts.extend([bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 100, bytes.len() - 1]);
    assert_eq!(cuts.len(), 20);
    for cut in cuts {
        let e = gguf_error(&bytes[..cut]);
        assert!(matches!(e, GgufError::Truncated { .. }), "cut at {cut}: {e:?}");
        assert_eq!(load_error(&bytes[..cut]).code(), "INVALID_GGUF", "cut at {cut}");
    }
}

/// Tensors split across chunks come row by row as the chunks bring them:
/// nothing larger than a row is gathered on the way (past the header, whose
/// gathered bytes may hold the first tensors' rows).
#[test]
fn tensors_split_across_chunks_come_row_by_row() {
    let bytes = tiny_llama();
    let mut whole = Count::default();
    let header = gguf::read_slice(&bytes, &mut whole).unwrap();
    assert_eq!(whole.largest as u64, header.tensors.iter().map(|t| t.size).max().unwrap());
    for size in [3, 100, 1000] {
        let mut stream = gguf::GgufStream::new(bytes.len() as u64);
        let mut split = Count::default();
        for chunk in bytes.chunks(size) {
            stream.push(chunk, &mut split).unwrap();
        }
        stream.finish().unwrap();
        let row = header.tensors.iter().map(|t| t.row_bytes() as usize).max().unwrap();
        let bound = size.max(row).max(header.data_offset as usize);
        assert!(split.largest <= bound, "{} bytes at once from chunks of {size}", split.largest);
        assert_eq!((split.tensors, split.bytes), (whole.tensors, whole.bytes));
    }
}

#[test]
fn a_stream_that_stops_early_is_truncated() {
    let bytes = tiny_llama();
    let mut stream = gguf::GgufStream::new(bytes.len() as u64);
    let mut count = Count::default();
    stream.push(&bytes[..bytes.len() - 10], &mut count).unwrap();
    assert!(matches!(stream.finish(), Err(Error::InvalidGguf(GgufError::Truncated { .. }))));
    // And one that goes on past its declared size is refused.
    let mut stream = gguf::GgufStream::new(10);
    assert!(matches!(
        stream.push(&bytes[..11], &mut count),
        Err(Error::InvalidGguf(GgufError::StreamTooLong { got: 11, declared: 10 }))
    ));
}

#[test]
fn bad_magic() {
    let mut bytes = tiny_llama();
    bytes[..4].copy_from_slice(b"GGML");
    assert_eq!(gguf_error(&bytes), GgufError::BadMagic(*b"GGML"));
    assert_eq!(gguf_error(b"<!DOCTYPE html><html></html>"), GgufError::BadMagic(*b"<!DO"));
}

#[test]
fn unsupported_versions() {
    for version in [99u32, 1, 0] {
        let mut bytes = tiny_llama();
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        assert_eq!(gguf_error(&bytes), GgufError::UnsupportedVersion(version));
    }
    let mut w = tiny_llama_writer();
    w.version = 2;
    assert!(Session::load_bytes(&w.build(), LoadOptions::default()).is_ok(), "version 2 is read");
}

#[test]
fn impossible_counts_are_refused_before_allocating() {
    let count_at = |offset: usize, count: u64| {
        let mut bytes = tiny_llama();
        bytes[offset..offset + 8].copy_from_slice(&count.to_le_bytes());
        gguf_error(&bytes)
    };
    // Tensor count, then metadata count.
    for (offset, what) in [(8, "tensor"), (16, "metadata entry")] {
        assert_eq!(count_at(offset, 1 << 60), GgufError::CountTooLarge { what, count: 1 << 60 });
        assert_eq!(count_at(offset, u64::MAX), GgufError::CountTooLarge { what, count: u64::MAX });
    }
    // The first key's length.
    assert_eq!(count_at(24, 1 << 60), GgufError::CountTooLarge { what: "string length", count: 1 << 60 });
    // A plausible count that the file is too short to hold is truncation.
    assert!(matches!(count_at(16, 1 << 20), GgufError::Truncated { .. }));

    // An array of 2^60 strings.
    let mut w = GgufWriter::default();
    let mut huge = 8u32.to_le_bytes().to_vec();
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    w.raw("tokenizer.ggml.tokens", 9, huge);
    assert_eq!(gguf_error(&w.build()), GgufError::CountTooLarge { what: "array element", count: 1 << 60 });
}

/// A count the declared file could hold, in a header whose bytes are not in
/// yet: nothing is reserved past the bytes at hand. (Found by the fuzzer:
/// 24 bytes that claimed a 1 TiB file and 2^30 tensors, or an array of 2^30
/// strings, reserved for them all and aborted on the failed allocation.)
#[test]
fn counts_reserve_no_more_than_the_bytes_at_hand() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&(1u64 << 30).to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    assert!(matches!(gguf::parse_header(&bytes, 1 << 40), Ok(None)));

    let mut w = GgufWriter::default();
    let mut many = 8u32.to_le_bytes().to_vec();
    many.extend_from_slice(&(1u64 << 30).to_le_bytes());
    many.extend_from_slice(&1u64.to_le_bytes());
    many.push(b'a');
    w.raw("tokenizer.ggml.tokens", 9, many);
    let nested = {
        let mut v = 9u32.to_le_bytes().to_vec();
        v.extend_from_slice(&(1u64 << 30).to_le_bytes());
        v
    };
    let mut n = GgufWriter::default();
    n.raw("nested", 9, nested);
    for bytes in [w.header().0, n.header().0] {
        assert!(matches!(gguf::parse_header(&bytes, 1 << 40), Ok(None)));
    }
}

#[test]
fn unknown_value_type_and_deep_nesting() {
    let mut w = GgufWriter::default();
    w.raw("x", 13, vec![0; 8]);
    assert_eq!(gguf_error(&w.build()), GgufError::UnknownValueType(13));

    let mut nested = Vec::new();
    for _ in 0..20 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    nested.extend_from_slice(&4u32.to_le_bytes());
    nested.extend_from_slice(&1u64.to_le_bytes());
    nested.extend_from_slice(&7u32.to_le_bytes());
    let mut w = GgufWriter::default();
    w.raw("deep", 9, nested);
    assert!(matches!(gguf_error(&w.build()), GgufError::NestingTooDeep(_)));
}

/// A file with one F32 tensor of `n` elements at `offset`.
fn one_tensor(n: u64, ty: u32, offset: u64, data: usize) -> Vec<u8> {
    let mut bytes = GgufWriter::default().build()[..24].to_vec();
    bytes[8..16].copy_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(b"t");
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.extend_from_slice(&ty.to_le_bytes());
    bytes.extend_from_slice(&offset.to_le_bytes());
    bytes.resize(bytes.len().next_multiple_of(32) + data, 0);
    bytes
}

#[test]
fn tensor_offset_past_the_end() {
    assert!(gguf::read_slice(&one_tensor(8, 0, 0, 32), &mut Count::default()).is_ok());
    let e = gguf_error(&one_tensor(8, 0, 1 << 20, 32));
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e:?}");
    let e = gguf_error(&one_tensor(8, 0, u64::MAX - 31, 32));
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e:?}");
}

#[test]
fn misaligned_tensor_offset() {
    let e = gguf_error(&one_tensor(8, 0, 4, 64));
    assert!(matches!(e, GgufError::Misaligned { offset: 4, alignment: 32, .. }), "{e:?}");
}

#[test]
fn unknown_tensor_type() {
    let e = gguf_error(&one_tensor(32, 99, 0, 256));
    assert_eq!(e, GgufError::UnknownTensorType { tensor: "t".into(), id: 99 });
}

#[test]
fn shapes_that_cannot_be() {
    // 33 elements are not whole Q4_0 blocks.
    let e = gguf_error(&one_tensor(33, type_id(GgmlType::Q4_0), 0, 64));
    assert!(matches!(e, GgufError::BadShape { .. }), "{e:?}");
    let e = gguf_error(&one_tensor(0, 0, 0, 64));
    assert!(matches!(e, GgufError::BadShape { .. }), "{e:?}");
    // Five dimensions.
    let mut w = GgufWriter::default();
    w.tensor("t", &[1, 1, 1, 1, 1], 0, vec![0; 4]);
    assert!(matches!(gguf_error(&w.build()), GgufError::BadShape { .. }));
    // More elements than any file could hold.
    let mut w = GgufWriter::default();
    w.tensor("t", &[1 << 32, 1 << 32], 0, vec![0; 4]);
    assert!(matches!(gguf_error(&w.build()), GgufError::BadShape { .. }));
}

#[test]
fn tensor_size_disagreeing_with_its_shape() {
    // Two tensors 32 bytes apart, the first one claiming 64 elements (256 bytes).
    let mut w = GgufWriter::default();
    w.tensor("a", &[8], 0, vec![0; 32]).tensor("b", &[8], 0, vec![0; 32]);
    let mut bytes = w.build();
    let at = bytes.windows(9).position(|s| s == b"\x01\x00\x00\x00\x00\x00\x00\x00a").unwrap() + 9;
    // name, n_dims (4), dims[0] (8)
    bytes[at + 4..at + 12].copy_from_slice(&64u64.to_le_bytes());
    let e = gguf_error(&bytes);
    assert_eq!(e, GgufError::TensorSizeMismatch { tensor: "a".into(), size: 256, room: 32 });
}

#[test]
fn duplicates() {
    let mut w = GgufWriter::default();
    w.u32("k", 1).u32("k", 2);
    assert_eq!(gguf_error(&w.build()), GgufError::DuplicateKey("k".into()));
    let mut w = GgufWriter::default();
    w.tensor("t", &[8], 0, vec![0; 32]).tensor("t", &[8], 0, vec![0; 32]);
    assert_eq!(gguf_error(&w.build()), GgufError::DuplicateTensor("t".into()));
}

#[test]
fn bad_alignment() {
    let mut w = GgufWriter::default();
    w.u32("general.alignment", 24);
    assert!(matches!(gguf_error(&w.build()), GgufError::BadValue { .. }));
}

/// The tiny model with one metadata string value replaced by another of the
/// same length, so that everything after it stays where it was.
fn with_str(key: &str, value: &str) -> Vec<u8> {
    let mut bytes = tiny_llama();
    let at = bytes.windows(key.len()).position(|w| w == key.as_bytes()).unwrap() + key.len() + 4;
    let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(len, value.len(), "same-length replacement");
    bytes[at + 8..at + 8 + len].copy_from_slice(value.as_bytes());
    bytes
}

#[test]
fn unknown_architecture() {
    let e = load_error(&with_str("general.architecture", "mambo"));
    assert!(matches!(&e, Error::UnsupportedArch(a) if a == "mambo"), "{e:?}");
    assert_eq!(e.code(), "UNSUPPORTED_ARCH");
}

#[test]
fn unsupported_tokenizer_model() {
    let e = load_error(&with_str("tokenizer.ggml.model", "rwkv"));
    assert_eq!(e.code(), "TOKENIZER", "{e}");
}

#[test]
fn unsupported_quant_type() {
    // A Q2_K weight: a real ggml type that this engine does not compute with.
    let mut bytes = tiny_llama();
    let name = b"blk.0.ffn_down.weight";
    let at = bytes.windows(name.len()).position(|s| s == name).unwrap() + name.len();
    // n_dims (4) + 2 dims (16), then the type.
    let ty_at = at + 4 + 16;
    assert_eq!(u32::from_le_bytes(bytes[ty_at..ty_at + 4].try_into().unwrap()), type_id(GgmlType::Q4K));
    bytes[ty_at..ty_at + 4].copy_from_slice(&type_id(GgmlType::Q2K).to_le_bytes());
    let e = load_error(&bytes);
    assert!(matches!(&e, Error::UnsupportedQuant { ty: "Q2_K", .. }), "{e:?}");
    assert_eq!(e.code(), "UNSUPPORTED_QUANT");
}

#[test]
fn weight_shape_disagreeing_with_the_architecture() {
    let mut bytes = tiny_llama();
    let name = b"blk.1.attn_q.weight";
    let at = bytes.windows(name.len()).position(|s| s == name).unwrap() + name.len();
    // Swap [64, 64] for [32, 128]: same size, wrong shape.
    bytes[at + 4..at + 12].copy_from_slice(&32u64.to_le_bytes());
    bytes[at + 12..at + 20].copy_from_slice(&128u64.to_le_bytes());
    let e = load_error(&bytes);
    assert!(matches!(&e, Error::BadModel(m) if m.contains("blk.1.attn_q.weight")), "{e:?}");
}

#[test]
fn missing_tensor() {
    let mut bytes = tiny_llama();
    let name = b"blk.2.ffn_up.weight";
    let at = bytes.windows(name.len()).position(|s| s == name).unwrap();
    bytes[at..at + name.len()].copy_from_slice(b"blk.2.ffn_UP.weight");
    let e = load_error(&bytes);
    assert!(matches!(&e, Error::BadModel(m) if m.contains("blk.2.ffn_up.weight")), "{e:?}");
}

#[test]
fn random_garbage_never_panics() {
    let clean = tiny_llama();
    let mut rng = common::Rng::new(99);
    for _ in 0..300 {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.next_u64() % 8 {
            let header_len = 4000.min(bytes.len());
            let i = (rng.next_u64() as usize) % header_len;
            bytes[i] = rng.next_u64() as u8;
        }
        let _ = Session::load_bytes(&bytes, LoadOptions::default());
    }
}
