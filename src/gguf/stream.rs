//! The push-based loader: bytes in, header and tensors' rows out.

use super::{parse_header, GgufError, Header, TensorInfo};
use crate::Result;

/// Receives what a [`GgufStream`] finds, in file order.
pub trait GgufSink {
    /// Called once, before any tensor: the place to check the architecture and
    /// reserve memory. The sink may take out metadata that it has read and
    /// that nothing reads later (a tokenizer's tables, once it is built).
    fn header(&mut self, header: &mut Header) -> Result<()>;
    /// Called with a tensor's rows ([`TensorInfo::row_bytes`] each) as soon as
    /// they are in, from row `first`, in file order: one call or many per
    /// tensor, the last ending at [`TensorInfo::n_rows`]. Only a row that
    /// straddles chunks is gathered, never a tensor, so that a sink can put
    /// the bytes where they will live (a GPU buffer) without the tensor ever
    /// being whole in host memory on the way.
    fn rows(&mut self, info: &TensorInfo, first: u64, data: &[u8]) -> Result<()>;
}

/// Consumes a GGUF file as chunks of any size. Memory held at any time: the
/// header while it is incomplete, or the one row that straddles chunks.
pub struct GgufStream {
    file_len: u64,
    /// Absolute offset of the next byte to arrive.
    pos: u64,
    /// Header bytes gathered so far; emptied once the header is parsed.
    head: Vec<u8>,
    /// Do not try to parse the header again before `head` has this many bytes,
    /// so that small chunks cost linear, not quadratic, time.
    retry_at: usize,
    header: Option<Header>,
    /// Tensor indices in offset order, and how many of them are delivered.
    order: Vec<usize>,
    delivered: usize,
    /// Bytes of the row that straddles chunks.
    partial: Vec<u8>,
}

impl GgufStream {
    /// `file_len` is the size of the whole file: every size in the header is
    /// checked against it.
    pub fn new(file_len: u64) -> Self {
        GgufStream {
            file_len,
            pos: 0,
            head: Vec::new(),
            retry_at: 0,
            header: None,
            order: Vec::new(),
            delivered: 0,
            partial: Vec::new(),
        }
    }

    /// The header, once it has been parsed.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Bytes received so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds the next chunk of the file.
    pub fn push(&mut self, chunk: &[u8], sink: &mut impl GgufSink) -> Result<()> {
        let got = self.pos.saturating_add(chunk.len() as u64);
        if got > self.file_len {
            return Err(GgufError::StreamTooLong { got, declared: self.file_len }.into());
        }
        if self.header.is_some() {
            let start = self.pos;
            self.pos = got;
            return self.tensors(start, chunk, sink);
        }
        self.head.extend_from_slice(chunk);
        self.pos = got;
        if self.head.len() < self.retry_at && self.pos < self.file_len {
            return Ok(());
        }
        self.parse(sink)
    }

    /// Tries to parse the header from the bytes pushed so far, however
    /// recently that was tried: for a caller that knows no more will come
    /// soon (the end of a ranged request for the header). True once the
    /// header is parsed.
    pub fn try_header(&mut self, sink: &mut impl GgufSink) -> Result<bool> {
        if self.header.is_none() && !self.head.is_empty() {
            self.parse(sink)?;
        }
        Ok(self.header.is_some())
    }

    fn parse(&mut self, sink: &mut impl GgufSink) -> Result<()> {
        match parse_header(&self.head, self.file_len)? {
            None => {
                self.retry_at = self.head.len().saturating_mul(2);
                Ok(())
            }
            Some(mut header) => {
                sink.header(&mut header)?;
                let mut order: Vec<usize> = (0..header.tensors.len()).collect();
                order.sort_by_key(|&i| header.tensors[i].offset);
                self.order = order;
                self.header = Some(header);
                let head = std::mem::take(&mut self.head);
                self.tensors(0, &head, sink)
            }
        }
    }

    /// Ends the stream; fails unless every tensor was delivered.
    pub fn finish(self) -> Result<Header> {
        match self.header {
            Some(header) if self.delivered == self.order.len() => Ok(header),
            _ => Err(GgufError::Truncated { needed: self.file_len, file_len: self.pos }.into()),
        }
    }

    /// Delivers the rows of tensors that `chunk`, holding bytes from absolute
    /// offset `start`, completes.
    fn tensors(&mut self, start: u64, chunk: &[u8], sink: &mut impl GgufSink) -> Result<()> {
        let header = self.header.as_ref().expect("called after the header");
        let end = start + chunk.len() as u64;
        while let Some(&index) = self.order.get(self.delivered) {
            let info = &header.tensors[index];
            let t_start = header.data_offset + info.offset;
            let t_end = t_start + info.size;
            if t_start >= end {
                break;
            }
            let from = t_start.max(start);
            let to = t_end.min(end);
            let mut piece = &chunk[(from - start) as usize..(to - start) as usize];
            let row_bytes = info.row_bytes() as usize;
            let mut row = (from - t_start - self.partial.len() as u64) / row_bytes as u64;
            if !self.partial.is_empty() {
                let take = (row_bytes - self.partial.len()).min(piece.len());
                self.partial.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                if self.partial.len() == row_bytes {
                    sink.rows(info, row, &self.partial)?;
                    self.partial.clear();
                    row += 1;
                }
            }
            let whole = piece.len() / row_bytes * row_bytes;
            if whole > 0 || info.size == 0 {
                sink.rows(info, row, &piece[..whole])?;
            }
            if whole < piece.len() {
                self.partial.reserve_exact(row_bytes);
                self.partial.extend_from_slice(&piece[whole..]);
            }
            if to < t_end {
                break;
            }
            if self.partial.capacity() > 1 << 20 {
                // A vector or an odd tensor was gathered whole: let it go.
                self.partial = Vec::new();
            }
            self.delivered += 1;
        }
        Ok(())
    }
}
