//! GGUF reader (versions 2 and 3).
//!
//! The reader is push-based: [`GgufStream`] takes the file as an ordered
//! sequence of byte chunks of any size and hands the header, then each
//! tensor's rows, to a [`GgufSink`] as soon as their bytes are in. A loader
//! therefore never holds the whole file, nor even a whole tensor on its way:
//! weights stream out of IndexedDB, a network response or a file straight
//! into the engine's buffers (on the CPU's heap or the GPU). Every count,
//! size and offset is checked against the declared file size before
//! anything is allocated.

mod array;
mod header;
mod stream;

pub use array::{Array, Strings};
pub use header::parse_header;
pub use stream::{GgufSink, GgufStream};

use crate::quant::GgmlType;
use std::collections::HashMap;

/// What is wrong with a GGUF file. Each kind of damage has its own variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GgufError {
    #[error("file ends at byte {file_len} but {needed} bytes are needed (truncated download?)")]
    Truncated { needed: u64, file_len: u64 },
    #[error("not a GGUF file (magic {0:02x?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported (only 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("{what} count {count} is impossibly large")]
    CountTooLarge { what: &'static str, count: u64 },
    #[error("metadata value type {0} is unknown")]
    UnknownValueType(u32),
    #[error("metadata arrays nested deeper than {0} levels")]
    NestingTooDeep(usize),
    #[error("metadata key `{0}` appears twice")]
    DuplicateKey(String),
    #[error("metadata `{key}`: {reason}")]
    BadValue { key: String, reason: String },
    #[error("tensor `{0}` appears twice")]
    DuplicateTensor(String),
    #[error("tensor `{tensor}` has unknown type id {id}")]
    UnknownTensorType { tensor: String, id: u32 },
    #[error("tensor `{tensor}` has a bad shape: {reason}")]
    BadShape { tensor: String, reason: String },
    #[error("tensor `{tensor}` starts at byte {start}, past the end of the {file_len}-byte file")]
    TensorOutOfBounds { tensor: String, start: u64, file_len: u64 },
    #[error("tensor `{tensor}` is {size} bytes by its shape, but the file gives it {room}")]
    TensorSizeMismatch { tensor: String, size: u64, room: u64 },
    #[error("tensor `{tensor}` offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned { tensor: String, offset: u64, alignment: u64 },
    #[error("stream delivered {got} bytes, more than the declared size {declared}")]
    StreamTooLong { got: u64, declared: u64 },
}

/// A metadata value. Arrays may nest.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

impl Value {
    /// Any non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i128().and_then(|v| u64::try_from(v).ok())
    }

    /// Any integer that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_i128().and_then(|v| i64::try_from(v).ok())
    }

    fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// Any number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// The key–value metadata of a GGUF file.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    entries: HashMap<String, Value>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Takes a value out, freeing what it holds once it has been read.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.remove(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `general.architecture`, the key every other model key hangs from.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    fn insert(&mut self, key: String, value: Value) -> Result<(), GgufError> {
        if self.entries.contains_key(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        self.entries.insert(key, value);
        Ok(())
    }
}

/// Where a tensor lives and what it holds. `dims[0]` is the contiguous
/// dimension (ggml's `ne[0]`): a weight matrix of `dims = [k, m]` has `m` rows
/// of `k` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
    /// Bytes the tensor takes, from its shape and type.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of one row (`dims[0]` weights): the unit in which a stream
    /// delivers the tensor. A tensor whose rows are not whole blocks, or a
    /// vector, is one row.
    pub fn row_bytes(&self) -> u64 {
        match self.dims.as_slice() {
            [cols, _, ..] => self.ty.bytes_for(*cols).filter(|&b| b > 0 && self.size % b == 0).unwrap_or(self.size),
            _ => self.size,
        }
        .max(1)
    }

    /// How many rows of [`TensorInfo::row_bytes`] the tensor has.
    pub fn n_rows(&self) -> u64 {
        self.size / self.row_bytes()
    }
}

/// Everything before the tensor data.
#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    pub metadata: Metadata,
    /// In file order.
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    /// The declared size of the whole file.
    pub file_len: u64,
}

impl Header {
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Reads a whole in-memory GGUF file, passing each tensor's rows to `sink` as
/// slices of `bytes` (no copy).
pub fn read_slice(bytes: &[u8], sink: &mut impl GgufSink) -> Result<Header, crate::Error> {
    let mut stream = GgufStream::new(bytes.len() as u64);
    stream.push(bytes, sink)?;
    stream.finish()
}

/// Reads a GGUF file from disk in 4 MiB chunks.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_path(path: impl AsRef<std::path::Path>, sink: &mut impl GgufSink) -> Result<Header, crate::Error> {
    use std::io::Read;
    let path = path.as_ref();
    let mut file = std::fs::File::open(path).map_err(|e| crate::Error::Io(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let mut stream = GgufStream::new(len);
    let mut chunk = vec![0u8; 4 << 20];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        stream.push(&chunk[..n], sink)?;
    }
    stream.finish()
}

/// Reads only the header of a GGUF file on disk (metadata and tensor infos).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_header_path(path: impl AsRef<std::path::Path>) -> Result<Header, crate::Error> {
    use std::io::Read;
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| crate::Error::Io(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        let want = (buf.len() as u64).max(1 << 20).saturating_mul(2).min(len);
        (&mut reader).take(want - buf.len() as u64).read_to_end(&mut buf)?;
        if let Some(header) = parse_header(&buf, len)? {
            return Ok(header);
        }
        if buf.len() as u64 >= len {
            // parse_header only asks for more while the file has more.
            return Err(crate::Error::Io(format!("{}: file shrank while reading", path.display())));
        }
    }
}
