//! llama.cpp's GBNF grammars, rewritten as the Lark grammars llguidance
//! compiles: the same rules under names Lark accepts, literals as JSON
//! strings, character classes and `.` as regexes, `root` as `start`.
//!
//! GBNF (llama.cpp's `grammars/README.md`): `name ::= alternatives`, where a
//! rule runs until the next `name ::=`; elements are `"literals"`, `[classes]`
//! (`[^...]` negated, `a-z` ranges), `.`, rule names and `( groups )`, each
//! followed by at most one of `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`; `#`
//! starts a comment. Escapes: `\n \r \t \\ \" \[ \] \- \^`, `\xHH`,
//! `\uHHHH`, `\UHHHHHHHH`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Whether `grammar` is GBNF rather than Lark: some line defines a rule
/// with `::=`, which Lark never writes.
pub fn is_gbnf(grammar: &str) -> bool {
    grammar.lines().any(|line| {
        let line = line.trim_start();
        let name = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(line.len());
        name > 0 && line[name..].trim_start().starts_with("::=")
    })
}

/// The Lark grammar for a GBNF grammar, or what is wrong with it (with the
/// byte offset where the parse stopped).
pub fn to_lark(gbnf: &str) -> Result<String, String> {
    let tokens = lex(gbnf)?;
    let mut names = Names::default();
    let mut out = String::new();
    let mut root = None;
    let mut i = 0;
    while i < tokens.len() {
        let (Tok::Name(name), Some(Tok::Defines)) = (&tokens[i].0, tokens.get(i + 1).map(|t| &t.0)) else {
            return Err(format!("expected `name ::=` at byte {}", tokens[i].1));
        };
        let lark_name = names.get(name);
        if name == "root" {
            root = Some(lark_name.clone());
        }
        let _ = write!(out, "{lark_name}: ");
        i += 2;
        let end = (i..tokens.len())
            .find(|&j| matches!(tokens[j].0, Tok::Name(_)) && matches!(tokens.get(j + 1), Some((Tok::Defines, _))))
            .unwrap_or(tokens.len());
        if end == i {
            return Err(format!("rule `{name}` is empty"));
        }
        let mut depth = 0usize;
        let mut after_element = false;
        for (tok, at) in &tokens[i..end] {
            match tok {
                Tok::Name(n) => out.push_str(&names.get(n)),
                Tok::Literal(s) => out.push_str(&serde_json::to_string(s).expect("a string serializes")),
                Tok::Class { negated, items } => out.push_str(&class_regex(*negated, items)),
                Tok::Any => out.push_str("/(?s:.)/"),
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.checked_sub(1).ok_or_else(|| format!("unmatched `)` at byte {at}"))?;
                }
                Tok::Repeat(r) if !after_element => return Err(format!("`{r}` at byte {at} follows no element")),
                Tok::Repeat(_) | Tok::Alt => {}
                Tok::Defines => return Err(format!("unexpected `::=` at byte {at}")),
            }
            match tok {
                Tok::Open => out.push('('),
                Tok::Close => out.push(')'),
                Tok::Alt => out.push_str(" | "),
                Tok::Repeat(r) => out.push_str(r),
                _ => {}
            }
            after_element = matches!(tok, Tok::Name(_) | Tok::Literal(_) | Tok::Class { .. } | Tok::Any | Tok::Close);
            out.push(' ');
        }
        if depth != 0 {
            return Err(format!("unclosed `(` in rule `{name}`"));
        }
        out.push('\n');
        i = end;
    }
    let root = root.ok_or("the grammar has no `root` rule")?;
    Ok(format!("start: {root}\n{out}"))
}

#[derive(Debug, PartialEq)]
enum Tok {
    Name(String),
    Defines,
    Literal(String),
    /// `(first, last)` ranges; a single character is `(c, c)`.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Any,
    Open,
    Close,
    Alt,
    /// `*`, `+`, `?` or `{m}`, `{m,}`, `{m,n}` as written (digits only).
    Repeat(String),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        let tok = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '#' => {
                while chars.next_if(|&(_, c)| c != '\n').is_some() {}
                continue;
            }
            ':' => {
                if !src[at..].starts_with("::=") {
                    return Err(format!("unexpected `:` at byte {at}"));
                }
                chars.nth(2);
                Tok::Defines
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => s.push(escape(&mut chars, at)?),
                        Some((_, c)) => s.push(c),
                        None => return Err(format!("unterminated string at byte {at}")),
                    }
                }
                Tok::Literal(s)
            }
            '[' => {
                chars.next();
                let negated = chars.next_if(|&(_, c)| c == '^').is_some();
                let mut items = Vec::new();
                loop {
                    let first = match chars.next() {
                        Some((_, ']')) => break,
                        Some((_, '\\')) => escape(&mut chars, at)?,
                        Some((_, c)) => c,
                        None => return Err(format!("unterminated character class at byte {at}")),
                    };
                    let mut last = first;
                    if chars.peek().is_some_and(|&(_, c)| c == '-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        if ahead.peek().is_some_and(|&(_, c)| c != ']') {
                            chars.next();
                            last = match chars.next() {
                                Some((_, '\\')) => escape(&mut chars, at)?,
                                Some((_, c)) => c,
                                None => return Err(format!("unterminated character class at byte {at}")),
                            };
                        }
                    }
                    if last < first {
                        return Err(format!("range {first:?}-{last:?} runs backwards at byte {at}"));
                    }
                    items.push((first, last));
                }
                Tok::Class { negated, items }
            }
            '.' => {
                chars.next();
                Tok::Any
            }
            '(' | ')' | '|' | '*' | '+' | '?' => {
                chars.next();
                match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '|' => Tok::Alt,
                    _ => Tok::Repeat(c.to_string()),
                }
            }
            '{' => {
                let end = src[at..].find('}').ok_or_else(|| format!("unterminated `{{` at byte {at}"))?;
                let body: String = src[at + 1..at + end].chars().filter(|c| !c.is_whitespace()).collect();
                let mut parts = body.splitn(2, ',');
                let min = parts.next().unwrap_or("");
                let max = parts.next();
                let number = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
                if !number(min) || max.is_some_and(|m| !m.is_empty() && !number(m)) {
                    return Err(format!("bad repetition `{{{body}}}` at byte {at}"));
                }
                if let Some(max) = max.filter(|m| !m.is_empty()) {
                    if max.parse::<u32>().unwrap_or(0) < min.parse::<u32>().unwrap_or(0) {
                        return Err(format!("repetition `{{{body}}}` at byte {at} has max below min"));
                    }
                }
                while chars.next_if(|&(i, _)| i <= at + end).is_some() {}
                Tok::Repeat(format!("{{{body}}}"))
            }
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                let mut name = String::new();
                while let Some((_, c)) = chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    name.push(c);
                }
                Tok::Name(name)
            }
            c => return Err(format!("unexpected {c:?} at byte {at}")),
        };
        out.push((tok, at));
    }
    Ok(out)
}

/// The character after a backslash (already taken).
fn escape(chars: &mut std::iter::Peekable<std::str::CharIndices>, at: usize) -> Result<char, String> {
    let hex = |chars: &mut std::iter::Peekable<std::str::CharIndices>, n: usize| {
        let digits: String = (0..n).filter_map(|_| chars.next_if(|(_, c)| c.is_ascii_hexdigit()).map(|(_, c)| c)).collect();
        (digits.len() == n)
            .then(|| u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32))
            .flatten()
            .ok_or_else(|| format!("bad escape in the element at byte {at}"))
    };
    match chars.next().map(|(_, c)| c) {
        Some('n') => Ok('\n'),
        Some('r') => Ok('\r'),
        Some('t') => Ok('\t'),
        Some('x') => hex(chars, 2),
        Some('u') => hex(chars, 4),
        Some('U') => hex(chars, 8),
        Some(c @ ('\\' | '"' | '[' | ']' | '-' | '^' | '/')) => Ok(c),
        _ => Err(format!("bad escape in the element at byte {at}")),
    }
}

/// A class as a regex in which every character but ASCII letters and digits
/// is escaped, so nothing in it reads as regex syntax (`&&`, `--`, `/`).
fn class_regex(negated: bool, items: &[(char, char)]) -> String {
    let one = |c: char| if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\x{{{:X}}}", c as u32) };
    let mut s = String::from(if negated { "/[^" } else { "/[" });
    for &(first, last) in items {
        s.push_str(&one(first));
        if last != first {
            s.push('-');
            s.push_str(&one(last));
        }
    }
    if items.is_empty() {
        // `[]` matches nothing and `[^]` anything, as in llama.cpp.
        return if negated { "/(?s:.)/".into() } else { "/[^\\x{0}-\\x{10FFFF}]/".into() };
    }
    s.push_str("]/");
    s
}

/// GBNF names as Lark rule names: lowercase, `_` for what Lark does not
/// allow, a prefix where one does not start with a letter, a suffix where
/// two would collide.
#[derive(Default)]
struct Names {
    map: HashMap<String, String>,
    taken: HashSet<String>,
}

impl Names {
    fn get(&mut self, name: &str) -> String {
        if let Some(n) = self.map.get(name) {
            return n.clone();
        }
        let mut base: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        if !base.starts_with(|c: char| c.is_ascii_lowercase()) || base == "start" {
            base = format!("g_{base}");
        }
        let mut n = base.clone();
        let mut k = 2;
        while self.taken.contains(&n) {
            n = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(n.clone());
        self.map.insert(name.to_string(), n.clone());
        n
    }
}
