//! Streaming detokenization, and llama.cpp's space clean-up that it must
//! apply piece by piece exactly as a whole decode would.

use std::ops::Deref;

use super::Tokenizer;

/// Turns ids into text one token at a time, for streaming generated text.
///
/// Every returned piece is valid UTF-8: bytes of a character split across
/// tokens are held until the character is complete, and bytes that can never
/// form one become U+FFFD. The concatenation of all pieces, `finish()`
/// included, equals `String::from_utf8_lossy(&tokenizer.decode(ids, render_special))`:
/// the first token loses its SPM space prefix, and with `clean_spaces` the last
/// few bytes wait until the clean-up rules can no longer change them.
///
/// It holds the tokenizer through any pointer: `&Tokenizer`, `Rc<Tokenizer>`
/// or `Arc<Tokenizer>` (for an owner such as a JavaScript object).
pub struct StreamDecoder<T: Deref<Target = Tokenizer>> {
    tokenizer: T,
    render_special: bool,
    first: bool,
    /// Bytes the space clean-up may still change.
    unclean: Vec<u8>,
    /// Clean bytes that do not yet end on a character boundary.
    incomplete: Vec<u8>,
}

impl<T: Deref<Target = Tokenizer>> StreamDecoder<T> {
    pub fn new(tokenizer: T, render_special: bool) -> Self {
        StreamDecoder { tokenizer, render_special, first: true, unclean: Vec::new(), incomplete: Vec::new() }
    }

    /// Adds one token; returns the text it completes (often empty or several characters).
    pub fn push(&mut self, id: u32) -> String {
        let tokenizer = &*self.tokenizer;
        let lstrip = self.first && tokenizer.add_space_prefix;
        self.first = false;
        if tokenizer.clean_spaces {
            tokenizer.push_piece(id, lstrip, self.render_special, &mut self.unclean);
            let cut = stable_clean_prefix(&self.unclean);
            let mut ready: Vec<u8> = self.unclean.drain(..cut).collect();
            clean_up_spaces(&mut ready);
            self.incomplete.extend_from_slice(&ready);
        } else {
            tokenizer.push_piece(id, lstrip, self.render_special, &mut self.incomplete);
        }
        take_complete_utf8(&mut self.incomplete)
    }

    /// Flushes everything held back; a trailing incomplete character becomes
    /// U+FFFD. Later pushes continue the same text.
    pub fn finish(&mut self) -> String {
        if self.tokenizer.clean_spaces {
            clean_up_spaces(&mut self.unclean);
            self.incomplete.append(&mut self.unclean);
        }
        let text = String::from_utf8_lossy(&self.incomplete).into_owned();
        self.incomplete.clear();
        text
    }
}

/// Removes and returns the longest valid UTF-8 prefix of `bytes`, with each
/// invalid sequence replaced by U+FFFD exactly as `String::from_utf8_lossy`
/// would; an incomplete sequence at the end stays in `bytes`.
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut rest = &bytes[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).expect("checked by valid_up_to"));
                match e.error_len() {
                    Some(len) => {
                        out.push('\u{FFFD}');
                        rest = &after[len..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.len();
    bytes.drain(..bytes.len() - kept);
    out
}

/// llama.cpp's `clean_spaces` passes, byte for byte: drop a space before
/// `?!.,`, turn ` ' ` into `'`, and drop the space before `'s 'm 're 've`.
pub(super) fn clean_up_spaces(text: &mut Vec<u8>) {
    // Each pass compacts in place; reading text[i - 1] sees the pass's input,
    // as in the C++ code.
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    text.truncate(total);

    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < n {
                let x2 = text[i + 2];
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// The longest prefix of `raw` whose clean-up no later bytes can change:
/// `clean(raw[..cut] + later) == clean(raw[..cut]) + clean(later)` when the
/// byte before the cut is neither a space nor a quote and no quote is among
/// the three bytes before that (every rule looks at most at " 'xy").
pub(super) fn stable_clean_prefix(raw: &[u8]) -> usize {
    (1..=raw.len())
        .rev()
        .find(|&cut| {
            !matches!(raw[cut - 1], b' ' | b'\'') && raw[cut.saturating_sub(4)..cut - 1].iter().all(|&b| b != b'\'')
        })
        .unwrap_or(0)
}
