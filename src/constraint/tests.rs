use super::gbnf::{is_gbnf, to_lark};
use super::{JsonDigits, ResponseFormat, MAX_JSON_DIGITS};
use serde_json::json;

#[test]
fn gbnf_becomes_lark() {
    let g = r#"
        # a comment
        root   ::= "{" ws pair ("," ws pair)* "}"
        pair   ::= key ":" ws Value-2
        key    ::= "\"" [a-z_]+ "\""
        Value-2 ::= [0-9]{1,3} | "\x41\u00e9" | [^"\\\n]* | .
        ws ::= [ \t\n]?
    "#;
    assert!(is_gbnf(g));
    let lark = to_lark(g).unwrap();
    let expected = concat!(
        "start: root\n",
        "root: \"{\" ws pair ( \",\" ws pair ) * \"}\" \n",
        "pair: key \":\" ws value_2 \n",
        "key: \"\\\"\" /[a-z\\x{5F}]/ + \"\\\"\" \n",
        "value_2: /[0-9]/ {1,3}  |  \"Aé\"  |  /[^\\x{22}\\x{5C}\\x{A}]/ *  |  /(?s:.)/ \n",
        "ws: /[\\x{20}\\x{9}\\x{A}]/ ? \n",
    );
    assert_eq!(lark, expected);
}

#[test]
fn gbnf_names_that_lark_would_refuse_are_renamed_without_collisions() {
    let lark = to_lark("root ::= start 1x a-b a_b\nstart ::= \"s\"\n1x ::= \"x\"\na-b ::= \"1\"\na_b ::= \"2\"").unwrap();
    assert!(lark.starts_with("start: root\nroot: g_start g_1x a_b a_b_2 \n"), "{lark}");
}

#[test]
fn bad_gbnf_is_an_error_with_a_place() {
    for (g, why) in [
        ("root ::= \"a", "unterminated string"),
        ("root ::= [a-", "unterminated character class"),
        ("root ::= [z-a]", "runs backwards"),
        ("root ::= ( \"a\"", "unclosed"),
        ("root ::= \"a\" )", "unmatched"),
        ("root ::= * \"a\"", "follows no element"),
        ("root ::= \"a\"{3,1}", "max below min"),
        ("root ::= \"a\"{x}", "bad repetition"),
        ("root ::= \"\\q\"", "bad escape"),
        ("root ::=", "is empty"),
        ("item ::= \"a\"", "no `root` rule"),
        ("root ::= \"a\" ; ", "unexpected ';'"),
    ] {
        let e = to_lark(g).unwrap_err();
        assert!(e.contains(why), "{g:?}: {e}");
    }
    // Lark is not GBNF.
    assert!(!is_gbnf("start: \"a\" b\nb: /[0-9]+/"));
}

#[test]
fn formats_read_as_the_api_and_openai_spell_them() {
    let schema = json!({ "type": "object", "properties": { "a": { "type": "integer" } } });
    let read = |v: serde_json::Value| ResponseFormat::from_json(&v);
    assert_eq!(read(json!({ "type": "json_schema", "schema": schema })).unwrap(), Some(ResponseFormat::JsonSchema(schema.clone())));
    assert_eq!(
        read(json!({ "type": "json_schema", "json_schema": { "name": "x", "strict": true, "schema": schema } })).unwrap(),
        Some(ResponseFormat::JsonSchema(schema.clone()))
    );
    assert_eq!(read(json!({ "type": "json_object" })).unwrap(), Some(ResponseFormat::JsonObject));
    assert_eq!(read(json!({ "type": "text" })).unwrap(), None);
    assert_eq!(read(json!({ "type": "regex", "pattern": "[0-9]+" })).unwrap(), Some(ResponseFormat::Regex("[0-9]+".into())));
    assert_eq!(read(json!({ "type": "grammar", "gbnf": "root ::= \"a\"" })).unwrap(), Some(ResponseFormat::Grammar("root ::= \"a\"".into())));
    for format in [
        ResponseFormat::JsonSchema(schema.clone()),
        ResponseFormat::JsonObject,
        ResponseFormat::Regex("a|b".into()),
        ResponseFormat::Grammar("start: \"a\"".into()),
    ] {
        assert_eq!(read(format.to_json()).unwrap(), Some(format));
    }
    for bad in [
        json!("json"),
        json!({}),
        json!({ "type": "yaml" }),
        json!({ "type": "json_schema" }),
        json!({ "type": "json_schema", "schema": "{}" }),
        json!({ "type": "json_schema", "schema": {}, "json_schema": { "schema": {} } }),
        json!({ "type": "regex", "regex": "a" }),
        json!({ "type": "grammar", "lark": "start: \"a\"", "gbnf": "root ::= \"a\"" }),
        json!({ "type": "json_object", "schema": {} }),
    ] {
        let e = read(bad.clone()).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}");
    }
}

#[test]
fn json_digits_count_outside_strings_only() {
    let mut j = JsonDigits::default();
    j.push(br#"{"a": 12"#);
    assert_eq!(j.digits, 2);
    j.push(b"34.5");
    assert_eq!(j.digits, 1);
    j.push(br#", "id": "1234"#);
    assert!(j.in_string);
    assert_eq!(j.digits, 0);
    j.push(br#"5\"67\\"#);
    assert!(j.in_string, "escaped quotes and backslashes stay in the string");
    j.push(br#"", "n": "#);
    assert!(!j.in_string);
    j.push(&[b'9'; MAX_JSON_DIGITS]);
    assert_eq!(j.digits, MAX_JSON_DIGITS);
}
