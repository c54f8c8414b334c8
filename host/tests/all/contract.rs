//! `components/api/openapi.json` as the judge of every exchange the API
//! tests make. A request sent with [`Contract::checked`] is matched to its
//! operation (method and path template, from the document's `paths`); its
//! body is validated against the operation's `requestBody` (JSON and
//! url-encoded forms; a multipart body is a stream, so only its media type is
//! checked), and the answer against `responses[status]` (or `default`): the
//! status must be documented, the content type must be one the response lists
//! (none for a response without content), a JSON body must validate against
//! its schema, and the headers the response documents as required must be
//! there and valid. A path the document does not know must answer 404, and a
//! method it does not list for a known path 405 with the documented `Allow`.
//!
//! Schemas are JSON Schema draft 2020-12 (as OpenAPI 3.1 says), validated
//! with the `jsonschema` crate against the whole document, so `#/components/...`
//! references resolve, with `format` (date-time, email) asserted.
//!
//! A test that sends a body the document forbids on purpose says so with
//! [`Exchange::invalid_request`]: the request is then not validated, the
//! answer still is.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::support::repo_root;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document and a validator per schema location, compiled once.
struct Document {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let path = repo_root().join("components/api/openapi.json");
        let text = std::fs::read_to_string(&path).expect("components/api/openapi.json");
        Document {
            doc: serde_json::from_str(&text).expect("openapi.json is JSON"),
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// `a/b~c` as a JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Document {
    fn at(&self, pointer: &str) -> &Value {
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.json has nothing at {pointer}"))
    }

    /// Follows `$ref`s from `pointer` to the object they end at, and its pointer.
    fn resolve(&self, mut pointer: String) -> (String, &Value) {
        loop {
            let value = self.at(&pointer);
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    pointer = reference
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("external $ref {reference}"))
                        .to_string();
                }
                None => return (pointer, value),
            }
        }
    }

    /// Validates `instance` against the schema at `pointer` (a schema inside
    /// the document: its references resolve against the whole document).
    fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator = {
            // One test's failed compile must not poison the others' checks.
            let mut cache = self
                .validators
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            cache
                .entry(pointer.to_string())
                .or_insert_with(|| {
                    let mut root = self.doc.clone();
                    // A URI fragment: `{id}` in a path template is percent-encoded.
                    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
                    root["$ref"] = Value::String(format!("#{fragment}"));
                    Arc::new(
                        jsonschema::draft202012::options()
                            .should_validate_formats(true)
                            .build(&root)
                            .unwrap_or_else(|e| panic!("schema at {pointer}: {e}")),
                    )
                })
                .clone()
        };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Where a request lands: an operation, a known path with another method,
    /// or no documented path at all.
    fn target(&self, method: &str, path: &str) -> Target {
        let method = if method == "HEAD" { "GET" } else { method };
        let trimmed = path.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        // The most literal template wins (`/users/me` over `/users/{id}`).
        let template = self.doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .filter(|template| {
                let parts: Vec<&str> = template.split('/').skip(1).collect();
                parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(part, segment)| part.starts_with('{') || part == segment)
            })
            .min_by_key(|template| template.matches('{').count());
        let Some(template) = template else {
            return Target::UnknownPath;
        };
        let item = &self.doc["paths"][template];
        let lower = method.to_ascii_lowercase();
        if item.get(&lower).is_some() {
            Target::Operation(format!("/paths/{}/{lower}", escape(template)))
        } else {
            let mut allowed = BTreeSet::new();
            for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                allowed.insert(m.to_uppercase());
                if *m == "get" {
                    allowed.insert("HEAD".to_string());
                }
            }
            Target::MethodNotAllowed(allowed)
        }
    }
}

enum Target {
    /// The pointer of the operation object.
    Operation(String),
    MethodNotAllowed(BTreeSet<String>),
    UnknownPath,
}

/// The media type of a `content-type` value, lower-cased, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Checks a request against its operation's `requestBody`.
fn check_request(doc: &Document, what: &str, operation: &str, request: &reqwest::Request) {
    let body = request.body().map(|b| b.as_bytes());
    let media = request
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| media_type(v.to_str().unwrap_or_default()));
    let op = doc.at(operation);
    let has_body = match body {
        Some(Some(bytes)) => !bytes.is_empty(),
        // A stream (multipart): there is a body.
        Some(None) => true,
        None => false,
    };
    if op.get("requestBody").is_none() {
        assert!(
            !has_body,
            "{what}: sends a body, the document gives the operation none"
        );
        return;
    }
    let (body_pointer, request_body) = doc.resolve(format!("{operation}/requestBody"));
    if !has_body {
        assert!(
            request_body["required"] != true,
            "{what}: sends no body, the document requires one"
        );
        return;
    }
    let media = media.unwrap_or_else(|| panic!("{what}: a body without a content-type"));
    assert!(
        request_body["content"].get(&media).is_some(),
        "{what}: sends {media}, the document lists {:?}",
        request_body["content"]
            .as_object()
            .map(|c| c.keys().collect::<Vec<_>>())
    );
    let schema = format!("{body_pointer}/content/{}/schema", escape(&media));
    let instance = match (media.as_str(), body) {
        (m, Some(Some(bytes))) if is_json(m) => serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{what}: the JSON body does not parse: {e}")),
        ("application/x-www-form-urlencoded", Some(Some(bytes))) => Value::Object(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        ),
        // A multipart stream cannot be read back here; its media type was checked.
        _ => return,
    };
    if let Err(errors) = doc.validate(&schema, &instance) {
        panic!("{what}: the request body breaks the document: {errors}\nbody: {instance}");
    }
}

/// Checks an answer against the document.
fn check_response(
    doc: &Document,
    what: &str,
    target: &Target,
    head: bool,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) {
    let code = status.as_u16();
    let operation = match target {
        Target::UnknownPath => {
            assert_eq!(code, 404, "{what}: an undocumented path answered {code}");
            return;
        }
        Target::MethodNotAllowed(allowed) => {
            assert_eq!(code, 405, "{what}: an undocumented method answered {code}");
            let allow: BTreeSet<String> = headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            assert_eq!(&allow, allowed, "{what}: Allow against the document");
            return;
        }
        Target::Operation(operation) => operation,
    };
    let responses = &doc.at(operation)["responses"];
    let key = if responses.get(code.to_string()).is_some() {
        code.to_string()
    } else if responses.get("default").is_some() {
        "default".to_string()
    } else {
        panic!(
            "{what}: answered {code}, which the document does not list ({:?}); body: {}",
            responses.as_object().map(|r| r.keys().collect::<Vec<_>>()),
            String::from_utf8_lossy(body)
        );
    };
    let (pointer, response) = doc.resolve(format!("{operation}/responses/{key}"));

    for name in response["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let (header_pointer, header) = doc.resolve(format!("{pointer}/headers/{}", escape(name)));
        let Some(value) = headers.get(name.as_str()) else {
            assert!(
                header["required"] != true,
                "{what}: {code} without its required {name} header"
            );
            continue;
        };
        let text = value.to_str().unwrap_or_default();
        let instance = match header["schema"]["type"].as_str() {
            Some("integer" | "number") => serde_json::from_str(text)
                .unwrap_or_else(|_| panic!("{what}: header {name}: {text:?} is not a number")),
            _ => Value::String(text.to_string()),
        };
        if let Err(errors) = doc.validate(&format!("{header_pointer}/schema"), &instance) {
            panic!("{what}: header {name}: {errors}");
        }
    }

    let content = response.get("content").and_then(Value::as_object);
    let media = headers
        .get(CONTENT_TYPE)
        .map(|v| media_type(v.to_str().unwrap_or_default()));
    let Some(content) = content else {
        assert!(
            body.is_empty(),
            "{what}: {code} has a body, the document gives it none: {}",
            String::from_utf8_lossy(body)
        );
        return;
    };
    if head {
        return;
    }
    let media = media.unwrap_or_else(|| panic!("{what}: {code} without a content-type"));
    assert!(
        content.contains_key(&media),
        "{what}: {code} answered {media}, the document lists {:?}",
        content.keys().collect::<Vec<_>>()
    );
    if is_json(&media) {
        let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{what}: {code} {media} does not parse ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let schema = format!("{pointer}/content/{}/schema", escape(&media));
        if let Err(errors) = doc.validate(&schema, &instance) {
            panic!("{what}: the {code} body breaks the document: {errors}\nbody: {instance}");
        }
    }
}

/// Sends requests through the document's checks.
pub trait Contract {
    /// This request, to be checked against the document when sent.
    fn checked(self) -> Exchange;
}

impl Contract for reqwest::RequestBuilder {
    fn checked(self) -> Exchange {
        Exchange {
            builder: self,
            request_is_valid: true,
        }
    }
}

/// A request on its way, and whether its body is meant to be valid.
pub struct Exchange {
    builder: reqwest::RequestBuilder,
    request_is_valid: bool,
}

impl Exchange {
    /// The test breaks the document on purpose: only the answer is checked.
    pub fn invalid_request(mut self) -> Self {
        self.request_is_valid = false;
        self
    }

    /// Sends the request and checks both sides; panics on any disagreement.
    pub async fn send(self) -> Checked {
        let doc = document();
        let (client, request) = self.builder.build_split();
        let request = request.expect("a well-formed request");
        let method = request.method().as_str().to_string();
        let path = request.url().path().to_string();
        let what = format!("{method} {path}");
        let target = doc.target(&method, &path);
        if self.request_is_valid
            && let Target::Operation(operation) = &target
        {
            check_request(doc, &what, operation, &request);
        }
        let response = client
            .execute(request)
            .await
            .expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the body is read").to_vec();
        check_response(
            doc,
            &what,
            &target,
            method == "HEAD",
            status,
            &headers,
            &body,
        );
        Checked {
            status,
            headers,
            body,
        }
    }
}

/// An answer that the document allows. Reads like a `reqwest::Response`.
#[derive(Debug)]
pub struct Checked {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Checked {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` when it is not JSON, e.g. empty).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_on_the_most_literal_operation() {
        let doc = document();
        let op = |method, path| match doc.target(method, path) {
            Target::Operation(pointer) => pointer,
            _ => panic!("{method} {path}: no operation"),
        };
        assert_eq!(op("GET", "/users/me"), "/paths/~1users~1me/get");
        assert_eq!(op("GET", "/users/7/"), "/paths/~1users~1{id}/get");
        assert_eq!(op("HEAD", "/items"), "/paths/~1items/get");
        assert!(matches!(doc.target("GET", "/nowhere"), Target::UnknownPath));
        let Target::MethodNotAllowed(allowed) = doc.target("DELETE", "/items") else {
            panic!("DELETE /items is not an operation")
        };
        assert_eq!(
            allowed.into_iter().collect::<Vec<_>>(),
            ["GET", "HEAD", "POST"]
        );
    }

    #[test]
    fn schemas_resolve_references_and_formats() {
        let doc = document();
        let item = "/components/schemas/Item";
        let good = serde_json::json!({
            "id": 1, "name": "Lamp", "description": null, "price": 12.5,
            "is_available": true, "owner_id": 1,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
        });
        assert_eq!(doc.validate(item, &good), Ok(()));
        let mut bad = good.clone();
        bad["updated_at"] = "yesterday".into();
        bad["price"] = serde_json::json!(12.345);
        let errors = doc.validate(item, &bad).unwrap_err();
        assert!(
            errors.contains("/updated_at") && errors.contains("/price"),
            "{errors}"
        );
    }
}
