//! The request headers the edge interprets itself: `Range` on `GET /outputs/{filename}`
//! (RFC 9110 §14) and `Prefer: wait=N` on the generation endpoints (RFC 7240). Both
//! take any string a client can send and never panic: every number is parsed with
//! overflow in mind, and every answer is a value: a `Range` it cannot use means the
//! whole file, and a `Prefer` it cannot honour is ignored.

use crate::error::ApiError;

/// What to serve for a `Range` header against a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// 200 with the whole file: no `Range`, another unit, several ranges, or a header
    /// that does not parse (RFC 9110 lets a server ignore those).
    Whole,
    /// 206 with bytes `start..=end`; always `start <= end < size`.
    Part { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */{size}`: the one range asked for starts at or
    /// past the end, is an empty suffix, or ends before it starts.
    Unsatisfiable,
}

impl ByteRange {
    /// Reads `header` (`bytes=0-99`, `bytes=100-`, `bytes=-500`) for a file of `size`
    /// bytes. A last position past the end is clamped to the last byte, as RFC 9110
    /// says; numbers too large for 64 bits count as "past any end".
    pub fn parse(header: &str, size: u64) -> ByteRange {
        let header = header.trim();
        let Some(spec) = header
            .get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .and_then(|_| header.get(6..))
        else {
            return ByteRange::Whole;
        };
        if spec.contains(',') {
            return ByteRange::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return ByteRange::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let (first, last) = match (position(first), position(last)) {
            (Some(f), Some(l)) => (f, l),
            _ => return ByteRange::Whole,
        };
        match (first, last) {
            (None, None) => ByteRange::Whole,
            // `bytes=-N`: the last N bytes.
            (None, Some(suffix)) => {
                if suffix == 0 || size == 0 {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Part {
                        start: size - suffix.min(size),
                        end: size - 1,
                    }
                }
            }
            (Some(start), last) => {
                if last.is_some_and(|l| l < start) || start >= size {
                    return ByteRange::Unsatisfiable;
                }
                let end = last.map_or(size - 1, |l| l.min(size - 1));
                ByteRange::Part { start, end }
            }
        }
    }

    /// The number of bytes served, given the file's `size`.
    pub fn len(self, size: u64) -> u64 {
        match self {
            ByteRange::Whole => size,
            // `end < size <= u64::MAX`, so `end - start + 1` cannot overflow.
            ByteRange::Part { start, end } => end - start + 1,
            ByteRange::Unsatisfiable => 0,
        }
    }

    pub fn is_empty(self, size: u64) -> bool {
        self.len(size) == 0
    }
}

/// One side of a byte range: `Some(None)` when empty, `Some(Some(n))` for digits (a
/// value past `u64::MAX` saturates: it is past the end of any file), `None` otherwise.
fn position(s: &str) -> Option<Option<u64>> {
    if s.is_empty() {
        return Some(None);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Some(s.parse::<u64>().unwrap_or(u64::MAX)))
}

/// The longest `Prefer: wait=N` is honoured for: the sync window. A longer wait counts
/// as this long.
pub const PREFER_WAIT_SECS_MAX: u64 = 90;

/// Reads `Prefer` for `wait=N` (RFC 7240: comma-separated preferences, names
/// case-insensitive, optional whitespace around `=`, optional quotes, `;` parameters;
/// only the first `wait` counts). `Some(N)` for a whole number of seconds, at most
/// [`PREFER_WAIT_SECS_MAX`] (more counts as that: the client is willing to wait longer
/// than Kiln holds a request open); `Some(0)` means "do not wait".
///
/// Never an error: RFC 7240 §2 has a server ignore a preference it does not recognise
/// or cannot comply with "instead of signaling an error", so a `wait` whose value is not
/// a whole number (`wait=soon`, `wait=-1`, `wait`) is ignored like any other
/// preference, and the request runs as if it had none.
pub fn prefer_wait(header: &str) -> Option<u64> {
    let wait = header.split(',').find_map(|preference| {
        let head = preference.split(';').next().unwrap_or_default();
        let (name, value) = match head.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (head.trim(), None),
        };
        name.eq_ignore_ascii_case("wait")
            .then(|| value.unwrap_or_default())
    })?;
    let value = wait
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(wait);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only too many of them fails to parse, and that is past any limit.
    Some(
        value
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .min(PREFER_WAIT_SECS_MAX),
    )
}

/// Checks the `Content-Type` of a JSON request body. Accepted: none at all, JSON
/// (`application/json`, `application/*+json`), and the two types tools send for a body
/// typed by hand: `text/plain` (raw bodies in no-code tools) and
/// `application/x-www-form-urlencoded` (`curl -d` without `-H`). The body must still be
/// JSON. Anything else — a multipart form, an image, XML — is a 415 that names what was
/// sent.
pub fn check_json_content_type(header: Option<&str>) -> Result<(), ApiError> {
    let Some(header) = header else {
        return Ok(());
    };
    let essence = header.split(';').next().unwrap_or_default().trim();
    let lower = essence.to_ascii_lowercase();
    let json = lower == "application/json"
        || (lower.starts_with("application/") && lower.ends_with("+json"));
    let typed_by_hand = matches!(
        lower.as_str(),
        "" | "text/plain" | "application/x-www-form-urlencoded"
    );
    if json || typed_by_hand {
        return Ok(());
    }
    let shown: String = essence.chars().take(80).collect();
    Err(ApiError::unsupported_media(format!(
        "This endpoint reads a JSON body; send it with `Content-Type: application/json` (got {shown:?})."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use ByteRange::*;
        let size = 1000;
        let cases: &[(&str, ByteRange)] = &[
            ("bytes=0-99", Part { start: 0, end: 99 }),
            (
                "bytes=900-",
                Part {
                    start: 900,
                    end: 999,
                },
            ),
            (
                "bytes=-100",
                Part {
                    start: 900,
                    end: 999,
                },
            ),
            ("bytes=-5000", Part { start: 0, end: 999 }),
            ("BYTES=1-1", Part { start: 1, end: 1 }),
            (" bytes= 2 - 3 ", Part { start: 2, end: 3 }),
            ("bytes=0-18446744073709551615", Part { start: 0, end: 999 }),
            (
                "bytes=0-99999999999999999999999",
                Part { start: 0, end: 999 },
            ),
            ("bytes=5-2", Unsatisfiable),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-1001", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=-", Whole),
            ("bytes=0-1,5-6", Whole),
            ("items=0-1", Whole),
            ("bytes=a-b", Whole),
            ("bytes=-1-2", Whole),
            ("bytes=+1-2", Whole),
            ("bytes=0x10-", Whole),
            ("bytes", Whole),
            ("", Whole),
            ("bytés=0-1", Whole),
        ];
        for (header, want) in cases {
            assert_eq!(ByteRange::parse(header, size), *want, "{header:?}");
        }
        assert_eq!(ByteRange::parse("bytes=-1", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=0-0", 1).len(1), 1);
    }

    #[test]
    fn prefer_wait_reads_rfc_7240() {
        let cases: &[(&str, Option<u64>)] = &[
            ("wait=10", Some(10)),
            ("respond-async, wait=5", Some(5)),
            ("WAIT = 90", Some(90)),
            ("wait=\"7\"", Some(7)),
            ("wait=3;foo=bar", Some(3)),
            ("wait=4, wait=1000", Some(4)),
            // Longer than Kiln waits: the most it waits.
            ("wait=91", Some(90)),
            ("wait=3600", Some(90)),
            ("wait=18446744073709551616", Some(90)),
            // Do not wait.
            ("wait=0", Some(0)),
            // Not a wait, or a wait that is not a whole number: ignored (RFC 7240 §2).
            ("respond-async", None),
            ("return=minimal", None),
            ("", None),
            (";", None),
            ("waiting=5", None),
            ("wait=-1", None),
            ("wait=", None),
            ("wait", None),
            ("wait=1.5", None),
            ("wait=soon", None),
            ("wait=\"\"", None),
            // Only the first `wait` counts, even when it is ignored.
            ("wait=x, wait=5", None),
        ];
        for (header, want) in cases {
            assert_eq!(prefer_wait(header), *want, "{header:?}");
        }
    }

    #[test]
    fn json_bodies_and_their_content_types() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some(""),
        ] {
            assert_eq!(check_json_content_type(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "multipart/form-data; boundary=x",
            "image/png",
            "application/xml",
            "text/html",
            "json",
        ] {
            let e = check_json_content_type(Some(bad)).unwrap_err();
            assert_eq!(
                (e.status(), e.code().as_str()),
                (415, "unsupported_media_type"),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_content_type_is_accepted_or_a_415(header in proptest::option::of(any::<String>())) {
            if let Err(e) = check_json_content_type(header.as_deref()) {
                prop_assert_eq!(e.status(), 415);
                prop_assert!(e.message().chars().count() < 200);
            }
        }

        #[test]
        fn any_range_header_is_whole_a_part_within_the_file_or_416(
            header in prop_oneof![
                any::<String>(),
                "[bB][yY][tT][eE][sS]= ?[0-9]{0,22} ?- ?[0-9]{0,22}",
                (any::<u64>(), any::<u64>()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
                any::<u64>().prop_map(|n| format!("bytes=-{n}")),
                any::<u64>().prop_map(|n| format!("bytes={n}-")),
            ],
            size in prop_oneof![Just(0u64), Just(1), 0..10_000u64, Just(u64::MAX)],
        ) {
            let r = ByteRange::parse(&header, size);
            match r {
                ByteRange::Whole => prop_assert_eq!(r.len(size), size),
                ByteRange::Part { start, end } => {
                    prop_assert!(start <= end && end < size);
                    prop_assert_eq!(r.len(size), end - start + 1);
                }
                ByteRange::Unsatisfiable => prop_assert_eq!(r.len(size), 0),
            }
        }

        #[test]
        fn a_satisfiable_closed_range_is_served_exactly(
            start in 0..5000u64, extra in 0..5000u64, size in 1..10_000u64,
        ) {
            let end = start + extra;
            let r = ByteRange::parse(&format!("bytes={start}-{end}"), size);
            if start < size {
                prop_assert_eq!(r, ByteRange::Part { start, end: end.min(size - 1) });
            } else {
                prop_assert_eq!(r, ByteRange::Unsatisfiable);
            }
        }

        #[test]
        fn any_prefer_header_is_a_wait_within_the_limit_or_nothing(
            header in prop_oneof![
                any::<String>(),
                "(respond-async, )?[wW][aA][iI][tT] ?= ?\"?-?[0-9]{0,25}\"?(;[a-z]+)?",
            ],
        ) {
            if let Some(n) = prefer_wait(&header) {
                prop_assert!(n <= PREFER_WAIT_SECS_MAX);
            }
        }
    }
}
