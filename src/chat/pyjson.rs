//! The `tojson` filter as transformers defines it: Python's `json.dumps`
//! (`ensure_ascii=False` unless asked, `indent`, `separators`, `sort_keys`),
//! without Jinja2's HTML escaping. Templates print tool schemas and call
//! arguments with it, so its spacing and escaping reach the prompt: `", "`
//! and `": "` between items unless indented, non-ASCII kept or `\uXXXX`.

use super::jinja2;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use std::fmt::Write;

/// How `json.dumps` was asked to write.
struct Style {
    ensure_ascii: bool,
    /// Per level; `None` writes everything on one line.
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

/// `value | tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let ensure_ascii = kwargs.get::<Option<Value>>("ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_owned(),
            None => " ".repeat(v.as_usize().ok_or_else(|| invalid("indent must be a number or a string"))?),
        }),
    };
    let (item_separator, key_separator) = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(pair) if pair.len() == 2 => (pair[0].clone(), pair[1].clone()),
        Some(_) => return Err(invalid("separators must be a pair of strings")),
        // Python drops the space after commas when indenting (it would end lines).
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let style = Style { ensure_ascii, indent, item_separator, key_separator, sort_keys };
    let mut out = String::new();
    write_value(&mut out, value, &style, 0)?;
    Ok(out)
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.to_owned())
}

/// Python's TypeError for what JSON cannot hold, with Python's type names for
/// the values Jinja2 would have there (a lazy `map` is a generator).
fn not_serializable(value: &Value) -> Error {
    let python_type = match value.kind() {
        ValueKind::Undefined => "Undefined",
        _ if jinja2::is_generator(value) => "generator",
        ValueKind::Bytes => "bytes",
        _ => "object",
    };
    invalid(&format!("Object of type {python_type} is not JSON serializable"))
}

fn write_value(out: &mut String, value: &Value, style: &Style, depth: usize) -> Result<(), Error> {
    match value.kind() {
        _ if jinja2::is_none(value) => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => write_number(out, value),
        ValueKind::String => write_string(out, value.as_str().unwrap_or_default(), style.ensure_ascii),
        // minijinja's lazy slices and concatenations are Python lists.
        ValueKind::Seq | ValueKind::Iterable if !jinja2::is_generator(value) => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, ('[', ']'), &items, style, depth, |out, item, depth| {
                write_value(out, item, style, depth)
            })?;
        }
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                pairs.push((key_text(&key)?, item));
            }
            if style.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, ('{', '}'), &pairs, style, depth, |out, (key, item), depth| {
                write_string(out, key, style.ensure_ascii);
                out.push_str(&style.key_separator);
                write_value(out, item, style, depth)
            })?;
        }
        _ => return Err(not_serializable(value)),
    }
    Ok(())
}

/// `[a, b]`, or one item a line at `depth + 1` indents when indenting.
fn write_container<T>(
    out: &mut String,
    (open, close): (char, char),
    items: &[T],
    style: &Style,
    depth: usize,
    mut write_item: impl FnMut(&mut String, &T, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    let newline = |out: &mut String, depth: usize| {
        if let Some(indent) = &style.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth));
        }
    };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_separator);
        }
        newline(out, depth + 1);
        write_item(out, item, depth + 1)?;
    }
    newline(out, depth);
    out.push(close);
    Ok(())
}

/// Python turns `None`, booleans and numbers used as keys into their JSON text.
fn key_text(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_owned()),
        ValueKind::None => Ok("null".into()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number => {
            let mut text = String::new();
            write_number(&mut text, key);
            Ok(text)
        }
        _ => Err(invalid("keys must be str, int, float, bool or None")),
    }
}

fn write_number(out: &mut String, value: &Value) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str(&python_float(f64::try_from(value.clone()).unwrap_or(f64::NAN)));
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional
/// for exponents -4..16, else `1e-05`/`1.5e+16`; `NaN` and `Infinity` as
/// `json.dumps` writes them.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let scientific = format!("{x:e}"); // shortest round-trip digits, e.g. "-1.25e-5"
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let positional = format!("{x}");
        if positional.contains('.') {
            positional
        } else {
            positional + ".0"
        }
    } else {
        format!("{mantissa}e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.abs())
    }
}

/// A JSON string as Python escapes it: quotes, backslashes and control
/// characters (short forms where JSON has them), and everything past ASCII
/// as UTF-16 `\uXXXX` units when `ensure_ascii`.
fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' || (ensure_ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(json: &str, kwargs: &[(&str, Value)]) -> String {
        let value = Value::from(minijinja::value::Serde(serde_json::from_str::<serde_json::Value>(json).unwrap()));
        tojson(&value, Kwargs::from_iter(kwargs.iter().cloned())).unwrap()
    }

    #[test]
    fn writes_like_python_json_dumps() {
        let doc = r#"{"b": [1, 2.5, 1e-7, 3e20, true, null], "a": {"é": "x\"y\\\n\u0001😀"}, "e": [], "f": {}}"#;
        // json.dumps(doc, ensure_ascii=False)
        assert_eq!(
            dumps(doc, &[]),
            r#"{"b": [1, 2.5, 1e-07, 3e+20, true, null], "a": {"é": "x\"y\\\n\u0001😀"}, "e": [], "f": {}}"#
        );
        // json.dumps(doc, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
        assert_eq!(
            dumps(
                doc,
                &[
                    ("ensure_ascii", Value::from(true)),
                    ("sort_keys", Value::from(true)),
                    ("separators", Value::from(vec![",", ":"]))
                ]
            ),
            r#"{"a":{"\u00e9":"x\"y\\\n\u0001\ud83d\ude00"},"b":[1,2.5,1e-07,3e+20,true,null],"e":[],"f":{}}"#
        );
        // json.dumps({"a": [1, {}], "b": "c"}, indent=2)
        assert_eq!(
            dumps(r#"{"a": [1, {}], "b": "c"}"#, &[("indent", Value::from(2))]),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": \"c\"\n}"
        );
        assert_eq!(python_float(100.0), "100.0");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(-1.5e-300), "-1.5e-300");
    }

    #[test]
    fn undefined_and_generators_are_errors() {
        let undefined = tojson(&Value::UNDEFINED, Kwargs::from_iter(None::<(&str, Value)>)).unwrap_err();
        assert!(undefined.to_string().contains("Object of type Undefined is not JSON serializable"), "{undefined}");
        let lazy = jinja2::generator(vec![Value::from(1)]);
        let generator = tojson(&lazy, Kwargs::from_iter(None::<(&str, Value)>)).unwrap_err();
        assert!(generator.to_string().contains("generator"), "{generator}");
    }
}
