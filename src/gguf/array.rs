//! Metadata arrays, stored by element type.
//!
//! A vocabulary's arrays are most of a header: Gemma 3's 262,144 token texts,
//! scores and types take 6 MiB in the file but took 26 MiB as one [`Value`]
//! per element (32 bytes each, plus a heap block per string). Held as one
//! vector of their element type, and strings as one buffer with offsets, they
//! take about what they take in the file.

use super::{GgufError, Value};

/// A metadata array: one vector of its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Strings),
    /// An array of arrays, each with an element type of its own.
    Array(Vec<Array>),
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a [`Value`], to read it with `Value`'s accessors (a
    /// string or an array is copied: see [`Array::strings`] for strings).
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.to_owned()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
        })
    }

    /// The strings of an array of strings.
    pub fn strings(&self) -> Option<&Strings> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }
}

/// Strings one after another in one buffer: 4 bytes of overhead each, where a
/// `String` takes 24 and a heap block.
#[derive(Clone, Default, PartialEq)]
pub struct Strings {
    text: String,
    /// Where each string ends in `text`; it starts where the previous one ends.
    ends: Vec<u32>,
}

impl Strings {
    /// Room for `strings` strings of `bytes` bytes in all.
    pub fn with_capacity(strings: usize, bytes: usize) -> Self {
        Strings { text: String::with_capacity(bytes), ends: Vec::with_capacity(strings) }
    }

    /// Appends `s`, unless the strings would then pass 4 GiB in all.
    pub fn push(&mut self, s: &str) -> Result<(), GgufError> {
        let end = self.text.len() + s.len();
        let end = u32::try_from(end)
            .map_err(|_| GgufError::CountTooLarge { what: "bytes of strings in an array", count: end as u64 })?;
        self.text.push_str(s);
        self.ends.push(end);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("in range"))
    }

    /// All the strings' bytes together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Frees the room reserved beyond what is held.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

impl std::fmt::Debug for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// # Panics
/// Past 4 GiB of strings in all (see [`Strings::push`]).
impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut strings = Strings::default();
        for s in iter {
            strings.push(s.as_ref()).expect("under 4 GiB of strings");
        }
        strings
    }
}
