//! API keys: `sk-<kind>-<account><secret>`.
//!
//! The account id is part of the key so the edge reaches the one Account Durable Object
//! that can check it, in one hop and without any global index. Only a SHA-256 hash of
//! the whole key is stored; the Account DO compares hashes in constant time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;
use crate::ids::{random_token, AccountId};

/// What a key may do. The kind is visible in the key so clients and logs can tell.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Free trial credit.
    Trial,
    /// Paid account.
    Gen,
    /// Test mode: simulated engine, costs nothing.
    Test,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Trial => "sk-trial-",
            KeyKind::Gen => "sk-gen-",
            KeyKind::Test => "sk-test-",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "trial" => Some(KeyKind::Trial),
            "gen" => Some(KeyKind::Gen),
            "test" => Some(KeyKind::Test),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Trial => "trial",
            KeyKind::Gen => "gen",
            KeyKind::Test => "test",
        }
    }

    /// Test-mode keys run on the sim engine and are never charged.
    pub fn is_test(self) -> bool {
        self == KeyKind::Test
    }
}

/// 32 base32 chars = 160 bits of secret.
const SECRET_CHARS: usize = 32;

/// A syntactically valid API key. Whether it exists is for its Account DO to say.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    kind: KeyKind,
    account: AccountId,
    text: String,
}

impl ApiKey {
    pub fn generate(kind: KeyKind, account: &AccountId, random: [u8; 20]) -> Self {
        let text = format!(
            "{}{}{}",
            kind.prefix(),
            account.bare(),
            random_token(&random, SECRET_CHARS)
        );
        Self {
            kind,
            account: account.clone(),
            text,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = [KeyKind::Trial, KeyKind::Gen, KeyKind::Test]
            .into_iter()
            .find_map(|k| s.strip_prefix(k.prefix()).map(|rest| (k, rest)))?;
        if rest.len() != AccountId::CHARS + SECRET_CHARS || !rest.is_ascii() {
            return None;
        }
        let (acct, secret) = rest.split_at(AccountId::CHARS);
        let account = AccountId::from_bare(acct)?;
        ApiKey::secret_ok(secret).then(|| Self {
            kind,
            account,
            text: s.to_owned(),
        })
    }

    fn secret_ok(secret: &str) -> bool {
        random_token(&[0; 20], SECRET_CHARS).len() == secret.len()
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The full secret text: shown to the user once, at creation.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    /// What listings show: the kind prefix and the last four characters.
    pub fn display_prefix(&self) -> String {
        format!(
            "{}…{}",
            self.kind.prefix(),
            &self.text[self.text.len() - 4..]
        )
    }

    /// The stored form: hex SHA-256 of the whole key.
    pub fn hash(&self) -> KeyHash {
        KeyHash(hex::encode(Sha256::digest(self.text.as_bytes())))
    }
}

/// Never print the secret, even in debug logs.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.display_prefix())
    }
}

/// The hex SHA-256 of a key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    /// A hash computed elsewhere in this crate (session tokens are stored the same way).
    pub(crate) fn from_hex(hex: String) -> Self {
        KeyHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, so timing does not reveal how much of a hash matched.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

/// Compares two secrets (an admin token, say) in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Reads `Authorization: Bearer <key>`; `None` when absent or not a bearer token.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A per-key limit can only lower the deployment's limit; this bounds the input.
pub const LIMIT_PER_MIN_MAX: u32 = 100_000;
/// Labels are for humans scanning a list.
pub const LABEL_CHARS_MAX: usize = 64;

/// `POST /v1/keys`: the key the caller asks for. An empty body is a default key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCreate {
    pub label: String,
    /// `mode: "test"`: an `sk-test-` key.
    pub test: bool,
    pub rate_limit_per_min: Option<u32>,
}

impl KeyCreate {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut f = if body.iter().all(u8::is_ascii_whitespace) {
            Fields::from_map(Default::default())
        } else {
            Fields::from_body(body)?
        };
        let label = f.string("label")?.unwrap_or_else(|| "default".to_owned());
        if label.chars().count() > LABEL_CHARS_MAX || label.chars().any(char::is_control) {
            return Err(ApiError::invalid_param(
                "label",
                ErrorCode::InvalidValue,
                format!("`label` must be at most {LABEL_CHARS_MAX} printable characters."),
            ));
        }
        let test = match f.string("mode")?.as_deref() {
            None | Some("live") => false,
            Some("test") => true,
            Some(other) => {
                return Err(ApiError::invalid_param(
                    "mode",
                    ErrorCode::InvalidValue,
                    format!("`mode` must be \"live\" or \"test\" (got {other:?})."),
                ))
            }
        };
        let rate_limit_per_min = match f.int("rate_limit_per_min")? {
            None => None,
            Some(n) => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=LIMIT_PER_MIN_MAX).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            "rate_limit_per_min",
                            ErrorCode::OutOfRange,
                            format!(
                                "`rate_limit_per_min` must be 1–{LIMIT_PER_MIN_MAX} (got {n})."
                            ),
                        )
                    })?,
            ),
        };
        f.finish()?;
        Ok(Self {
            label,
            test,
            rate_limit_per_min,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_lead_to_their_account() {
        let acct = AccountId::generate([3; 10]);
        for kind in [KeyKind::Trial, KeyKind::Gen, KeyKind::Test] {
            let key = ApiKey::generate(kind, &acct, [9; 20]);
            assert!(key.reveal().starts_with(kind.prefix()));
            let parsed = ApiKey::parse(key.reveal()).expect("parses");
            assert_eq!(parsed.kind(), kind);
            assert_eq!(parsed.account(), &acct);
            assert!(parsed.hash().matches(&key.hash()));
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let acct = AccountId::generate([3; 10]);
        let good = ApiKey::generate(KeyKind::Gen, &acct, [1; 20])
            .reveal()
            .to_owned();
        let cases = [
            String::new(),
            "sk-gen-".into(),
            good.replace("sk-gen-", "sk-live-"),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.to_uppercase(),
            good.replace('0', "é"),
        ];
        for bad in cases {
            assert!(ApiKey::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKey::generate(KeyKind::Trial, &AccountId::generate([3; 10]), [5; 20]);
        assert!(!format!("{key:?}").contains(&key.reveal()[12..]));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("abc")), None);
        assert_eq!(bearer(None), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::proptest_json::{assert_named_400, object_body};
    use proptest::prelude::*;

    fn account() -> impl Strategy<Value = AccountId> {
        any::<[u8; 10]>().prop_map(AccountId::generate)
    }

    proptest! {
        /// `Authorization` as clients send it: any header gives a token or nothing, and
        /// a token is a key only if it has exactly a key's shape.
        #[test]
        fn any_authorization_header_is_a_key_or_refused(header in prop_oneof![
            any::<String>(),
            "(Bearer|bearer|BEARER|Basic|) {0,3}sk-(trial|gen|test|x)-[a-z0-9]{0,60} {0,2}",
        ]) {
            if let Some(token) = bearer(Some(&header)) {
                prop_assert!(header.contains(token));
                if let Some(key) = ApiKey::parse(token) {
                    prop_assert_eq!(key.reveal(), token);
                    prop_assert!(token.starts_with(key.kind().prefix()));
                    prop_assert!(token.contains(key.account().bare()));
                }
            }
        }

        #[test]
        fn generated_keys_parse_back(kind in prop::sample::select(&[KeyKind::Trial, KeyKind::Gen, KeyKind::Test][..]), account in account(), random in any::<[u8; 20]>()) {
            let key = ApiKey::generate(kind, &account, random);
            let header = format!("Bearer {}", key.reveal());
            let parsed = ApiKey::parse(bearer(Some(&header)).unwrap()).unwrap();
            prop_assert_eq!(parsed.kind(), kind);
            prop_assert_eq!(parsed.account(), &account);
            prop_assert!(parsed.hash().matches(&key.hash()));
        }

        #[test]
        fn any_key_create_body_is_valid_or_a_named_400(
            body in object_body(&["label", "mode", "rate_limit_per_min"]),
        ) {
            match KeyCreate::parse(&body) {
                Ok(k) => {
                    prop_assert!(k.label.chars().count() <= LABEL_CHARS_MAX);
                    prop_assert!(!k.label.chars().any(char::is_control));
                    prop_assert!(k.rate_limit_per_min.is_none_or(|n| (1..=LIMIT_PER_MIN_MAX).contains(&n)));
                }
                Err(e) => assert_named_400(&e)?,
            }
        }
    }
}
