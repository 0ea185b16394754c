//! The Workers clock and randomness: the only places the edge reads either.

/// Wall-clock time in Unix milliseconds (the Workers clock advances on I/O).
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Cryptographically secure random bytes from the runtime's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the Workers runtime always provides crypto.getRandomValues");
    buf
}

/// A short random token (16 base32 chars), for ids that need no structure.
pub fn ids_token() -> String {
    kiln_shared::ids::random_token(&random_bytes::<10>(), 16)
}
