//! Query parameters the edge reads: `async_mode` on the generation endpoints and the
//! usage page (`limit`, `cursor`). Any string in, a value or a named 400 out.

use crate::error::{ApiError, ErrorCode};

/// `?async_mode=`: `true`/`1` or `false`/`0`.
pub fn async_mode(value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid_param(
            "async_mode",
            ErrorCode::InvalidValue,
            "`async_mode` must be true or false.",
        )),
    }
}

/// A page of a list by `limit` (1–[`Page::LIMIT_MAX`], default [`Page::LIMIT_DEFAULT`])
/// and `offset` (0–[`Page::OFFSET_MAX`]), as `GET /v1/uploads/mine` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Page {
    pub const LIMIT_MAX: u32 = 100;
    pub const LIMIT_DEFAULT: u32 = 20;
    pub const OFFSET_MAX: u32 = 100_000;

    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, ApiError> {
        let number = |name: &str, v: Option<&str>, min: u32, max: u32, default: u32| match v {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        name,
                        ErrorCode::OutOfRange,
                        format!("`{name}` must be {min}–{max}."),
                    )
                }),
        };
        Ok(Self {
            limit: number("limit", limit, 1, Self::LIMIT_MAX, Self::LIMIT_DEFAULT)?,
            offset: number("offset", offset, 0, Self::OFFSET_MAX, 0)?,
        })
    }
}

/// The most usage rows one page holds.
pub const USAGE_PAGE_MAX: u32 = 100;
pub const USAGE_PAGE_DEFAULT: u32 = 50;
const CURSOR_PREFIX: &str = "u_";
/// The most digits a cursor has: every sequence number below 10^18 fits an `i64`.
const CURSOR_DIGITS_MAX: usize = 18;
/// What [`UsagePage::parse`] takes as a cursor, as a pattern (the OpenAPI document's).
pub const CURSOR_PATTERN: &str = "^(u_[1-9][0-9]{0,17})?$";

/// One page of `GET /v1/usage`: `limit` rows older than the cursor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsagePage {
    pub limit: u32,
    /// Rows with a ledger sequence number below this one; `None` from the newest.
    pub before_seq: Option<i64>,
}

impl UsagePage {
    /// `limit` is 1–[`USAGE_PAGE_MAX`]; `cursor` is empty or a `next_cursor` we issued:
    /// `u_` and a positive sequence number without leading zeros, at most 18 digits
    /// ([`CURSOR_PATTERN`]).
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => USAGE_PAGE_DEFAULT,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=USAGE_PAGE_MAX).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        "limit",
                        ErrorCode::OutOfRange,
                        format!("`limit` must be 1–{USAGE_PAGE_MAX}."),
                    )
                })?,
        };
        let before_seq = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                c.strip_prefix(CURSOR_PREFIX)
                    .filter(|n| {
                        (1..=CURSOR_DIGITS_MAX).contains(&n.len())
                            && !n.starts_with('0')
                            && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            "cursor",
                            ErrorCode::InvalidValue,
                            "`cursor` is not one we issued.",
                        )
                    })?,
            ),
        };
        Ok(Self { limit, before_seq })
    }

    /// The `next_cursor` that continues after the row with sequence number `seq`.
    pub fn cursor_after(seq: i64) -> String {
        format!("{CURSOR_PREFIX}{seq}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usage_pages() {
        let ok = |l, c| UsagePage::parse(l, c).unwrap();
        assert_eq!(
            ok(None, None),
            UsagePage {
                limit: 50,
                before_seq: None
            }
        );
        assert_eq!(
            ok(Some("100"), Some("")),
            UsagePage {
                limit: 100,
                before_seq: None
            }
        );
        assert_eq!(
            ok(None, Some("u_999999999999999999")).before_seq,
            Some(999_999_999_999_999_999)
        );
        assert_eq!(
            ok(Some("1"), Some("u_42")),
            UsagePage {
                limit: 1,
                before_seq: Some(42)
            }
        );
        for (limit, cursor, param) in [
            (Some("0"), None, "limit"),
            (Some("101"), None, "limit"),
            (Some("-1"), None, "limit"),
            (Some("99999999999999999999"), None, "limit"),
            (Some(""), None, "limit"),
            (None, Some("42"), "cursor"),
            (None, Some("u_"), "cursor"),
            (None, Some("u_-5"), "cursor"),
            (None, Some("u_+5"), "cursor"),
            (None, Some("u_0"), "cursor"),
            (None, Some("u_99999999999999999999"), "cursor"),
            (None, Some("u_1000000000000000000"), "cursor"),
            (None, Some("u_007"), "cursor"),
            (None, Some(" u_7"), "cursor"),
            (None, Some("U_7"), "cursor"),
        ] {
            let e = UsagePage::parse(limit, cursor).unwrap_err();
            assert_eq!(
                (e.status(), e.param()),
                (400, Some(param)),
                "{limit:?} {cursor:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_usage_query_is_a_bounded_page_or_a_named_400(
            limit in proptest::option::of(prop_oneof![any::<String>(), "-?[0-9]{1,22}"]),
            cursor in proptest::option::of(prop_oneof![any::<String>(), "u_[-+]?[0-9]{0,22}"]),
        ) {
            match UsagePage::parse(limit.as_deref(), cursor.as_deref()) {
                Ok(p) => {
                    prop_assert!((1..=USAGE_PAGE_MAX).contains(&p.limit));
                    prop_assert!(p.before_seq.is_none_or(|s| s > 0));
                    if let Some(s) = p.before_seq {
                        let issued = UsagePage::cursor_after(s);
                        let again = UsagePage::parse(None, Some(&issued)).unwrap();
                        prop_assert_eq!(again.before_seq, Some(s));
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e.status(), 400);
                    prop_assert!(matches!(e.param(), Some("limit" | "cursor")));
                }
            }
        }

        #[test]
        fn any_page_is_bounded_or_a_named_400(
            limit in proptest::option::of(prop_oneof![any::<String>(), "-?[0-9]{1,22}"]),
            offset in proptest::option::of(prop_oneof![any::<String>(), "-?[0-9]{1,22}"]),
        ) {
            match Page::parse(limit.as_deref(), offset.as_deref()) {
                Ok(p) => {
                    prop_assert!((1..=Page::LIMIT_MAX).contains(&p.limit));
                    prop_assert!(p.offset <= Page::OFFSET_MAX);
                }
                Err(e) => {
                    prop_assert_eq!(e.status(), 400);
                    prop_assert!(matches!(e.param(), Some("limit" | "offset")));
                }
            }
        }

        #[test]
        fn any_async_mode_is_a_boolean_or_a_named_400(v in any::<String>()) {
            match async_mode(&v) {
                Ok(b) => prop_assert_eq!(b, v == "true" || v == "1"),
                Err(e) => prop_assert_eq!(e.param(), Some("async_mode")),
            }
        }
    }
}
