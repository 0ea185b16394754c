//! The SSRF guard: [`check_destination`] refuses `replyUrl`s aimed at loopback, private,
//! link-local, metadata and other non-public addresses and names, unless the
//! [`AllowList`] (config `WEBHOOK_ALLOW_HOSTS`) names them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

/// Hosts allowed despite the SSRF rules, for local development and tests: config
/// `WEBHOOK_ALLOW_HOSTS`. Empty by default (production).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Exact hostnames, lowercase, without a trailing dot.
    hosts: Vec<String>,
    /// Networks, host bits cleared; a bare IP is a /32 or /128.
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Parses comma-separated entries, each a hostname (`localhost`, matched exactly, not
    /// its subdomains), an IP (`127.0.0.1`, `::1`, `[::1]`) or a CIDR (`10.0.0.0/8`,
    /// `fc00::/7`). Blank entries are skipped; the error names the first bad entry. IPs
    /// must be written plainly: `127.1` or `0x7f000001` would be ambiguous and are refused.
    pub fn parse(spec: &str) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "WEBHOOK_ALLOW_HOSTS entry {entry:?} is not a hostname, an IP or a CIDR \
                     (e.g. `localhost`, `127.0.0.1`, `10.0.0.0/8`, `::1`)"
                )
            };
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => {
                    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    (a, Some(p.parse::<u8>().map_err(|_| bad())?))
                }
                None => (entry, None),
            };
            let bare = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let net = match prefix {
                    Some(prefix) => IpNet::new(ip, prefix).map_err(|_| bad())?,
                    None => IpNet::from(ip),
                };
                list.nets.push(net.trunc());
            } else if prefix.is_none()
                && is_hostname(addr)
                && inet_aton(addr.trim_end_matches('.')).is_none()
            {
                list.hosts
                    .push(addr.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(bad());
            }
        }
        Ok(list)
    }

    /// Whether nothing is allowed (the production setting).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let in_net = |ip: IpAddr| self.nets.iter().any(|net| net.contains(&ip));
        // An IPv4-mapped IPv6 address is also allowed by its IPv4 entry.
        in_net(ip)
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| in_net(v4.into())))
    }
}

/// Letters, digits, `-` and `_` in non-empty dot-separated labels; one trailing dot ok.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A webhook URL that passed [`check_destination`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URL to fetch — fetch this, not the string the client sent, so that what was
    /// checked is what is fetched. WHATWG-normalised: scheme and host lowercase, numeric
    /// IPv4 forms in dotted quad, IPv6 compressed in brackets, percent-encoded host
    /// decoded, trailing dot(s) of the host removed, default port and `#fragment`
    /// dropped, an empty path made `/`.
    pub url: String,
    /// The host as checked: a lowercase ASCII (punycode) name without trailing dot, a
    /// dotted IPv4 address, or an IPv6 address without brackets as `std::net` displays it
    /// (`::ffff:8.8.8.8` for an IPv4-mapped one, where `url` shows `[::ffff:808:808]`).
    pub host: String,
    /// The port the request goes to: the explicit one or the scheme's default.
    pub port: u16,
    /// Whether `host` is an IP address rather than a name.
    pub is_ip: bool,
    /// Whether the destination would have been refused but for the [`AllowList`].
    pub allow_listed: bool,
}

/// A webhook URL that parses: what [`check_destination`] then judges.
struct Shape {
    parsed: url::Url,
    /// As [`Destination::host`] describes it.
    host: String,
    ip: Option<IpAddr>,
    port: u16,
}

/// Whether `url` is a well-formed webhook URL, whatever its destination: the first half
/// of [`check_destination`], and all a request body's `replyUrl` gets before the edge
/// knows its allow-list. The `Err` is the same sentence [`check_destination`] gives.
pub fn check_shape(url: &str) -> Result<(), String> {
    shape(url).map(|_| ())
}

fn shape(url: &str) -> Result<Shape, String> {
    let max = crate::jobs::REPLY_URL_LEN_MAX;
    if url.len() > max {
        return Err(format!("The webhook URL is longer than {max} characters."));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("The webhook URL must not contain spaces or control characters.".into());
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("The webhook URL is not a valid absolute http(s) URL ({e})."))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "The webhook URL must use http or https, not `{}`.",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("The webhook URL must not contain credentials (`user:pass@`).".into());
    }
    if parsed.port() == Some(0) {
        return Err("The webhook URL's port must be between 1 and 65535.".into());
    }
    let port = parsed
        .port_or_known_default()
        .ok_or("The webhook URL has no port.")?;
    let (host, ip) = match parsed.host() {
        None => return Err("The webhook URL has no host.".into()),
        Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err("The webhook URL has no host.".into());
            }
            match inet_aton(&name) {
                Some(v4) => (v4.to_string(), Some(IpAddr::V4(v4))),
                None => (name, None),
            }
        }
    };
    Ok(Shape {
        parsed,
        host,
        ip,
        port,
    })
}

/// Checks a client's `replyUrl` before Kiln stores it and again before each delivery; the
/// `Err` is a human sentence for a 400 (it does not name the parameter).
///
/// Rules: at most [`crate::jobs::REPLY_URL_LEN_MAX`] characters, no whitespace or control
/// characters; `http` or `https`; no userinfo (`user:pass@`); a host; a port, if given,
/// of 1–65535. The URL is parsed by the WHATWG URL standard (the `url` crate), the
/// standard browsers and the Workers runtime follow: `http://2130706433/`,
/// `http://0x7f000001/`, `http://0177.0.0.1/`, `http://127.1/` are all 127.0.0.1,
/// `%`-escapes and Unicode in names are decoded, `\` is `/`. [`Destination::url`] is the
/// canonical serialisation (dotted-quad IPv4, lowercase punycode names), which any URL
/// parser reads with the same host — so what is checked here is what gets fetched.
/// Then, unless the [`AllowList`] names the host or an allow-listed network holds its
/// address, these are refused:
///
/// - IPv4: 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, cloud
///   metadata), 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16, 198.18/15,
///   198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 (reserved, broadcast).
/// - IPv6: `::` and the rest of `::/96` (IPv4-compatible), `::1`, `::ffff:0:0/96`
///   (IPv4-mapped: the IPv4 rules apply), `64:ff9b::/96` (NAT64: the IPv4 rules apply to
///   the embedded address), `64:ff9b:1::/48`, `100::/64`, `2001::/32` (Teredo),
///   `2001:db8::/32`, `2002::/16` (6to4: the IPv4 rules apply to the embedded address),
///   `fc00::/7` (unique-local, incl. AWS metadata `fd00:ec2::254`), `fe80::/10`,
///   `fec0::/10`, `ff00::/8`.
/// - Names: single-label names (`metadata`, `intranet`: they only resolve through local
///   search domains), `localhost` and names under `localhost`, `local`, `localdomain`,
///   `internal` (incl. `metadata.google.internal`), `home.arpa`, `lan`, `home`, `corp`,
///   `intranet`; and any name that reads as an IPv4 address by `inet_aton` rules (as
///   that address — a second line behind the WHATWG parser, which already converts
///   them).
///
/// A public name that *resolves* to a private address cannot be caught here: Workers do
/// no DNS of their own. In production that is harmless — Cloudflare's `fetch` does not
/// connect to private, loopback or link-local addresses. Deliveries must not follow
/// redirects (see [`Outcome::Retry`](super::Outcome::Retry)).
pub fn check_destination(url: &str, allow: &AllowList) -> Result<Destination, String> {
    let Shape {
        mut parsed,
        host,
        ip,
        port,
    } = shape(url)?;
    let refusal = match ip {
        Some(ip) => ip_refusal(ip).map(|why| {
            format!(
                "The webhook URL's host {host} is {why}; webhooks are only delivered to public \
                 addresses."
            )
        }),
        None => name_refusal(&host).map(|why| {
            format!(
                "The webhook URL's host {host} is {why}; webhooks are only delivered to public \
                 hosts."
            )
        }),
    };
    let allowed = match ip {
        Some(ip) => allow.allows_ip(ip),
        None => allow.allows_host(&host),
    };
    if let (Some(refusal), false) = (&refusal, allowed) {
        return Err(refusal.clone());
    }
    if !matches!(parsed.host(), Some(url::Host::Ipv6(_))) {
        let current = parsed.host_str().unwrap_or_default();
        if current != host {
            parsed
                .set_host(Some(&host))
                .map_err(|e| format!("The webhook URL's host is not valid ({e})."))?;
        }
    }
    parsed.set_fragment(None);
    Ok(Destination {
        url: parsed.into(),
        host,
        port,
        is_ip: ip.is_some(),
        allow_listed: refusal.is_some(),
    })
}

/// Why an address is not a public destination, or `None` if it is one.
fn ip_refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    /// `a.b.c.d/prefix`, checked when the table is compiled.
    const fn net([a, b, c, d]: [u8; 4], prefix: u8) -> Ipv4Net {
        Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
    }
    // The broadcast address comes before 240.0.0.0/4, which holds it, for its own name.
    const NETS: [(Ipv4Net, &str); 15] = [
        (
            net([0, 0, 0, 0], 8),
            "a \"this network\" address (0.0.0.0/8)",
        ),
        (net([10, 0, 0, 0], 8), "a private address (10.0.0.0/8)"),
        (
            net([100, 64, 0, 0], 10),
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        (net([127, 0, 0, 0], 8), "a loopback address (127.0.0.0/8)"),
        (
            net([169, 254, 0, 0], 16),
            "a link-local address (169.254.0.0/16, incl. cloud metadata)",
        ),
        (
            net([172, 16, 0, 0], 12),
            "a private address (172.16.0.0/12)",
        ),
        (
            net([192, 0, 0, 0], 24),
            "an IETF protocol address (192.0.0.0/24)",
        ),
        (
            net([192, 0, 2, 0], 24),
            "a documentation address (192.0.2.0/24)",
        ),
        (
            net([192, 168, 0, 0], 16),
            "a private address (192.168.0.0/16)",
        ),
        (
            net([198, 18, 0, 0], 15),
            "a benchmarking address (198.18.0.0/15)",
        ),
        (
            net([198, 51, 100, 0], 24),
            "a documentation address (198.51.100.0/24)",
        ),
        (
            net([203, 0, 113, 0], 24),
            "a documentation address (203.0.113.0/24)",
        ),
        (net([224, 0, 0, 0], 4), "a multicast address (224.0.0.0/4)"),
        (net([255, 255, 255, 255], 32), "the broadcast address"),
        (net([240, 0, 0, 0], 4), "a reserved address (240.0.0.0/4)"),
    ];
    NETS.iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("the unspecified address (::)");
    }
    if ip.is_loopback() {
        return Some("the loopback address (::1)");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refusal(v4).map(|_| "an IPv4-mapped non-public address");
    }
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible address (::/96, deprecated)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_refusal(embedded(s[6], s[7])).map(|_| "a NAT64 address of a non-public IPv4");
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some("a local-use NAT64 address (64:ff9b:1::/48)");
    }
    if s[..4] == [0x100, 0, 0, 0] {
        return Some("a discard-only address (100::/64)");
    }
    if s[..2] == [0x2001, 0] {
        return Some("a Teredo address (2001::/32)");
    }
    if s[..2] == [0x2001, 0xdb8] {
        return Some("a documentation address (2001:db8::/32)");
    }
    if s[0] == 0x2002 {
        return v4_refusal(embedded(s[1], s[2])).map(|_| "a 6to4 address of a non-public IPv4");
    }
    match s[0] {
        0xfc00..=0xfdff => Some("a unique-local address (fc00::/7)"),
        0xfe80..=0xfebf => Some("a link-local address (fe80::/10)"),
        0xfec0..=0xfeff => Some("a site-local address (fec0::/10)"),
        0xff00..=0xffff => Some("a multicast address (ff00::/8)"),
        _ => None,
    }
}

/// Why a (lowercase, no trailing dot) name is not a public destination.
fn name_refusal(name: &str) -> Option<&'static str> {
    const LOCAL_SUFFIXES: [&str; 9] = [
        "localhost",
        "local",
        "localdomain",
        "internal",
        "home.arpa",
        "lan",
        "home",
        "corp",
        "intranet",
    ];
    if !name.contains('.') {
        return Some(if name == "localhost" {
            "a loopback name"
        } else {
            "a single-label name, which only resolves on a local network"
        });
    }
    LOCAL_SUFFIXES
        .iter()
        .any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
        })
        .then_some("a local or internal name")
}

/// Reads a name as an IPv4 address the way `inet_aton` does: one to four dot-separated
/// parts, each decimal, octal (leading `0`) or hex (`0x`); the last part fills the
/// remaining bytes (`127.1` is 127.0.0.1, `2130706433` is 127.0.0.1).
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (*part, 10)
            };
        if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let v = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        values.push(v);
    }
    let (last, init) = values.split_last()?;
    if init.iter().any(|&v| v > 255) || *last >= 1u64 << (8 * (5 - values.len())) {
        return None;
    }
    let addr = init
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, &v)| acc | v << (8 * (3 - i)));
    Some(Ipv4Addr::from(u32::try_from(addr).ok()?))
}

#[cfg(test)]
mod tests;
