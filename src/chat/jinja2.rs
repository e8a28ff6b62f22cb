//! Jinja2's behaviour where minijinja's builtins differ from it on the
//! Python values templates handle, so that templates take the same
//! branches: None is not iterable, Jinja2's lazy filters return generators,
//! undefined has length 0, strings and dicts are sequences.
//!
//! `'x'|safe + text` is rewritten ([`markup_concat`]): Jinja2's Markup
//! HTML-escapes the plain strings it is added to (functionary v3.1 prints
//! its tools so), where minijinja's `+` joins them as they are.
//!
//! What still differs, for want of hooks in minijinja (none of llama.cpp's
//! templates meets these with the tests' conversations):
//! - Floats printed or turned into strings (not through `tojson`) below 1e-4
//!   or from 1e16 on: Python writes `1e-07`, minijinja `0.0000001`.
//! - Only `tools` and `documents` are this module's Python None: a `none`
//!   literal or a `.get()` that finds nothing iterates as empty.

use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Rest, ValueKind, ValueOrKwargs};
use minijinja::{filters, Environment, Error, ErrorKind, State, Value};
use std::fmt;
use std::sync::Arc;

pub(super) fn install(env: &mut Environment) {
    // Jinja2's `map`, `select`, `reject`, `selectattr` and `rejectattr` are
    // lazy (`| list` makes them a list), and yield nothing from a false
    // value (`none | selectattr(...)` is empty).
    env.add_filter("map", |state: &mut State, value: Value, args: Rest<ValueOrKwargs>| {
        lazy(value, |value| filters::map(state, value, args))
    });
    env.add_filter("select", |state: &mut State, value: Value, test: Option<String>, args: Rest<ValueOrKwargs>| {
        lazy(value, |value| filters::select(state, value, test.map(Into::into), args))
    });
    env.add_filter("reject", |state: &mut State, value: Value, test: Option<String>, args: Rest<ValueOrKwargs>| {
        lazy(value, |value| filters::reject(state, value, test.map(Into::into), args))
    });
    env.add_filter(
        "selectattr",
        |state: &mut State, value: Value, attr: String, test: Option<String>, args: Rest<ValueOrKwargs>| {
            lazy(value, |value| filters::selectattr(state, value, attr.into(), test.map(Into::into), args))
        },
    );
    env.add_filter(
        "rejectattr",
        |state: &mut State, value: Value, attr: String, test: Option<String>, args: Rest<ValueOrKwargs>| {
            lazy(value, |value| filters::rejectattr(state, value, attr.into(), test.map(Into::into), args))
        },
    );
    env.add_filter("length", |value: &Value| {
        if value.is_undefined() {
            Ok(0)
        } else if is_generator(value) {
            Err(Error::new(ErrorKind::InvalidOperation, "object of type 'generator' has no len()"))
        } else {
            filters::length(value)
        }
    });
    env.add_filter(MARKUP_ESCAPE, markup_escape);
    env.add_test("none", is_none);
    env.add_test("iterable", |value: &Value| !value.is_none() && value.try_iter().is_ok());
    // "Has a length and items": templates write `x is sequence and x is not string`.
    env.add_test("sequence", |value: &Value| {
        value.is_undefined() || matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::String)
    });
}

/// The filter [`markup_concat`] wraps plain operands in.
const MARKUP_ESCAPE: &str = "_markup_escape";

/// markupsafe's `escape`, which Markup applies to what is added to it:
/// `& < > ' "` as entities, nothing else.
fn markup_escape(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// `source` with each printed sum that has a `|safe` term, `{{ 'a'|safe +
/// x + ... }}`, written as Jinja2 evaluates it: once a Markup takes part
/// in `+`, every plain string of the sum is HTML-escaped. The sum becomes
/// a `~` join of its terms, the plain ones through [`markup_escape`].
pub(super) fn markup_concat(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let Some(len) = expression_len(&rest[start + 2..]) else { break };
        let expr = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start + 2]);
        // Whitespace control (`{{-`, `-}}`) stays outside the sum.
        let lead = if expr.starts_with(['-', '+']) { &expr[..1] } else { "" };
        let body = &expr[lead.len()..];
        let trail = if body.trim_end().ends_with('-') { "-" } else { "" };
        let body = &body.trim_end()[..body.trim_end().len() - trail.len()];
        let terms = top_level_terms(body);
        let safe = |t: &str| t.replace(' ', "").ends_with("|safe");
        if terms.len() > 1 && terms.iter().any(|t| safe(t)) {
            let joined: Vec<String> = terms
                .iter()
                .map(|t| if safe(t) { t.trim().to_string() } else { format!("(({})|{MARKUP_ESCAPE})", t.trim()) })
                .collect();
            out.push_str(&format!("{lead} {} {trail}", joined.join(" ~ ")));
        } else {
            out.push_str(expr);
        }
        out.push_str("}}");
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The length of an expression up to its closing `}}`, outside strings.
fn expression_len(s: &str) -> Option<usize> {
    let mut quote = None;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, b'"' | b'\'') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `expr` split at the `+` signs outside strings and brackets.
fn top_level_terms(expr: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut quote, mut from) = (Vec::new(), 0i32, None, 0);
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'+' if depth == 0 => {
                    terms.push(&expr[from..i]);
                    from = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    terms.push(&expr[from..]);
    terms
}

/// Python's None, for what transformers passes as None (`tools` without
/// tools, `documents`). minijinja's own none iterates as empty where Python
/// raises "'NoneType' object is not iterable", as do the tool-use templates
/// that loop over `tools` unchecked. This one cannot be iterated, is false,
/// prints `None`, and is none to the `none` test and to `tojson`; only `==`
/// would tell it from none (no template compares `tools` with `==`).
pub(super) fn none() -> Value {
    Value::from_object(PythonNone)
}

#[derive(Debug)]
struct PythonNone;

impl Object for PythonNone {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("None")
    }
}

pub(super) fn is_none(value: &Value) -> bool {
    value.is_none() || value.downcast_object_ref::<PythonNone>().is_some()
}

/// What Jinja2's lazy filters return: a Python generator, which iterates
/// but has no length and is no JSON (unlike minijinja's lazy slices and
/// concatenations, which stand for Python lists).
#[derive(Debug)]
struct Generator(Vec<Value>);

impl Object for Generator {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| Box::new(this.0.iter().cloned()))
    }
}

/// A lazy filter's result: `filter`'s items as a generator, none if `value` is false.
fn lazy(value: Value, filter: impl FnOnce(Value) -> Result<Vec<Value>, Error>) -> Result<Value, Error> {
    Ok(generator(if value.is_true() { filter(value)? } else { Vec::new() }))
}

pub(super) fn generator(items: Vec<Value>) -> Value {
    Value::from_object(Generator(items))
}

pub(super) fn is_generator(value: &Value) -> bool {
    value.downcast_object_ref::<Generator>().is_some()
}
