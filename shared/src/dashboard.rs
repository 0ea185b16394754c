//! The web dashboard's API rules: the cookie session (`POST /v1/session`), the CSRF
//! check on cookie-authenticated writes, and Stripe Checkout sessions
//! (`POST /v1/billing/checkout`). Pure: the caller passes random bytes and the clock.
//!
//! A session token is `ks_<account><secret>`: like an API key it names its account, so
//! the edge checks it with one call to that account's Durable Object, which stores only
//! its hash. The token lives in an `HttpOnly; Secure; SameSite=Strict` cookie, so page
//! scripts never see it and other sites' pages never send it.

use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::fields::Fields;
use crate::ids::{random_token, AccountId};
use crate::keys::{ApiKey, KeyHash};
use crate::stripe::Tier;

/// The cookie that carries the session token.
pub const COOKIE_NAME: &str = "kiln_session";
/// A session lasts a week from sign-in, then the user signs in again.
pub const SESSION_TTL_SECS: u64 = 7 * 24 * 3600;
/// 32 base32 chars = 160 bits, as for API keys.
const SECRET_CHARS: usize = 32;
const PREFIX: &str = "ks_";

/// A syntactically valid session token. Whether it is live is for its Account DO to say.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    account: AccountId,
    text: String,
}

impl SessionToken {
    pub fn generate(account: &AccountId, random: [u8; 20]) -> Self {
        let text = format!(
            "{PREFIX}{}{}",
            account.bare(),
            random_token(&random, SECRET_CHARS)
        );
        Self {
            account: account.clone(),
            text,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(PREFIX)?;
        if rest.len() != AccountId::CHARS + SECRET_CHARS || !rest.is_ascii() {
            return None;
        }
        let (acct, secret) = rest.split_at(AccountId::CHARS);
        let account = AccountId::from_bare(acct)?;
        secret
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            .then(|| Self {
                account,
                text: s.to_owned(),
            })
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The cookie value. Never logged, never in a response body.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    /// The stored form: hex SHA-256 of the token, compared like a key's hash.
    pub fn hash(&self) -> KeyHash {
        KeyHash::from_hex(hex::encode(Sha256::digest(self.text.as_bytes())))
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionToken({})", self.account)
    }
}

/// The session token in a `Cookie` header, if there is one (the first `kiln_session`).
pub fn token_from_cookies(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name.trim() == COOKIE_NAME).then(|| value.trim().trim_matches('"'))
    })
}

/// `Set-Cookie` for a new session. `Secure` holds on `http://127.0.0.1` too: browsers
/// treat loopback as a secure context.
pub fn set_cookie(token: &SessionToken) -> String {
    format!(
        "{COOKIE_NAME}={}; Max-Age={SESSION_TTL_SECS}; Path=/; HttpOnly; Secure; SameSite=Strict",
        token.reveal()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// How a cookie-authenticated request that changes state proves it came from Kiln's own
/// pages: its `Origin` is the edge's own. Browsers always send `Origin` on a
/// cross-origin request and on every same-origin POST and DELETE made by `fetch`, so
/// a missing `Origin` is refused too. (`SameSite=Strict` already keeps other sites'
/// requests cookie-less; this is the second lock.)
pub fn same_origin(origin_header: Option<&str>, own_origin: &str) -> bool {
    origin_header.is_some_and(|o| o.trim().eq_ignore_ascii_case(own_origin))
}

/// The 403 for a cookie-authenticated write from elsewhere.
pub fn cross_origin() -> ApiError {
    ApiError::forbidden(
        ErrorCode::CrossOrigin,
        "A request authenticated by the session cookie must come from this site (its Origin header must be this API's origin). Use an API key from other origins.",
    )
}

/// The 401 for a session cookie that is unknown, expired, signed out, or whose key was
/// revoked.
pub fn invalid_session() -> ApiError {
    ApiError::new(
        401,
        ErrorCode::InvalidSession,
        "The session has expired or was signed out; sign in again.",
    )
}

/// `POST /v1/session`: how the user signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// A new trial account for this (normalised) email, as `POST /v1/accounts`.
    Email(String),
    /// An existing key; the session acts as that key until it expires or is revoked.
    ApiKey(ApiKey),
}

pub fn parse_sign_in(body: &[u8]) -> Result<SignIn, ApiError> {
    let mut f = Fields::from_body(body)?;
    let email = f.string("email")?;
    let key = f.string("api_key")?;
    f.finish()?;
    match (email, key) {
        (Some(e), None) => Ok(SignIn::Email(crate::accounts::normalize_email(&e)?)),
        (None, Some(k)) => ApiKey::parse(k.trim())
            .map(SignIn::ApiKey)
            .ok_or_else(|| ApiError::invalid_key().with_param("api_key")),
        (Some(_), Some(_)) => Err(ApiError::invalid_param(
            "api_key",
            ErrorCode::InvalidValue,
            "Send either `email` (sign up) or `api_key` (sign in), not both.",
        )),
        (None, None) => Err(ApiError::invalid_param(
            "email",
            ErrorCode::MissingParameter,
            "Send `email` to sign up or `api_key` to sign in.",
        )),
    }
}

/// `POST /v1/billing/checkout`: the tier to buy.
pub fn parse_checkout(body: &[u8]) -> Result<Tier, ApiError> {
    let mut f = Fields::from_body(body)?;
    let tier = f.required_string("tier")?;
    f.finish()?;
    Tier::ALL
        .into_iter()
        .find(|t| t.as_str() == tier)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "tier",
                ErrorCode::InvalidValue,
                "`tier` must be one of starter ($5), pro ($20), max ($50).",
            )
        })
}

/// The form Stripe's `POST /v1/checkout/sessions` takes for a tier bought by `account`:
/// one USD line item at the tier's price, and the account as `client_reference_id` and
/// `metadata.account_id`, which is what the `checkout.session.completed` webhook reads
/// ([`crate::stripe::parse_event`]).
pub fn checkout_form(
    tier: Tier,
    account: &AccountId,
    success_url: &str,
    cancel_url: &str,
) -> Vec<(&'static str, String)> {
    let cents = tier.amount().micros() / 10_000;
    vec![
        ("mode", "payment".into()),
        ("success_url", success_url.into()),
        ("cancel_url", cancel_url.into()),
        ("client_reference_id", account.as_str().into()),
        ("metadata[account_id]", account.as_str().into()),
        ("metadata[tier]", tier.as_str().into()),
        ("line_items[0][quantity]", "1".into()),
        ("line_items[0][price_data][currency]", "usd".into()),
        ("line_items[0][price_data][unit_amount]", cents.to_string()),
        (
            "line_items[0][price_data][product_data][name]",
            format!("Kiln credits: {} (${})", tier.as_str(), cents / 100),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::generate([7; 10])
    }

    #[test]
    fn a_token_parses_back_and_names_its_account() {
        let t = SessionToken::generate(&account(), [3; 20]);
        let back = SessionToken::parse(t.reveal()).expect("parses");
        assert_eq!(back.account(), &account());
        assert!(back.hash().matches(&t.hash()));
        for bad in ["", "ks_", "sk-trial-x", &t.reveal()[..t.reveal().len() - 1]] {
            assert!(SessionToken::parse(bad).is_none(), "{bad}");
        }
        let upper = t.reveal().to_uppercase().replacen("KS_", "ks_", 1);
        assert!(SessionToken::parse(&upper).is_none());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_strictly() {
        let t = SessionToken::generate(&account(), [3; 20]);
        let header = format!("a=1; kiln_session={}; b=2", t.reveal());
        assert_eq!(token_from_cookies(Some(&header)), Some(t.reveal()));
        assert_eq!(token_from_cookies(Some("a=1")), None);
        assert_eq!(token_from_cookies(None), None);
        let set = set_cookie(&t);
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn only_the_own_origin_passes_the_csrf_check() {
        let own = "http://127.0.0.1:8787";
        assert!(same_origin(Some("http://127.0.0.1:8787"), own));
        assert!(!same_origin(Some("https://evil.example"), own));
        assert!(!same_origin(Some("null"), own));
        assert!(!same_origin(None, own));
    }

    #[test]
    fn sign_in_takes_an_email_or_a_key_not_both() {
        assert_eq!(
            parse_sign_in(br#"{"email": "A.B+x@Example.com"}"#).unwrap(),
            SignIn::Email("a.b@example.com".into())
        );
        let key = ApiKey::generate(crate::keys::KeyKind::Trial, &account(), [1; 20]);
        let body = serde_json::json!({"api_key": key.reveal()}).to_string();
        assert_eq!(
            parse_sign_in(body.as_bytes()).unwrap(),
            SignIn::ApiKey(key.clone())
        );
        let e = parse_sign_in(br#"{"api_key": "sk-nope"}"#).unwrap_err();
        assert_eq!((e.status(), e.code()), (401, ErrorCode::InvalidApiKey));
        for bad in [
            &br#"{}"#[..],
            br#"{"email": "x@y.z", "api_key": "k"}"#,
            br#"{"pw": 1}"#,
            b"[",
        ] {
            assert_eq!(parse_sign_in(bad).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn checkout_names_the_account_the_webhook_credits() {
        assert_eq!(parse_checkout(br#"{"tier": "pro"}"#).unwrap(), Tier::Pro);
        assert_eq!(
            parse_checkout(br#"{"tier": "gold"}"#).unwrap_err().code(),
            ErrorCode::InvalidValue
        );
        let form = checkout_form(Tier::Pro, &account(), "https://k/ok", "https://k/no");
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("client_reference_id"), Some(account().as_str()));
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("2000"));
        assert_eq!(get("metadata[tier]"), Some("pro"));
    }

    mod properties {
        use super::*;
        use crate::proptest_json::{assert_named_400, object_body};
        use proptest::prelude::*;

        proptest! {
            /// Any `Cookie` header gives a token candidate or nothing, and a candidate
            /// is a session only with exactly a session token's shape.
            #[test]
            fn any_cookie_header_is_a_session_or_nothing(header in prop_oneof![
                any::<String>(),
                "([a-z]{1,5}=[a-z0-9]{0,5}; ){0,3}kiln_session= ?\"?ks_[a-z0-9]{0,60}\"?(; x=1)?",
            ]) {
                if let Some(value) = token_from_cookies(Some(&header)) {
                    prop_assert!(header.contains(value));
                    if let Some(t) = SessionToken::parse(value) {
                        prop_assert_eq!(t.reveal(), value);
                    }
                }
            }

            #[test]
            fn generated_tokens_come_back_from_the_cookie(random in any::<[u8; 20]>(), acct in any::<[u8; 10]>()) {
                let account = AccountId::generate(acct);
                let t = SessionToken::generate(&account, random);
                let set = set_cookie(&t);
                let pair = set.split(';').next().unwrap();
                let header = format!("theme=dark; {pair}; lang=en");
                let back = SessionToken::parse(token_from_cookies(Some(&header)).unwrap()).unwrap();
                prop_assert_eq!(back.account(), &account);
                prop_assert!(back.hash().matches(&t.hash()));
            }

            #[test]
            fn any_sign_in_body_is_valid_or_named(body in object_body(&["email", "api_key"])) {
                match parse_sign_in(&body) {
                    Ok(_) => {}
                    Err(e) if e.status() == 401 => prop_assert_eq!(e.param(), Some("api_key")),
                    Err(e) => assert_named_400(&e)?,
                }
            }

            #[test]
            fn any_checkout_body_is_a_tier_or_a_named_400(body in object_body(&["tier"])) {
                if let Err(e) = parse_checkout(&body) {
                    assert_named_400(&e)?;
                }
            }
        }
    }
}
