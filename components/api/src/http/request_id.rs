//! Request ids: every response carries `x-request-id`, the client's own when
//! it sent a sane one (the rule the Nexa host applies: 1 to 128 characters of
//! `[A-Za-z0-9._-]`), else a new one. Behind the Nexa host a component sees
//! the host's id and so echoes it; under Spin it makes its own.

/// The header's name.
pub const HEADER: &str = "x-request-id";

/// The most characters a kept id may have.
pub const MAX_LEN: usize = 128;

/// Whether a client's id may be kept: 1..=128 characters of `[A-Za-z0-9._-]`,
/// so it is safe in a header and in a log line.
pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The id of a request: the incoming one when sane, else a new UUID v4 (32
/// hex digits).
pub fn assign(incoming: Option<&str>) -> String {
    match incoming {
        Some(id) if is_sane(id) => id.to_string(),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept() {
        for id in ["trace-42", "a", "A.b_c-9", &"x".repeat(128)] {
            assert_eq!(assign(Some(id)), id);
        }
    }

    #[test]
    fn other_ids_are_replaced_by_a_new_one() {
        let long = "x".repeat(129);
        for bad in [
            None,
            Some(""),
            Some(long.as_str()),
            Some("has space"),
            Some("semi;colon"),
            Some("new\nline"),
            Some("ünï"),
        ] {
            let id = assign(bad);
            assert_ne!(Some(id.as_str()), bad);
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(is_sane(&id));
        }
        assert_ne!(assign(None), assign(None), "fresh every time");
    }
}
