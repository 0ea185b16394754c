//! Per-key rate limiting: a token bucket that holds `limit` requests and refills at
//! `limit` per minute, so a client may burst up to the limit and then sustain it.
//! Tokens are counted in thousandths so refill stays exact in integers.

/// What a client may do by default in one minute per key.
pub const LIMIT_PER_MIN_DEFAULT: u32 = 600;
const MILLI: i64 = 1000;
const MINUTE_MS: i64 = 60_000;

/// A bucket's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub tokens_milli: i64,
    pub updated_ms: i64,
}

/// The outcome of one request, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u32,
    /// Seconds until one request is allowed (0 when allowed now).
    pub retry_after_secs: u32,
}

impl Bucket {
    pub fn full(limit: u32, now_ms: i64) -> Self {
        Self {
            tokens_milli: i64::from(limit) * MILLI,
            updated_ms: now_ms,
        }
    }

    /// Refills for the time elapsed, then takes one token if there is one.
    pub fn take(self, limit: u32, now_ms: i64) -> (Bucket, Decision) {
        let capacity = i64::from(limit.max(1)) * MILLI;
        let elapsed = (now_ms - self.updated_ms).max(0);
        // tokens/ms = limit/60000; in milli-tokens: limit * 1000 / 60000 per ms.
        let refill = elapsed.saturating_mul(i64::from(limit.max(1))) * MILLI / MINUTE_MS;
        let mut tokens = (self.tokens_milli + refill).min(capacity);
        let allowed = tokens >= MILLI;
        if allowed {
            tokens -= MILLI;
        }
        let per_token_ms = MINUTE_MS / i64::from(limit.max(1));
        let ms_to_full = (capacity - tokens) * per_token_ms / MILLI;
        let ms_to_one = if tokens >= MILLI {
            0
        } else {
            (MILLI - tokens) * per_token_ms / MILLI
        };
        let ceil_secs = |ms: i64| ((ms + 999) / 1000) as u32;
        (
            Bucket {
                tokens_milli: tokens,
                updated_ms: now_ms,
            },
            Decision {
                allowed,
                limit,
                remaining: (tokens / MILLI) as u32,
                reset_secs: ceil_secs(ms_to_full),
                retry_after_secs: if allowed {
                    0
                } else {
                    ceil_secs(ms_to_one).max(1)
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_the_limit_then_refuses_then_refills() {
        let mut b = Bucket::full(3, 0);
        for expect_remaining in [2, 1, 0] {
            let (nb, d) = b.take(3, 0);
            assert!(d.allowed);
            assert_eq!(d.remaining, expect_remaining);
            b = nb;
        }
        let (nb, d) = b.take(3, 0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 20, "one token per 20 s at 3/min");
        let (_, d) = nb.take(3, 20_000);
        assert!(d.allowed);
    }

    #[test]
    fn never_exceeds_capacity() {
        let (_, d) = Bucket::full(5, 0).take(5, 10 * MINUTE_MS);
        assert_eq!(d.remaining, 4);
        assert_eq!(d.reset_secs, 12);
    }
}
