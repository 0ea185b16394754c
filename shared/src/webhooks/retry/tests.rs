use super::*;

#[test]
fn the_default_schedule() {
    assert_eq!(
        RETRY_SCHEDULE_SECS,
        [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
    );
    assert_eq!(default_schedule_ms()[0], 5000);
    assert_eq!(default_schedule_ms()[8], DELAY_MS_MAX);
}

#[test]
fn schedule_overrides() {
    let max = DELAY_MS_MAX.to_string();
    let over = (DELAY_MS_MAX + 1).to_string();
    let too_many = vec!["1"; SCHEDULE_LEN_MAX + 1].join(",");
    let most = vec!["1"; SCHEDULE_LEN_MAX].join(",");
    let cases: Vec<(&str, Option<Vec<u64>>)> = vec![
        ("200,400,800", Some(vec![200, 400, 800])),
        (" 200 , 400 ", Some(vec![200, 400])),
        ("0", Some(vec![0])),
        (&max, Some(vec![DELAY_MS_MAX])),
        (&most, Some(vec![1; SCHEDULE_LEN_MAX])),
        ("", None),
        ("   ", None),
        (",", None),
        ("200,", None),
        ("200,,400", None),
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("5s", None),
        ("0x10", None),
        ("99999999999999999999999", None),
        (&over, None),
        (&too_many, None),
    ];
    for (spec, want) in cases {
        assert_eq!(parse_schedule(spec), want, "{spec:?}");
    }
}

#[test]
fn delays_follow_the_schedule_with_bounded_jitter() {
    let sched = default_schedule_ms();
    let mid = 1u32 << 31;
    type Case = (u32, &'static [u64], u32, Option<u64>, Option<u64>);
    let cases: [Case; 16] = [
        (0, &[1000], 0, None, Some(0)),
        (0, &[1000], 0, Some(700), Some(700)),
        (1, &[1000, 2000], mid, None, Some(1000)),
        (1, &[1000, 2000], 0, None, Some(900)),
        (1, &[1000, 2000], u32::MAX, None, Some(1100)),
        (2, &[1000, 2000], mid, None, Some(2000)),
        (3, &[1000, 2000], mid, None, None),
        (3, &[1000, 2000], mid, Some(5), None),
        (1, &[], mid, None, None),
        (1, &[0], u32::MAX, None, Some(0)),
        (1, &[9], u32::MAX, None, Some(9)), // span rounds down to 0
        (1, &[1000], mid, Some(5000), Some(5000)),
        (1, &[1000], mid, Some(500), Some(1000)),
        (1, &[1000], mid, Some(u64::MAX), Some(DELAY_MS_MAX)),
        (1, &[u64::MAX], mid, None, Some(u64::MAX)),
        (u32::MAX, &[1000], mid, None, None),
    ];
    for (n, s, j, ra, want) in cases {
        assert_eq!(
            next_delay_ms(n, s, j, ra),
            want,
            "n={n} s={s:?} j={j} ra={ra:?}"
        );
    }
    for (i, &base) in sched.iter().enumerate() {
        let n = i as u32 + 1;
        let span = base / 10;
        assert_eq!(next_delay_ms(n, &sched, 0, None), Some(base - span));
        assert_eq!(next_delay_ms(n, &sched, mid, None), Some(base));
        assert_eq!(next_delay_ms(n, &sched, u32::MAX, None), Some(base + span));
        let mut prev = 0;
        for k in 0..=256u64 {
            let j = u32::try_from((u64::from(u32::MAX) * k) / 256).unwrap();
            let d = next_delay_ms(n, &sched, j, None).unwrap();
            assert!(d >= base - span && d <= base + span, "{n} {j} {d}");
            assert!(d >= prev, "jitter is monotonic in its input");
            prev = d;
        }
    }
    assert_eq!(next_delay_ms(10, &sched, mid, None), None);
}

#[test]
fn retry_after_values() {
    // Wed, 21 Oct 2015 07:28:00 GMT
    let at_ms: i64 = 1_445_412_480_000;
    let cases: [(&str, i64, Option<u64>); 30] = [
        ("120", 0, Some(120_000)),
        ("0", 0, Some(0)),
        (" 5 ", 0, Some(5000)),
        ("99999999999999999999999", 0, Some(u64::MAX)),
        ("18446744073709552", 0, Some(u64::MAX)),
        ("-1", 0, None),
        ("1.5", 0, None),
        ("+3", 0, None),
        ("", 0, None),
        ("soon", 0, None),
        (
            "Wed, 21 Oct 2015 07:28:00 GMT",
            at_ms - 60_000,
            Some(60_000),
        ),
        ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms - 1, Some(1)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms, Some(0)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", at_ms + 10_000, Some(0)),
        (
            "Sun, 06 Nov 1994 08:49:37 GMT",
            784_111_777_000 - 2_000,
            Some(2_000),
        ),
        ("Thu, 29 Feb 2024 23:59:60 GMT", 1_709_251_200_000, Some(0)),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 0, Some(10_000)),
        ("Thu, 29 Feb 2023 00:00:00 GMT", 0, None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", 0, None),
        ("Wed, 21 Foo 2015 07:28:00 GMT", 0, None),
        ("Wed, 21 Oct 2015 24:00:00 GMT", 0, None),
        ("Wed, 21 Oct 2015 07:28:00 UTC", 0, None),
        // The obsolete forms RFC 9110 makes recipients accept: RFC 850 and asctime.
        (
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            at_ms - 60_000,
            Some(60_000),
        ),
        ("Wed Oct 21 07:28:00 2015", at_ms - 60_000, Some(60_000)),
        (
            "Sunday, 06-Nov-94 08:49:37 GMT",
            784_111_777_000 - 2_000,
            Some(2_000),
        ),
        (
            "Sun Nov  6 08:49:37 1994",
            784_111_777_000 - 2_000,
            Some(2_000),
        ),
        ("Thu Feb 29 23:59:60 2024", 1_709_251_200_000, Some(0)),
        // RFC 850's two-digit years below 70 are 20xx.
        (
            "Tuesday, 31-Dec-69 23:59:59 GMT",
            3_155_759_999_000 - 1_000,
            Some(1_000),
        ),
        // The day name must be the date's; dates before 1970 are not read.
        ("Thu, 21 Oct 2015 07:28:00 GMT", 0, None),
        ("Wed, 31 Dec 1969 23:59:59 GMT", 0, None),
    ];
    for (value, now, want) in cases {
        assert_eq!(parse_retry_after(value, now), want, "{value:?} at {now}");
    }
    for bad in [
        "wed, 21 Oct 2015 07:28:00 GMT",
        "Wed 21 Oct 2015 07:28:00 GMT ",
        "Xyz, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 oct 2015 07:28:00 GMT",
        "Wed, 1 Oct 2015 07:28:00 GMT",
        "Wed, 00 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:60:00 GMT",
        "Wed, 21 Oct 2015 07:28:61 GMT",
        "Wed, 21 Oct 2015 7:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 gmt",
        "Wed, 2a Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMTX",
        "Wednesday, 21-Oct-2015 07:28:00 GMT",
        "wednesday, 21-Oct-15 07:28:00 GMT",
        "Wed, 21-Oct-15 07:28:00 GMT",
        "Wednesday, 21-Oct-15 07:28:00 UTC",
        "Wed Oct 21 07:28:00 15",
        "Wed Oct 21 07:28:00 2015 GMT",
        "Wed Oct 32 07:28:00 2015",
        "Wed, 21 Oct 2015 07:28:00 GMT, Thu, 22 Oct 2015 07:28:00 GMT",
        "Mié, 21 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
    }
}

#[test]
fn http_dates_agree_with_time_rfc3339() {
    for (date, want) in [
        ("Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00Z"),
        ("Tue, 29 Feb 2000 00:00:00 GMT", "2000-02-29T00:00:00Z"),
        ("Fri, 03 Apr 2026 00:00:00 GMT", "2026-04-03T00:00:00Z"),
        ("Mon, 01 Mar 2100 00:00:00 GMT", "2100-03-01T00:00:00Z"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59Z"),
    ] {
        let ms = parse_retry_after(date, 0).unwrap();
        assert_eq!(crate::time::rfc3339(ms as i64), want);
    }
}

#[test]
fn outcomes() {
    let cases = [
        (200, Outcome::Delivered),
        (202, Outcome::Delivered),
        (204, Outcome::Delivered),
        (299, Outcome::Delivered),
        (410, Outcome::Gone),
        (100, Outcome::Retry),
        (301, Outcome::Retry),
        (308, Outcome::Retry),
        (400, Outcome::Retry),
        (404, Outcome::Retry),
        (429, Outcome::Retry),
        (500, Outcome::Retry),
        (503, Outcome::Retry),
        (0, Outcome::Retry),
    ];
    for (status, want) in cases {
        assert_eq!(outcome(status), want, "{status}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Unix seconds as an IMF-fixdate, an RFC 850 date and an asctime date, from
    /// `time::rfc3339` (the crate's own calendar) and 1970-01-01 being a Thursday.
    fn http_dates(secs: i64) -> [String; 3] {
        const DAYS: [&str; 7] = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let civil = crate::time::rfc3339(secs * 1000);
        let (y, m, d, hms) = (&civil[0..4], &civil[5..7], &civil[8..10], &civil[11..19]);
        let day = DAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
        let month = MONTHS[m.parse::<usize>().unwrap() - 1];
        let d_space = format!("{:>2}", d.trim_start_matches('0'));
        [
            format!("{}, {d} {month} {y} {hms} GMT", &day[..3]),
            format!("{day}, {d}-{month}-{} {hms} GMT", &y[2..]),
            format!("{} {month} {d_space} {hms} {y}", &day[..3]),
        ]
    }

    proptest! {
        /// A receiver's header is untrusted: any text gives a delay or `None`, no panic.
        #[test]
        fn any_text_is_a_delay_or_none(value in any::<String>(), now_ms in any::<i64>()) {
            let _ = parse_retry_after(&value, now_ms);
        }

        /// Every second from 1970 to 9999 reads back, in each form (RFC 850 only where
        /// its two-digit year means that year: 1970–2069).
        #[test]
        fn http_dates_read_back(secs in 0i64..253_402_300_800) {
            let [imf, rfc850, asctime] = http_dates(secs);
            let want = Some(secs as u64 * 1000);
            prop_assert_eq!(parse_retry_after(&imf, 0), want, "{}", imf);
            prop_assert_eq!(parse_retry_after(&asctime, 0), want, "{}", asctime);
            if secs < 3_155_760_000 {
                prop_assert_eq!(parse_retry_after(&rfc850, 0), want, "{}", rfc850);
            }
        }
    }
}

#[test]
fn what_an_attempt_leaves() {
    let sched = [1_000, 2_000];
    let half = 1 << 31;
    let at = |status, refused, retry_after_ms| Attempt {
        status,
        refused,
        retry_after_ms,
    };
    assert_eq!(
        after_attempt(at(Some(204), false, None), 1, &sched, half),
        (DeliveryState::Delivered, None)
    );
    assert_eq!(
        after_attempt(at(Some(410), false, None), 1, &sched, half),
        (DeliveryState::Gone, None)
    );
    assert_eq!(
        after_attempt(at(None, true, None), 1, &sched, half),
        (DeliveryState::GaveUp, None)
    );
    assert_eq!(
        after_attempt(at(Some(500), false, None), 1, &sched, half),
        (DeliveryState::Pending, Some(1_000))
    );
    assert_eq!(
        after_attempt(at(None, false, None), 2, &sched, half),
        (DeliveryState::Pending, Some(2_000))
    );
    assert_eq!(
        after_attempt(at(Some(503), false, Some(60_000)), 2, &sched, half),
        (DeliveryState::Pending, Some(60_000))
    );
    // The schedule is spent: give up, whatever Retry-After says.
    assert_eq!(
        after_attempt(at(Some(500), false, Some(60_000)), 3, &sched, half),
        (DeliveryState::GaveUp, None)
    );
}
