//! Request bodies checked field by field, collecting every problem into one
//! 422 (as the original service did) rather than stopping at the first.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{ApiError, FieldError};
use crate::price::{Price, PriceError};

/// Most characters an item name may have, after trimming.
pub const NAME_MAX: usize = 255;
/// Most characters a description may have.
pub const DESCRIPTION_MAX: usize = 10_000;

/// A top-level field of a JSON body. Numbers keep their exact text, so a price
/// never passes through a float.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Number(String),
    Other(Value),
}

/// A parsed JSON object body.
pub type Body = BTreeMap<String, Field>;

/// Parses a JSON object body.
pub fn json_object(body: &[u8]) -> Result<Body, ApiError> {
    let invalid = |msg: String| {
        ApiError::Validation(vec![FieldError::new("json_invalid", &["body"], msg, None)])
    };
    let raw: BTreeMap<String, Box<RawValue>> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => {
            serde_json::from_slice(body).map_err(|e| invalid(format!("JSON decode error: {e}")))?
        }
        Ok(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "model_attributes_type",
                &["body"],
                "Input should be a valid dictionary or object to extract fields from",
                None,
            )]));
        }
        Err(e) => return Err(invalid(format!("JSON decode error: {e}"))),
    };
    raw.into_iter()
        .map(|(key, value)| {
            let text = value.get();
            let field = if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                Field::Number(text.to_string())
            } else {
                Field::Other(
                    serde_json::from_str(text)
                        .map_err(|e| invalid(format!("JSON decode error: {e}")))?,
                )
            };
            Ok((key, field))
        })
        .collect()
}

impl Field {
    /// As ordinary JSON, for error inputs.
    fn plain(&self) -> Value {
        match self {
            Field::Number(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Field::Other(value) => value.clone(),
        }
    }
}

/// The fields of an item; absent fields are `None` (for PATCH).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemFields {
    pub name: Option<String>,
    /// `Some(None)` is an explicit null.
    pub description: Option<Option<String>>,
    pub price: Option<Price>,
    pub is_available: Option<bool>,
    pub owner_id: Option<i64>,
}

/// Which fields must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// POST and PUT: name and price required.
    Full,
    /// PATCH: anything may be left out.
    Partial,
}

/// Validates an item body. Unknown fields are ignored, as the original did.
pub fn item(body: &Body, completeness: Completeness) -> Result<ItemFields, ApiError> {
    let mut errors = Vec::new();
    let mut fields = ItemFields::default();
    let missing = |name: &str| FieldError::new("missing", &["body", name], "Field required", None);

    match body.get("name") {
        None if completeness == Completeness::Full => errors.push(missing("name")),
        None => {}
        Some(Field::Other(Value::String(name))) => {
            let trimmed = name.trim();
            // At most NAME_MAX characters as sent (as openapi.json's
            // maxLength says), at least one that is not whitespace.
            if trimmed.is_empty() {
                errors.push(FieldError::new(
                    "string_too_short",
                    &["body", "name"],
                    "String should have at least 1 character",
                    Some(Value::String(name.clone())),
                ));
            } else if name.contains('\0') {
                errors.push(nul_in("name", name));
            } else if name.chars().count() > NAME_MAX {
                errors.push(FieldError::new(
                    "string_too_long",
                    &["body", "name"],
                    format!("String should have at most {NAME_MAX} characters"),
                    Some(Value::String(name.clone())),
                ));
            } else {
                fields.name = Some(trimmed.to_string());
            }
        }
        Some(other) => errors.push(FieldError::new(
            "string_type",
            &["body", "name"],
            "Input should be a valid string",
            Some(other.plain()),
        )),
    }

    match body.get("description") {
        None => {}
        Some(Field::Other(Value::Null)) => fields.description = Some(None),
        Some(Field::Other(Value::String(text))) if text.chars().count() > DESCRIPTION_MAX => errors
            .push(FieldError::new(
                "string_too_long",
                &["body", "description"],
                format!("String should have at most {DESCRIPTION_MAX} characters"),
                None,
            )),
        Some(Field::Other(Value::String(text))) if text.contains('\0') => {
            errors.push(nul_in("description", text))
        }
        Some(Field::Other(Value::String(text))) => fields.description = Some(Some(text.clone())),
        Some(other) => errors.push(FieldError::new(
            "string_type",
            &["body", "description"],
            "Input should be a valid string",
            Some(other.plain()),
        )),
    }

    match body.get("price") {
        None if completeness == Completeness::Full => errors.push(missing("price")),
        None => {}
        Some(value) => {
            let text = match value {
                Field::Number(text) => Some(text.as_str()),
                Field::Other(Value::String(text)) => Some(text.as_str()),
                Field::Other(_) => None,
            };
            let parsed = match (value, text) {
                // A string is a plain decimal, as openapi.json's pattern says:
                // no sign, exponent, spaces or bare point.
                (Field::Other(_), Some(text)) if !plain_decimal(text) => {
                    Some(Err(PriceError::NotANumber))
                }
                (_, text) => text.map(Price::parse),
            };
            match parsed {
                Some(Ok(price)) => fields.price = Some(price),
                Some(Err(error)) => errors.push(FieldError::new(
                    match error {
                        PriceError::NotANumber => "decimal_parsing",
                        PriceError::TooPrecise => "decimal_max_places",
                        PriceError::Negative => "greater_than_equal",
                        PriceError::TooLarge => "less_than",
                    },
                    &["body", "price"],
                    error.to_string(),
                    Some(value.plain()),
                )),
                None => errors.push(FieldError::new(
                    "decimal_type",
                    &["body", "price"],
                    "Decimal input should be an integer, float, string or Decimal object",
                    Some(value.plain()),
                )),
            }
        }
    }

    match body.get("is_available") {
        None => {
            if completeness == Completeness::Full {
                fields.is_available = Some(true);
            }
        }
        Some(Field::Other(Value::Bool(b))) => fields.is_available = Some(*b),
        Some(other) => errors.push(FieldError::new(
            "bool_type",
            &["body", "is_available"],
            "Input should be a valid boolean",
            Some(other.plain()),
        )),
    }

    match body.get("owner_id") {
        // An explicit null is refused like any other non-integer: it would
        // read as "no owner", which no item can be.
        None => {}
        Some(value) => {
            let id = match value {
                Field::Number(text) => text.parse::<i64>().ok(),
                Field::Other(_) => None,
            };
            match id {
                Some(id) if id > 0 => fields.owner_id = Some(id),
                _ => errors.push(FieldError::new(
                    "int_type",
                    &["body", "owner_id"],
                    "Input should be a valid positive integer",
                    Some(value.plain()),
                )),
            }
        }
    }

    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Most items one page may hold.
pub const LIMIT_MAX: i64 = 1000;

/// Which way a list runs by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

/// A list request: `skip` (>= 0, default 0), `limit` (1..=1000, default
/// 100), `owner_id` (> 0, items only) and `order` (`asc` | `desc` by id,
/// default `asc`, items only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
    pub owner_id: Option<i64>,
    pub order: Order,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            skip: 0,
            limit: 100,
            owner_id: None,
            order: Order::Ascending,
        }
    }
}

/// Reads a list request from a query string, percent-decoded (`+` is a
/// space) as HTML forms encode it. Unknown parameters are ignored; every bad
/// one is reported, in the query's order, with its `["query", name]` loc.
pub fn page(query: &str) -> Result<Page, ApiError> {
    let mut errors = Vec::new();
    let Page {
        mut skip,
        mut limit,
        owner_id: mut owner,
        mut order,
    } = Page::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key == "order" {
            match value {
                "asc" => order = Order::Ascending,
                "desc" => order = Order::Descending,
                _ => errors.push(FieldError::new(
                    "enum",
                    &["query", "order"],
                    "Input should be 'asc' or 'desc'",
                    Some(Value::String(value.to_string())),
                )),
            }
            continue;
        }
        let parsed = value.parse::<i64>();
        let input = Some(Value::String(value.to_string()));
        let mut check = |name: &'static str, ok: Option<i64>, rule: &str, kind: &'static str| match (
            parsed.clone(),
            ok,
        ) {
            (Ok(_), Some(v)) => Some(v),
            (Ok(_), None) => {
                errors.push(FieldError::new(
                    kind,
                    &["query", name],
                    rule.to_string(),
                    input.clone(),
                ));
                None
            }
            (Err(_), _) => {
                errors.push(FieldError::new(
                    "int_parsing",
                    &["query", name],
                    "Input should be a valid integer, unable to parse string as an integer",
                    input.clone(),
                ));
                None
            }
        };
        match key {
            "skip" => {
                let ok = parsed.clone().ok().filter(|v| *v >= 0);
                if let Some(v) = check(
                    "skip",
                    ok,
                    "Input should be greater than or equal to 0",
                    "greater_than_equal",
                ) {
                    skip = v;
                }
            }
            "limit" => {
                let ok = parsed.clone().ok().filter(|v| (1..=LIMIT_MAX).contains(v));
                if let Some(v) = check(
                    "limit",
                    ok,
                    "Input should be between 1 and 1000",
                    "less_than_equal",
                ) {
                    limit = v;
                }
            }
            "owner_id" => {
                let ok = parsed.clone().ok().filter(|v| *v > 0);
                if let Some(v) = check(
                    "owner_id",
                    ok,
                    "Input should be greater than 0",
                    "greater_than",
                ) {
                    owner = Some(v);
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(Page {
            skip,
            limit,
            owner_id: owner,
            order,
        })
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// `12`, `012.5`, `12.50`: digits, then at most two decimals after a point.
/// A text field holding U+0000: PostgreSQL's `text` cannot store it, so
/// it is refused on every backend alike (openapi.json's patterns say so).
fn nul_in(field: &str, text: &str) -> FieldError {
    FieldError::new(
        "string_pattern_mismatch",
        &["body", field],
        "String should not contain NUL characters",
        Some(Value::String(text.to_string())),
    )
}

fn plain_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "00"));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&fraction.len())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, completeness: Completeness) -> Result<ItemFields, ApiError> {
        item(&json_object(body.as_bytes())?, completeness)
    }

    fn locs(error: ApiError) -> Vec<(String, String)> {
        let ApiError::Validation(errors) = error else {
            panic!("not a validation error: {error:?}")
        };
        errors
            .into_iter()
            .map(|e| {
                let field = match e.loc.last() {
                    Some(crate::error::Loc::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                (field, e.kind.to_string())
            })
            .collect()
    }

    #[test]
    fn a_full_item_parses_with_defaults() {
        let item = parse(r#"{"name": "  Lamp ", "price": 12.5}"#, Completeness::Full).unwrap();
        assert_eq!(item.name.as_deref(), Some("Lamp"));
        assert_eq!(item.price.unwrap().to_string(), "12.50");
        assert_eq!(item.is_available, Some(true));
        assert_eq!(item.description, None);
        let item = parse(
            r#"{"name": "Ünïcødé 🚀", "price": "0.10", "description": null}"#,
            Completeness::Full,
        )
        .unwrap();
        assert_eq!(item.price.unwrap().cents(), 10);
        assert_eq!(item.description, Some(None));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = parse(
            r#"{"name": "", "price": 12.345, "is_available": "yes"}"#,
            Completeness::Full,
        )
        .unwrap_err();
        assert_eq!(
            locs(error),
            vec![
                ("name".into(), "string_too_short".into()),
                ("price".into(), "decimal_max_places".into()),
                ("is_available".into(), "bool_type".into()),
            ]
        );
        let error = parse("{}", Completeness::Full).unwrap_err();
        assert_eq!(
            locs(error),
            vec![
                ("name".into(), "missing".into()),
                ("price".into(), "missing".into())
            ]
        );
        assert!(parse("{}", Completeness::Partial).is_ok());
    }

    #[test]
    fn prices_are_never_rounded_and_bounds_hold() {
        for (body, kind) in [
            (r#"{"name": "x", "price": -1}"#, "greater_than_equal"),
            (r#"{"name": "x", "price": 100000000}"#, "less_than"),
            (r#"{"name": "x", "price": "abc"}"#, "decimal_parsing"),
            (r#"{"name": "x", "price": true}"#, "decimal_type"),
            (r#"{"name": "x", "price": 0.125}"#, "decimal_max_places"),
        ] {
            assert_eq!(
                locs(parse(body, Completeness::Full).unwrap_err()),
                vec![("price".into(), kind.into())],
                "{body}"
            );
        }
        let exact = parse(r#"{"name": "x", "price": 99999999.99}"#, Completeness::Full).unwrap();
        assert_eq!(exact.price.unwrap().to_string(), "99999999.99");
    }

    #[test]
    fn price_strings_are_plain_decimals() {
        for good in ["0", "12", "012.5", "12.50", "99999999.99"] {
            let body = format!(r#"{{"name": "x", "price": "{good}"}}"#);
            assert!(parse(&body, Completeness::Full).is_ok(), "{good}");
        }
        for bad in [
            "1e2", " 12", "12 ", "+12", "-0", "12.", ".5", "12.500", "1_0",
        ] {
            let body = format!(r#"{{"name": "x", "price": "{bad}"}}"#);
            assert_eq!(
                locs(parse(&body, Completeness::Full).unwrap_err()),
                vec![("price".into(), "decimal_parsing".into())],
                "{bad}"
            );
        }
        // The bound holds for strings as for numbers.
        assert_eq!(
            locs(parse(r#"{"name": "x", "price": "100000000"}"#, Completeness::Full).unwrap_err()),
            vec![("price".into(), "less_than".into())]
        );
        // JSON numbers keep every JSON spelling.
        assert!(parse(r#"{"name": "x", "price": 1e2}"#, Completeness::Full).is_ok());
    }

    #[test]
    fn owner_id_null_is_refused() {
        for body in [
            r#"{"name": "x", "price": 1, "owner_id": null}"#,
            r#"{"name": "x", "price": 1, "owner_id": 0}"#,
        ] {
            assert_eq!(
                locs(parse(body, Completeness::Full).unwrap_err()),
                vec![("owner_id".into(), "int_type".into())],
                "{body}"
            );
        }
        assert_eq!(
            locs(parse(r#"{"owner_id": null}"#, Completeness::Partial).unwrap_err()),
            vec![("owner_id".into(), "int_type".into())]
        );
    }

    #[test]
    fn names_are_bounded_as_sent_and_stored_trimmed() {
        let padded = format!(r#"{{"name": " {} ", "price": 1}}"#, "n".repeat(254));
        assert_eq!(
            locs(parse(&padded, Completeness::Full).unwrap_err()),
            vec![("name".into(), "string_too_long".into())],
            "256 characters as sent"
        );
        let fits = format!(r#"{{"name": " {}", "price": 1}}"#, "n".repeat(254));
        let item = parse(&fits, Completeness::Full).unwrap();
        assert_eq!(item.name.unwrap().len(), 254);
        assert_eq!(
            locs(parse(r#"{"name": " \t ", "price": 1}"#, Completeness::Full).unwrap_err()),
            vec![("name".into(), "string_too_short".into())]
        );
    }

    #[test]
    fn nul_characters_are_refused_in_text_fields() {
        assert_eq!(
            locs(
                parse(
                    r#"{"name": "a\u0000b", "description": "c\u0000", "price": 1}"#,
                    Completeness::Full
                )
                .unwrap_err()
            ),
            vec![
                ("name".into(), "string_pattern_mismatch".into()),
                ("description".into(), "string_pattern_mismatch".into())
            ]
        );
        let fine = parse(r#"{"name": "a\u0001b", "price": 1}"#, Completeness::Full).unwrap();
        assert_eq!(fine.name.as_deref(), Some("a\u{1}b"));
    }

    #[test]
    fn malformed_json_is_json_invalid() {
        for body in ["{", "", "[1]", "nul"] {
            let error = parse(body, Completeness::Full).unwrap_err();
            let kinds: Vec<String> = locs(error).into_iter().map(|(_, k)| k).collect();
            assert!(
                kinds == ["json_invalid"] || kinds == ["model_attributes_type"],
                "{body}: {kinds:?}"
            );
        }
        let long = format!(r#"{{"name": "{}", "price": 1}}"#, "n".repeat(256));
        assert_eq!(
            locs(parse(&long, Completeness::Full).unwrap_err()),
            vec![("name".into(), "string_too_long".into())]
        );
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn pages_default_and_bound() {
        assert_eq!(page("").unwrap(), Page::default());
        assert_eq!(
            page("skip=5&limit=1000&owner_id=3&order=desc").unwrap(),
            Page {
                skip: 5,
                limit: 1000,
                owner_id: Some(3),
                order: Order::Descending
            }
        );
        assert_eq!(page("order=asc").unwrap().order, Order::Ascending);
        for bad in [
            "order=DESC",
            "order=",
            "skip=-1",
            "limit=0",
            "limit=1001",
            "limit=x",
            "owner_id=0",
            "skip=1.5",
        ] {
            assert!(matches!(page(bad), Err(ApiError::Validation(_))), "{bad}");
        }
        let Err(ApiError::Validation(errors)) = page("skip=-1&limit=0") else {
            panic!()
        };
        assert_eq!(errors.len(), 2);
    }

    fn input_of(query: &str) -> (Vec<String>, Option<Value>) {
        let Err(ApiError::Validation(errors)) = page(query) else {
            panic!("{query} was accepted")
        };
        let loc = errors[0]
            .loc
            .iter()
            .map(|l| match l {
                crate::error::Loc::Key(k) => k.clone(),
                crate::error::Loc::Index(i) => i.to_string(),
            })
            .collect();
        (loc, errors[0].input.clone())
    }

    #[test]
    fn queries_are_percent_decoded() {
        assert_eq!(page("owner_id=%31").unwrap().owner_id, Some(1));
        assert_eq!(page("order=%61sc").unwrap().order, Order::Ascending);
        assert_eq!(page("order=%64%65%73%63").unwrap().order, Order::Descending);
        assert_eq!(
            page("%6Cimit=7&skip=%32").unwrap(),
            Page {
                skip: 2,
                limit: 7,
                ..Page::default()
            }
        );
        assert_eq!(
            page("&&limit=3&").unwrap().limit,
            3,
            "empty pairs are skipped"
        );
        assert_eq!(
            page("flag&limit=3").unwrap().limit,
            3,
            "unknown keys are ignored"
        );
        // `+` is a space, so these are not the values they look like.
        assert_eq!(
            input_of("order=desc+"),
            (
                vec!["query".into(), "order".into()],
                Some(Value::from("desc "))
            )
        );
        assert_eq!(
            input_of("limit=+5"),
            (
                vec!["query".into(), "limit".into()],
                Some(Value::from(" 5"))
            )
        );
        assert_eq!(
            input_of("skip=%2D1"),
            (vec!["query".into(), "skip".into()], Some(Value::from("-1")))
        );
        // Undecodable bytes do not fail the request: they are not a number.
        assert_eq!(
            input_of("owner_id=%FF"),
            (
                vec!["query".into(), "owner_id".into()],
                Some(Value::from("\u{FFFD}"))
            )
        );
    }
}
