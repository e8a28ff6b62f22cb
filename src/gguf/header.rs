//! Parsing of the GGUF header: magic, version, metadata and tensor infos.

use super::{Array, GgufError, Header, Metadata, Strings, TensorInfo, Value};
use crate::quant::GgmlType;
use std::borrow::Cow;
use std::collections::HashSet;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_NESTING: usize = 8;
const MAX_DIMS: u32 = 4;
/// A count whose minimal encoding would exceed this many bytes cannot be in
/// any real file: it is reported as hostile rather than as truncation.
const IMPOSSIBLE_BYTES: u64 = 1 << 40;

/// Why the parser stopped early.
enum Stop {
    /// The buffer is a prefix of the file and the header goes on past it.
    NeedMore,
    Invalid(GgufError),
}

impl From<GgufError> for Stop {
    fn from(e: GgufError) -> Self {
        Stop::Invalid(e)
    }
}

type Parse<T> = Result<T, Stop>;

/// Parses the header from `buf`, the first bytes of a file of `file_len` bytes.
/// Returns `Ok(None)` when `buf` is too short to hold the whole header but the
/// file may still hold it.
pub fn parse_header(buf: &[u8], file_len: u64) -> Result<Option<Header>, GgufError> {
    let mut cursor = Cursor { buf, pos: 0, file_len };
    match cursor.header() {
        Ok(header) => Ok(Some(header)),
        Err(Stop::NeedMore) => Ok(None),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// The least bytes a tensor info takes: a name length, n_dims, one dim,
/// type and offset.
const TENSOR_INFO_MIN: u64 = 8 + 4 + 8 + 4 + 8;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    file_len: u64,
}

impl<'a> Cursor<'a> {
    fn remaining_in_file(&self) -> u64 {
        self.file_len.saturating_sub(self.pos as u64)
    }

    fn take(&mut self, n: u64) -> Parse<&'a [u8]> {
        let end = (self.pos as u64)
            .checked_add(n)
            .ok_or(GgufError::Truncated { needed: u64::MAX, file_len: self.file_len })?;
        if end > self.file_len {
            return Err(GgufError::Truncated { needed: end, file_len: self.file_len }.into());
        }
        if end > self.buf.len() as u64 {
            return Err(Stop::NeedMore);
        }
        let bytes = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(bytes)
    }

    fn bytes<const N: usize>(&mut self) -> Parse<[u8; N]> {
        Ok(self.take(N as u64)?.try_into().expect("take returns N bytes"))
    }

    fn u32(&mut self) -> Parse<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Parse<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    /// Checks a count of items, each at least `min_size` bytes, against what
    /// is left of the file before anything is allocated for them.
    fn count(&mut self, what: &'static str, min_size: u64) -> Parse<usize> {
        let count = self.u64()?;
        let bytes = count.saturating_mul(min_size);
        if bytes > IMPOSSIBLE_BYTES || usize::try_from(count).is_err() {
            return Err(GgufError::CountTooLarge { what, count }.into());
        }
        if bytes > self.remaining_in_file() {
            return Err(GgufError::Truncated { needed: self.pos as u64 + bytes, file_len: self.file_len }.into());
        }
        Ok(count as usize)
    }

    /// Room to reserve for `count` items of at least `min_size` bytes: no
    /// more than the bytes at hand can hold. A count is checked against the
    /// file's declared length, and the header may be parsed before most of
    /// the file is in: reserving for the count itself would let a header
    /// of a few bytes that claims a large file reserve gigabytes.
    fn room(&self, count: usize, min_size: u64) -> usize {
        count.min((self.buf.len() - self.pos) / min_size as usize)
    }

    fn string(&mut self) -> Parse<String> {
        Ok(self.str()?.into_owned())
    }

    /// A string, borrowed from the buffer where it is valid UTF-8.
    fn str(&mut self) -> Parse<Cow<'a, str>> {
        let len = self.count("string length", 1)?;
        Ok(String::from_utf8_lossy(self.take(len as u64)?))
    }

    /// `n` numbers of `N` bytes each, little-endian.
    fn numbers<T, const N: usize>(&mut self, n: usize, from: fn([u8; N]) -> T) -> Parse<Vec<T>> {
        let bytes = self.take(n as u64 * N as u64)?;
        Ok(bytes.chunks_exact(N).map(|b| from(b.try_into().expect("N bytes"))).collect())
    }

    fn header(&mut self) -> Parse<Header> {
        let magic: [u8; 4] = self.bytes()?;
        if &magic != MAGIC {
            return Err(GgufError::BadMagic(magic).into());
        }
        let version = self.u32()?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version).into());
        }
        let n_tensors = self.count("tensor", TENSOR_INFO_MIN)?;
        // A metadata entry is at least a key length, a type and a one-byte value.
        let n_kv = self.count("metadata entry", 8 + 4 + 1)?;

        let mut metadata = Metadata::default();
        for _ in 0..n_kv {
            let key = self.string()?;
            let ty = self.u32()?;
            let value = self.value(ty, 0)?;
            metadata.insert(key, value)?;
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(GgufError::BadValue {
                        key: "general.alignment".into(),
                        reason: format!("{v:?} is not a power of two"),
                    }
                    .into())
                }
            },
        };

        let room = self.room(n_tensors, TENSOR_INFO_MIN);
        let mut tensors = Vec::with_capacity(room);
        let mut names = HashSet::with_capacity(room);
        for _ in 0..n_tensors {
            let info = self.tensor_info(alignment)?;
            if !names.insert(info.name.clone()) {
                return Err(GgufError::DuplicateTensor(info.name).into());
            }
            tensors.push(info);
        }

        let data_offset = (self.pos as u64).next_multiple_of(alignment);
        check_tensor_layout(&tensors, data_offset, self.file_len, alignment)?;
        Ok(Header { version, metadata, tensors, alignment, data_offset, file_len: self.file_len })
    }

    fn value(&mut self, ty: u32, depth: usize) -> Parse<Value> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.bytes()?)),
            1 => Value::I8(i8::from_le_bytes(self.bytes()?)),
            2 => Value::U16(u16::from_le_bytes(self.bytes()?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.bytes()?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes()?)),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => Value::Array(self.array(depth)?),
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.bytes()?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes()?)),
            other => return Err(GgufError::UnknownValueType(other).into()),
        })
    }

    /// An array's element type, count and elements, held by element type.
    fn array(&mut self, depth: usize) -> Parse<Array> {
        if depth >= MAX_NESTING {
            return Err(GgufError::NestingTooDeep(MAX_NESTING).into());
        }
        let elem_ty = self.u32()?;
        let min_size = min_value_size(elem_ty).ok_or(GgufError::UnknownValueType(elem_ty))?;
        let n = self.count("array element", min_size)?;
        Ok(match elem_ty {
            0 => Array::U8(self.numbers(n, u8::from_le_bytes)?),
            1 => Array::I8(self.numbers(n, i8::from_le_bytes)?),
            2 => Array::U16(self.numbers(n, u16::from_le_bytes)?),
            3 => Array::I16(self.numbers(n, i16::from_le_bytes)?),
            4 => Array::U32(self.numbers(n, u32::from_le_bytes)?),
            5 => Array::I32(self.numbers(n, i32::from_le_bytes)?),
            6 => Array::F32(self.numbers(n, f32::from_le_bytes)?),
            7 => Array::Bool(self.numbers(n, |[b]| b != 0)?),
            8 => {
                let mut strings = Strings::with_capacity(self.room(n, min_size), 0);
                for _ in 0..n {
                    strings.push(&self.str()?)?;
                }
                strings.shrink_to_fit();
                Array::String(strings)
            }
            9 => {
                let mut items = Vec::with_capacity(self.room(n, min_size));
                for _ in 0..n {
                    items.push(self.array(depth + 1)?);
                }
                Array::Array(items)
            }
            10 => Array::U64(self.numbers(n, u64::from_le_bytes)?),
            11 => Array::I64(self.numbers(n, i64::from_le_bytes)?),
            12 => Array::F64(self.numbers(n, f64::from_le_bytes)?),
            other => return Err(GgufError::UnknownValueType(other).into()),
        })
    }

    fn tensor_info(&mut self, alignment: u64) -> Parse<TensorInfo> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        let bad_shape = |reason: String| GgufError::BadShape { tensor: name.clone(), reason };
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad_shape(format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)")).into());
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let type_id = self.u32()?;
        let offset = self.u64()?;
        let ty = GgmlType::from_id(type_id)
            .ok_or_else(|| GgufError::UnknownTensorType { tensor: name.clone(), id: type_id })?;
        if dims.contains(&0) {
            return Err(bad_shape(format!("zero-sized dimension in {dims:?}")).into());
        }
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= IMPOSSIBLE_BYTES)
            .ok_or_else(|| bad_shape(format!("{dims:?} holds impossibly many elements")))?;
        let (block, _) = ty.block_layout();
        if dims[0] % block as u64 != 0 {
            return Err(bad_shape(format!(
                "rows of {} elements are not whole {}-element blocks of {}",
                dims[0],
                block,
                ty.name()
            ))
            .into());
        }
        let size = ty.bytes_for(n_elements).expect("whole blocks checked above");
        if offset % alignment != 0 {
            return Err(GgufError::Misaligned { tensor: name, offset, alignment }.into());
        }
        Ok(TensorInfo { name, dims, ty, offset, size })
    }
}

/// Smallest encoding of one value of a metadata type, for the count check.
fn min_value_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,     // a string is at least its length
        9 => 4 + 8, // a nested array is at least its type and count
        10..=12 => 8,
        _ => return None,
    })
}

/// Tensors must lie inside the file without overlapping one another. A file
/// that ends early is told apart from an offset pointing nowhere by the
/// layout: a truncated file's missing tensor starts where the previous one
/// ends, a hostile offset leaves a gap.
fn check_tensor_layout(
    tensors: &[TensorInfo],
    data_offset: u64,
    file_len: u64,
    alignment: u64,
) -> Result<(), GgufError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    let mut packed_offset = 0u64;
    for (i, t) in order.iter().enumerate() {
        let start = data_offset.saturating_add(t.offset);
        let end = start.saturating_add(t.size);
        if start >= file_len && t.offset > packed_offset {
            return Err(GgufError::TensorOutOfBounds { tensor: t.name.clone(), start, file_len });
        }
        if let Some(next) = order.get(i + 1) {
            let room = next.offset - t.offset;
            if t.size > room {
                return Err(GgufError::TensorSizeMismatch { tensor: t.name.clone(), size: t.size, room });
            }
        }
        if end > file_len {
            return Err(GgufError::Truncated { needed: end, file_len });
        }
        packed_offset = (t.offset + t.size).next_multiple_of(alignment);
    }
    Ok(())
}
