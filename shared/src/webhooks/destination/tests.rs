use super::*;

fn ok(url: &str) -> Destination {
    check_destination(url, &AllowList::default()).unwrap_or_else(|e| panic!("{url} refused: {e}"))
}

#[test]
fn public_urls_pass_and_are_normalised() {
    let urls = [
        ("https://example.com/hook", "https://example.com/hook"),
        ("http://example.com", "http://example.com/"),
        (
            "HTTPS://Hooks.Example.COM:8443/a?b=c#frag",
            "https://hooks.example.com:8443/a?b=c",
        ),
        ("https://example.com:443/x", "https://example.com/x"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("https://example.com./x", "https://example.com/x"),
        ("https://%65xample.com/x", "https://example.com/x"),
        (
            "https://bücher.example/x",
            "https://xn--bcher-kva.example/x",
        ),
        (
            "https://example.com/a%20b?q=%2F",
            "https://example.com/a%20b?q=%2F",
        ),
        ("http://8.8.8.8:8080/x", "http://8.8.8.8:8080/x"),
        ("http://134744072/", "http://8.8.8.8/"),
        (
            "http://[2606:4700:4700::1111]/x",
            "http://[2606:4700:4700::1111]/x",
        ),
        ("http://[::ffff:8.8.8.8]/", "http://[::ffff:808:808]/"),
        (
            "https://a.b.c.example.org:65535/",
            "https://a.b.c.example.org:65535/",
        ),
        (
            "https://localhost.example.com/",
            "https://localhost.example.com/",
        ),
    ];
    for (input, url) in urls {
        let d = ok(input);
        assert_eq!(d.url, url, "{input}");
        assert!(!d.allow_listed, "{input}");
    }
    let parts = [
        ("https://Example.com./x", "example.com", 443, false),
        ("http://example.com/x", "example.com", 80, false),
        ("https://example.com:8443/", "example.com", 8443, false),
        ("http://0x08080808:81/", "8.8.8.8", 81, true),
        ("http://[2606:4700::1111]/", "2606:4700::1111", 80, true),
        ("https://[::ffff:8.8.8.8]/", "::ffff:8.8.8.8", 443, true),
    ];
    for (input, host, port, is_ip) in parts {
        let d = ok(input);
        assert_eq!(
            (d.host.as_str(), d.port, d.is_ip),
            (host, port, is_ip),
            "{input}"
        );
    }
}

#[test]
fn malformed_urls_are_refused() {
    let long = format!(
        "https://example.com/{}",
        "a".repeat(crate::jobs::REPLY_URL_LEN_MAX)
    );
    let cases: Vec<(&str, &str)> = vec![
        ("", "not a valid"),
        ("example.com/hook", "not a valid"),
        ("/hook", "not a valid"),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://:pass@example.com/", "credentials"),
        ("http://", "not a valid"),
        ("http:///path", "single-label"),
        ("https://example.com:0/", "port"),
        ("https://example.com:65536/", "not a valid"),
        ("https://example.com:99999/", "not a valid"),
        ("https://exa mple.com/", "spaces"),
        (" https://example.com/", "spaces"),
        ("https://example.com/\n", "spaces"),
        ("https://example.com/\u{0}", "spaces"),
        ("https://[::1/", "not a valid"),
        ("https://exa<mple.com/", "not a valid"),
        (&long, "longer than"),
    ];
    for (url, want) in cases {
        let err = check_destination(url, &AllowList::default()).unwrap_err();
        assert!(err.contains(want), "{url:?}: {err}");
        assert!(err.starts_with("The webhook URL"), "{url:?}: {err}");
    }
}

#[test]
fn non_public_destinations_are_refused() {
    let cases: &[(&str, &str)] = &[
        // IPv4
        ("http://127.0.0.1/", "loopback"),
        ("http://127.255.255.254:8080/x", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://10.255.255.255/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.255/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://169.254.0.1/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade"),
        ("http://100.127.255.255/", "carrier-grade"),
        ("http://0.0.0.0/", "this network"),
        ("http://0.1.2.3/", "this network"),
        ("http://224.0.0.1/", "multicast"),
        ("http://239.255.255.250/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://192.0.0.170/", "IETF"),
        ("http://192.0.2.1/", "documentation"),
        ("http://198.51.100.7/", "documentation"),
        ("http://203.0.113.9/", "documentation"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://198.19.255.255/", "benchmarking"),
        // Numeric forms resolvers accept
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0X7F000001/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0177.0.0.01/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://127.0.1/", "127.0.0.1"),
        ("http://0x7f.0x0.0x0.0x1/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://0x0/", "0.0.0.0"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://2852039166/", "169.254.169.254"),
        ("http://0xa9fea9fe/", "169.254.169.254"),
        ("http://0251.0376.0251.0376/", "169.254.169.254"),
        ("http://169.254.43518/", "169.254.169.254"),
        ("http://%31%32%37.0.0.1/", "127.0.0.1"),
        ("http://１２７.０.０.１/", "127.0.0.1"),
        ("http://127.0.0.1:80\\@example.com/", "127.0.0.1"),
        ("http://127.0.0.1#@example.com/", "127.0.0.1"),
        ("http://127.0.0.1?@example.com/", "127.0.0.1"),
        ("http://example.com@127.0.0.1/", "credentials"),
        // IPv6
        ("http://[::1]:8080/x", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[febf::1]/", "link-local"),
        ("http://[fc00::1]/", "unique-local"),
        ("http://[fd12:3456::1]/", "unique-local"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "unique-local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
        ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
        ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
        ("http://[::127.0.0.1]/", "IPv4-compatible"),
        ("http://[::8.8.8.8]/", "IPv4-compatible"),
        ("http://[64:ff9b::7f00:1]/", "NAT64"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
        ("http://[64:ff9b:1::1]/", "NAT64"),
        ("http://[100::1]/", "discard"),
        ("http://[2001::1]/", "Teredo"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://[2002:7f00:1::1]/", "6to4"),
        ("http://[2002:c0a8:101::1]/", "6to4"),
        // Names
        ("http://localhost/", "loopback name"),
        ("http://LOCALHOST:3000/", "loopback name"),
        ("http://localhost./", "loopback name"),
        ("http://localhost../", "loopback name"),
        ("http://%6c%6f%63%61%6c%68%6f%73%74/", "loopback name"),
        ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "loopback name"),
        ("http://api.localhost/", "local or internal"),
        ("http://printer.local/", "local or internal"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "local or internal",
        ),
        ("http://metadata.google.internal./", "local or internal"),
        ("http://db.svc.internal/", "local or internal"),
        ("http://box.localdomain/", "local or internal"),
        ("http://nas.home.arpa/", "local or internal"),
        ("http://router.lan/", "local or internal"),
        ("http://metadata/", "single-label"),
        ("http://intranet/", "single-label"),
        ("http://kubernetes/", "single-label"),
    ];
    for (url, want) in cases {
        let err = check_destination(url, &AllowList::default()).unwrap_err();
        assert!(err.contains(want), "{url}: {err}");
    }
}

#[test]
fn public_addresses_near_private_ranges_pass() {
    for url in [
        "http://9.255.255.255/",
        "http://11.0.0.0/",
        "http://100.63.255.255/",
        "http://100.128.0.0/",
        "http://126.255.255.255/",
        "http://128.0.0.0/",
        "http://169.253.255.255/",
        "http://169.255.0.0/",
        "http://172.15.255.255/",
        "http://172.32.0.0/",
        "http://192.167.255.255/",
        "http://192.169.0.0/",
        "http://198.17.255.255/",
        "http://198.20.0.0/",
        "http://223.255.255.255/",
        "http://1.1.1.1/",
        "http://[2606:4700::1111]/",
        "http://[fbff::1]/",
        "http://[fe7f::1]/",
        "http://[64:ff9b::808:808]/",
        "http://[2002:808:808::1]/",
        "http://[::ffff:1.1.1.1]/",
        "http://example.local.com/",
        "http://internal.example.com/",
        "http://localhostexample.com/",
        "http://my.local-host.io/x",
    ] {
        ok(url);
    }
}

#[test]
fn the_allow_list_lets_named_hosts_and_networks_through() {
    let allow =
        AllowList::parse(" 127.0.0.1, localhost ,10.0.0.0/8,::1, [fd00::]/8 , Receiver.Test. ,")
            .unwrap();
    let cases: [(&str, Option<&str>); 17] = [
        (
            "http://127.0.0.1:8787/hook",
            Some("http://127.0.0.1:8787/hook"),
        ),
        (
            "http://2130706433:8787/hook",
            Some("http://127.0.0.1:8787/hook"),
        ),
        (
            "http://[::ffff:127.0.0.1]/",
            Some("http://[::ffff:7f00:1]/"),
        ),
        ("http://localhost:3000/x", Some("http://localhost:3000/x")),
        ("http://localhost.:3000/x", Some("http://localhost:3000/x")),
        ("http://10.1.2.3/", Some("http://10.1.2.3/")),
        ("http://[::1]:9000/", Some("http://[::1]:9000/")),
        ("http://[fdab::1]/", Some("http://[fdab::1]/")),
        ("http://receiver.test/", Some("http://receiver.test/")),
        ("http://127.0.0.2/", None),
        ("http://11.0.0.1/", Some("http://11.0.0.1/")),
        ("http://192.168.0.1/", None),
        ("http://api.localhost/", None),
        ("http://[fc00::1]/", None),
        ("http://[::2]/", None),
        ("http://169.254.169.254/", None),
        ("http://user:pw@localhost/", None),
    ];
    for (url, want) in cases {
        let got = check_destination(url, &allow);
        match want {
            Some(want) => {
                let d = got.unwrap_or_else(|e| panic!("{url}: {e}"));
                assert_eq!(d.url, want, "{url}");
                let public = ["http://11.0.0.1/", "http://receiver.test/"];
                assert_eq!(d.allow_listed, !public.contains(&url), "{url}");
            }
            None => assert!(got.is_err(), "{url} passed: {got:?}"),
        }
    }
    assert!(AllowList::default().is_empty());
    assert!(!allow.is_empty());
    assert_eq!(AllowList::parse(" , ").unwrap(), AllowList::default());
    // Host bits of a CIDR are cleared.
    assert_eq!(
        AllowList::parse("10.9.8.7/8").unwrap(),
        AllowList::parse("10.0.0.0/8").unwrap()
    );
    assert!(check_destination("http://[::]/", &AllowList::parse("::/0").unwrap()).is_ok());
    assert!(check_destination("http://0.0.0.0/", &AllowList::parse("0.0.0.0/0").unwrap()).is_ok());
}

#[test]
fn bad_allow_list_entries_are_named() {
    for entry in [
        "localhost:8080",
        "10.0.0.0/33",
        "::1/129",
        "10.0.0.0/",
        "10.0.0.0/x",
        "10.0.0.0/-1",
        "localhost/8",
        "http://localhost",
        "exa mple.com",
        "a..b",
        "[::1",
        "*.example.com",
        "127.1",
        "0x7f000001",
        "2130706433",
        "127.0.0.1.",
    ] {
        let err = AllowList::parse(&format!("127.0.0.1,{entry}")).unwrap_err();
        assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
    }
}

#[test]
fn inet_aton_forms() {
    let cases: [(&str, Option<[u8; 4]>); 22] = [
        ("127.0.0.1", Some([127, 0, 0, 1])),
        ("2130706433", Some([127, 0, 0, 1])),
        ("0x7f000001", Some([127, 0, 0, 1])),
        ("0177.0.0.1", Some([127, 0, 0, 1])),
        ("127.1", Some([127, 0, 0, 1])),
        ("127.0.1", Some([127, 0, 0, 1])),
        ("0x7f.1", Some([127, 0, 0, 1])),
        ("10.0x10000", Some([10, 1, 0, 0])),
        ("1.2.65535", Some([1, 2, 255, 255])),
        ("0", Some([0, 0, 0, 0])),
        ("0x", Some([0, 0, 0, 0])),
        ("4294967295", Some([255, 255, 255, 255])),
        ("00", Some([0, 0, 0, 0])),
        ("4294967296", None),
        ("1.2.65536", None),
        ("256.0.0.1", None),
        ("08.0.0.1", None),
        ("0xg.0.0.1", None),
        ("1.2.3.4.5", None),
        ("1..2", None),
        ("", None),
        ("example.com", None),
    ];
    for (s, want) in cases {
        assert_eq!(inet_aton(s), want.map(Ipv4Addr::from), "{s:?}");
    }
}
