//! Money is integer micro-dollars (1 USD = 1,000,000 µ$). It is shown in JSON as a
//! decimal `*_usd` number, converted from the integer only at the edge of the API.

use serde::{Deserialize, Serialize};

/// An amount in micro-dollars. Signed so that ledger deltas (refunds, adjustments)
/// share the type; balances are asserted non-negative where they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MicroUsd(i64);

/// DO SQL integers are JS numbers: amounts stay below 2^53 so they survive the trip.
pub const MICRO_USD_MAX: i64 = (1 << 53) - 1;

impl MicroUsd {
    pub const ZERO: MicroUsd = MicroUsd(0);

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn from_cents(cents: i64) -> Self {
        Self(cents * 10_000)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The amount as a JSON number of dollars with up to six decimals (`1.85`, `0.201667`).
    /// Built from the decimal string so no binary rounding leaks into what clients see.
    pub fn to_usd_json(self) -> serde_json::Value {
        let s = self.to_usd_string();
        serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
    }

    /// `"1.85"`, `"0.201667"`, `"-0.02"`, `"0"`.
    pub fn to_usd_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / 1_000_000;
        let frac = abs % 1_000_000;
        if frac == 0 {
            return format!("{sign}{whole}");
        }
        let frac = format!("{frac:06}");
        format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
    }

    /// Parses a decimal dollar amount (`"1.85"`, `"-0.2"`, `"5"`) exactly; at most six
    /// decimals, within the JS-safe range.
    pub fn parse_usd(s: &str) -> Option<MicroUsd> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || frac.len() > 6
            || !all_digits(whole)
            || !all_digits(frac)
            || whole.len() > 10
        {
            return None;
        }
        let micros =
            whole.parse::<i64>().ok()? * 1_000_000 + format!("{frac:0<6}").parse::<i64>().ok()?;
        let micros = if neg { -micros } else { micros };
        (micros.abs() <= MICRO_USD_MAX).then_some(MicroUsd(micros))
    }

    pub fn checked_add(self, other: MicroUsd) -> Option<MicroUsd> {
        self.0
            .checked_add(other.0)
            .filter(|v| v.abs() <= MICRO_USD_MAX)
            .map(MicroUsd)
    }

    pub fn checked_sub(self, other: MicroUsd) -> Option<MicroUsd> {
        self.0
            .checked_sub(other.0)
            .filter(|v| v.abs() <= MICRO_USD_MAX)
            .map(MicroUsd)
    }
}

impl std::fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${}", self.to_usd_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_strings() {
        for (micros, s) in [
            (0, "0"),
            (20_000, "0.02"),
            (1_850_000, "1.85"),
            (201_667, "0.201667"),
            (2_000_000, "2"),
            (-20_000, "-0.02"),
        ] {
            assert_eq!(MicroUsd::from_micros(micros).to_usd_string(), s);
        }
        assert_eq!(
            MicroUsd::from_micros(1_850_000).to_usd_json(),
            serde_json::json!(1.85)
        );
    }

    #[test]
    fn parses_dollar_amounts_exactly() {
        for (s, micros) in [
            ("1.85", 1_850_000),
            ("-0.2", -200_000),
            ("5", 5_000_000),
            ("0.000001", 1),
        ] {
            assert_eq!(
                MicroUsd::parse_usd(s),
                Some(MicroUsd::from_micros(micros)),
                "{s}"
            );
        }
        for bad in [
            "",
            ".5",
            "1.0000001",
            "1e3",
            "abc",
            "1.2.3",
            "--1",
            "99999999999",
        ] {
            assert_eq!(MicroUsd::parse_usd(bad), None, "{bad}");
        }
    }

    #[test]
    fn arithmetic_stays_in_js_safe_range() {
        let max = MicroUsd::from_micros(MICRO_USD_MAX);
        assert_eq!(max.checked_add(MicroUsd::from_micros(1)), None);
        assert_eq!(
            MicroUsd::from_cents(2).checked_sub(MicroUsd::from_cents(5)),
            Some(MicroUsd::from_micros(-30_000))
        );
    }
}
