//! Identifiers that cross a boundary. Each is built by `parse` (from untrusted text)
//! or `generate` (from a clock reading and random bytes the caller supplies), so a
//! value of these types is always well formed.

use serde::{Deserialize, Serialize};

/// Crockford base32, lowercase: unambiguous (no i, l, o, u), URL-, header- and
/// filename-safe.
pub(crate) const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Encodes the low `chars * 5` bits of `bytes` (big-endian) as base32, most significant
/// first. The one base32 encoder of the crate: ids, tokens and webhook message ids.
pub(crate) fn base32(bytes: &[u8], chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    let total_bits = bytes.len() * 8;
    for i in 0..chars {
        // Character i covers bits [start, start + 5) counted from the right end.
        let shift = (chars - 1 - i) * 5;
        let mut v = 0u8;
        for b in 0..5 {
            let bit = shift + b;
            if bit < total_bits {
                let byte = bytes[bytes.len() - 1 - bit / 8];
                v |= ((byte >> (bit % 8)) & 1) << b;
            }
        }
        out.push(ALPHABET[v as usize] as char);
    }
    out
}

fn is_base32(s: &str) -> bool {
    s.bytes().all(|b| ALPHABET.contains(&b))
}

/// A job: `job_` + 26 base32 chars (48-bit millisecond time + 80 random bits, as in
/// ULID), so ids sort by submission time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    const PREFIX: &'static str = "job_";
    const CHARS: usize = 26;

    pub fn generate(unix_ms: u64, random: [u8; 10]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&random);
        Self(format!("{}{}", Self::PREFIX, base32(&bytes, Self::CHARS)))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix(Self::PREFIX)?;
        (body.len() == Self::CHARS && is_base32(body)).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("not a job id: {s}"))
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account: 16 base32 chars (80 random bits). Shown as `acct_…`; embedded bare in
/// API keys so a key leads straight to its account's Durable Object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    const PREFIX: &'static str = "acct_";
    pub(crate) const CHARS: usize = 16;

    pub fn generate(random: [u8; 10]) -> Self {
        Self(format!("{}{}", Self::PREFIX, base32(&random, Self::CHARS)))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix(Self::PREFIX)?;
        Self::from_bare(body)
    }

    pub(crate) fn from_bare(body: &str) -> Option<Self> {
        (body.len() == Self::CHARS && is_base32(body))
            .then(|| Self(format!("{}{body}", Self::PREFIX)))
    }

    pub(crate) fn bare(&self) -> &str {
        &self.0[Self::PREFIX.len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("not an account id: {s}"))
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> String {
        id.0
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Random base32 text for secrets and short ids: `chars` characters from `random`.
pub fn random_token(random: &[u8], chars: usize) -> String {
    assert!(random.len() * 8 >= chars * 5, "not enough random bits");
    base32(random, chars)
}

/// The name of a stored file (an output or an upload), as used in URLs and in
/// `input_files`: `[a-z0-9_-]+` then `.` and an extension, at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Filename(String);

/// Long enough for `job_<26>-<n>.<ext>` and upload names, short enough to bound keys.
pub const FILENAME_LEN_MAX: usize = 128;

impl Filename {
    pub fn parse(s: &str) -> Option<Self> {
        let (stem, ext) = s.rsplit_once('.')?;
        let stem_ok = !stem.is_empty()
            && stem
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        let ext_ok = (1..=5).contains(&ext.len())
            && ext
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        (s.len() <= FILENAME_LEN_MAX && stem_ok && ext_ok).then(|| Self(s.to_owned()))
    }

    /// The `index`-th output of a job: `job_…-0.png`.
    pub fn output(job: &JobId, index: usize, ext: &str) -> Self {
        Self(format!("{job}-{index}.{ext}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn extension(&self) -> &str {
        self.0.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
    }

    /// The MIME type served for this file, from its extension.
    pub fn content_type(&self) -> &'static str {
        match self.extension() {
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            "gif" => "image/gif",
            "mp4" => "video/mp4",
            _ => "application/octet-stream",
        }
    }
}

impl TryFrom<String> for Filename {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("not a valid filename: {s}"))
    }
}

impl From<Filename> for String {
    fn from(f: Filename) -> String {
        f.0
    }
}

impl std::fmt::Display for Filename {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_sort_by_time_and_round_trip() {
        let a = JobId::generate(1_700_000_000_000, [0xff; 10]);
        let b = JobId::generate(1_700_000_000_001, [0x00; 10]);
        assert!(a < b);
        assert_eq!(a.as_str().len(), 4 + 26);
        assert_eq!(JobId::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "job_",
            "job_ABC",
            "jo_0000000000000000000000000",
            "job_0000000000000000000000000i",
        ] {
            assert_eq!(JobId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn account_ids_round_trip() {
        let a = AccountId::generate([7; 10]);
        assert_eq!(AccountId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(AccountId::from_bare(a.bare()), Some(a));
    }

    #[test]
    fn filenames() {
        let job = JobId::generate(1, [1; 10]);
        let f = Filename::output(&job, 0, "png");
        assert_eq!(Filename::parse(f.as_str()), Some(f.clone()));
        assert_eq!(f.content_type(), "image/png");
        for bad in [
            "",
            "a",
            ".png",
            "../x.png",
            "a/b.png",
            "A.png",
            "a.PNG",
            "a.toolong",
            "a b.png",
        ] {
            assert_eq!(Filename::parse(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Ids and filenames in paths: any text parses to itself or to nothing.
        #[test]
        fn any_path_segment_is_an_id_of_itself_or_none(s in prop_oneof![
            any::<String>(),
            "(job_|acct_)[0-9a-z]{0,30}",
            "[a-z0-9_-]{0,130}\\.[a-z0-9]{0,6}",
        ]) {
            if let Some(id) = JobId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
            if let Some(id) = AccountId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
            if let Some(name) = Filename::parse(&s) {
                prop_assert_eq!(name.as_str(), s.as_str());
                prop_assert!(s.len() <= FILENAME_LEN_MAX);
                prop_assert!(!name.content_type().is_empty());
            }
        }
    }
}
