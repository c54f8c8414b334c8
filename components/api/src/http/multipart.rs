//! The fields of a `multipart/form-data` body (RFC 7578), read leniently:
//! a part's headers are only searched for its `Content-Disposition` name, so
//! a field with an unusual name (control characters, bytes that are not
//! UTF-8) is one more field to ignore, never a reason to refuse the form.
//! Only a body that is not multipart at all (no boundary, no closing
//! delimiter) is an error.

/// Why a body could not be read as multipart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartError {
    /// The `content-type` names no boundary.
    NoBoundary,
    /// The body does not open and close with the boundary.
    Malformed,
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MultipartError::NoBoundary => "multipart boundary missing",
            MultipartError::Malformed => "multipart body malformed",
        })
    }
}

/// `(name, value)` for every part, in order; a part without a name is
/// named `""`, values are decoded as UTF-8 (lossily).
pub fn fields(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, MultipartError> {
    let boundary = parameter(content_type.as_bytes(), b"boundary")
        .filter(|b| !b.is_empty())
        .ok_or(MultipartError::NoBoundary)?;
    let delimiter = [b"--".as_slice(), &boundary].concat();
    let between = [b"\r\n".as_slice(), &delimiter].concat();
    let mut at = find(body, &delimiter, 0).ok_or(MultipartError::Malformed)? + delimiter.len();
    let mut out = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(out);
        }
        // Transport padding, then the line break that ends the delimiter line.
        while matches!(body.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(MultipartError::Malformed);
        }
        at += 2;
        let end = find(body, &between, at).ok_or(MultipartError::Malformed)?;
        let part = &body[at..end];
        let (headers, value) = match find(part, b"\r\n\r\n", 0) {
            Some(split) => (&part[..split], &part[split + 4..]),
            None if part.starts_with(b"\r\n") => (&b""[..], &part[2..]),
            None => (part, &b""[..]),
        };
        let name = headers
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                line[..colon]
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"content-disposition")
                    .then(|| parameter(&line[colon + 1..], b"name"))?
            })
            .next()
            .unwrap_or_default();
        out.push((
            String::from_utf8_lossy(&name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        at = end + between.len();
    }
}

/// The value of `key=value` or `key="value"` among `;`-separated parameters.
fn parameter(header: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let mut rest = header;
    while let Some(semicolon) = rest.iter().position(|&b| b == b';') {
        rest = &rest[semicolon + 1..];
        let trimmed = rest.trim_ascii_start();
        let Some(eq) = trimmed.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !trimmed[..eq].trim_ascii_end().eq_ignore_ascii_case(key) {
            continue;
        }
        let value = trimmed[eq + 1..].trim_ascii_start();
        return Some(match value.strip_prefix(b"\"") {
            // A quoted value runs to the next quote, as browsers write it
            // (a quote inside a name is sent as %22).
            Some(quoted) => match quoted.iter().position(|&b| b == b'"') {
                Some(close) => quoted[..close].to_vec(),
                None => quoted.trim_ascii_end().to_vec(),
            },
            None => value
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
                .to_vec(),
        });
    }
    None
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    fn form(parts: &[(&[u8], &str)]) -> Vec<u8> {
        let mut body = b"preamble\r\n".to_vec();
        for (name, value) in parts {
            body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
            body.extend_from_slice(name);
            body.extend_from_slice(b"\"\r\n\r\n");
            body.extend_from_slice(value.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        body
    }

    fn named(body: &[u8]) -> Vec<(String, String)> {
        fields(TYPE, body).unwrap()
    }

    #[test]
    fn fields_are_read_in_order() {
        let body = form(&[(b"username", "admin"), (b"password", "p\r\nw; \"x\"")]);
        assert_eq!(
            named(&body),
            [
                ("username".to_string(), "admin".to_string()),
                ("password".to_string(), "p\r\nw; \"x\"".to_string())
            ]
        );
        let quoted = "multipart/form-data; charset=utf-8; boundary=\"XyZ\"";
        assert_eq!(fields(quoted, &body).unwrap().len(), 2);
    }

    #[test]
    fn unusual_field_names_are_just_other_fields() {
        // Control characters (which a strict header parser refuses), bytes
        // that are not UTF-8, an empty name, `filename`, no name at all.
        for name in [&b"\x1b"[..], b"\x7f", b"\x00", b"\xff\xfe", b"", b"a;b=c"] {
            let body = form(&[(name, "v"), (b"username", "admin"), (b"password", "pw")]);
            let got = named(&body);
            assert_eq!(got.len(), 3, "{name:?}");
            assert_eq!(got[1], ("username".into(), "admin".into()), "{name:?}");
            assert_eq!(got[2], ("password".into(), "pw".into()), "{name:?}");
        }
        let file = b"--XyZ\r\nContent-Disposition: form-data; filename=\"username\"; name=\"f\"\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--";
        assert_eq!(named(file), [("f".to_string(), "x".to_string())]);
        let anonymous = b"--XyZ\r\n\r\nx\r\n--XyZ--";
        assert_eq!(named(anonymous), [(String::new(), "x".to_string())]);
    }

    #[test]
    fn a_body_that_is_not_multipart_is_refused() {
        assert_eq!(
            fields("multipart/form-data", b"--XyZ--"),
            Err(MultipartError::NoBoundary)
        );
        for body in [
            &b""[..],
            b"username=admin",
            b"--XyZ\r\nno end",
            b"--XyZjunk",
        ] {
            assert_eq!(
                fields(TYPE, body),
                Err(MultipartError::Malformed),
                "{body:?}"
            );
        }
        assert_eq!(named(b"--XyZ--"), []);
    }
}
