//! The read cache's entries. The key-value store holds a fixed number of
//! slots (so the cache is bounded whatever is read) and one generation value
//! that every committed write replaces. An entry is used only when its
//! generation is the current one, so a late fill or an entry from before a
//! write is never served.

use serde::{Deserialize, Serialize};

/// Slots in the store: the most entries the cache ever holds.
pub const SLOTS: u64 = 1024;

/// The key of the generation value.
pub const GENERATION_KEY: &str = "nexa:items:generation";

/// The store key of the slot a request maps to.
pub fn slot_key(request: &str) -> String {
    // FNV-1a: stable across processes and builds (unlike std's hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in request.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("nexa:items:slot:{}", hash % SLOTS)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The generation the body was read under.
    pub generation: String,
    /// The request it answers (slots are shared by hash).
    pub request: String,
    pub body: String,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The cached body, when `bytes` holds an entry for `request` in `generation`.
    pub fn hit(bytes: &[u8], generation: &str, request: &str) -> Option<String> {
        let entry: Entry = serde_json::from_slice(bytes).ok()?;
        (entry.generation == generation && entry.request == request).then_some(entry.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hit_only_their_request_and_generation() {
        let entry = Entry {
            generation: "g1".into(),
            request: "item:1".into(),
            body: "{}".into(),
        };
        let bytes = entry.encode();
        assert_eq!(Entry::hit(&bytes, "g1", "item:1").as_deref(), Some("{}"));
        assert_eq!(
            Entry::hit(&bytes, "g2", "item:1"),
            None,
            "written before a write"
        );
        assert_eq!(
            Entry::hit(&bytes, "g1", "item:2"),
            None,
            "another request in the slot"
        );
        assert_eq!(Entry::hit(b"garbage", "g1", "item:1"), None);
    }

    #[test]
    fn slots_are_bounded_and_stable() {
        let slots: std::collections::HashSet<String> = (0..10_000)
            .map(|i| slot_key(&format!("item:{i}")))
            .collect();
        assert!(slots.len() as u64 <= SLOTS);
        assert_eq!(slot_key("item:1"), slot_key("item:1"));
    }
}
