//! Prompt ids (random and canonical UUIDs), the order of node ids, and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as ComfyUI's timestamps.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random version-4 UUID in canonical form.
pub(crate) fn uuid4() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `s` is what Python's `str(uuid.UUID(s))` gives back unchanged: 8-4-4-4-12
/// lowercase hex digits (any version).
pub fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// Orders node ids as numbers where they are numbers ("2" before "10"), then as text.
pub(crate) fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids() {
        assert!(is_canonical_uuid("a2910fc5-e591-4668-a196-997a8c2acedb"));
        assert!(is_canonical_uuid(&uuid4()));
        assert!(!is_canonical_uuid("A2910FC5-E591-4668-A196-997A8C2ACEDB"));
        assert!(!is_canonical_uuid("a2910fc5e5914668a196997a8c2acedb"));
        assert!(!is_canonical_uuid("{a2910fc5-e591-4668-a196-997a8c2acedb}"));
        assert!(!is_canonical_uuid("a2910fc5-e591-4668-a196-997a8c2acedg"));
        assert!(!is_canonical_uuid("not-a-uuid"));
    }

    #[test]
    fn node_ids_sort_as_numbers() {
        let mut ids = vec!["10", "2", "x", "1"];
        ids.sort_by(|a, b| id_order(a, b));
        assert_eq!(ids, ["1", "2", "10", "x"]);
    }
}
