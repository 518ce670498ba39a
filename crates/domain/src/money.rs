//! Money as integer minor units (fen for CNY): exact sums, no floating point.

/// An amount in minor units of the company currency (1 CNY = 100 fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub fn from_major(units: i64) -> Option<Money> {
        units.checked_mul(100).map(Money)
    }

    /// Parses `1234`, `1234.5` or `-1234.56` (major units, at most two decimals) exactly.
    pub fn parse_major(s: &str) -> Option<Money> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || !int.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
            || !frac.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let major: i64 = int.parse().ok()?;
        // "5" is 50 fen, "05" 5 (no allocation: files bring millions of amounts).
        let minor: i64 =
            frac.bytes().chain(std::iter::repeat(b'0')).take(2).fold(0, |v, b| v * 10 + i64::from(b - b'0'));
        let v = major.checked_mul(100)?.checked_add(minor)?;
        Some(Money(if neg { -v } else { v }))
    }

    pub fn fen(self) -> i64 {
        self.0
    }

    /// `12345.67` — two decimals, no grouping: for files other programs read.
    pub fn decimal(self) -> String {
        let abs = self.0.unsigned_abs();
        format!("{}{}.{:02}", if self.0 < 0 { "-" } else { "" }, abs / 100, abs % 100)
    }

    /// `12,345.67` — grouping with commas, two decimals; the symbol is added by the caller
    /// because it depends on the company currency.
    pub fn format_plain(self) -> String {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let major = (abs / 100).to_string();
        let minor = abs % 100;
        let mut grouped = String::with_capacity(major.len() + major.len() / 3);
        for (i, ch) in major.chars().enumerate() {
            if i > 0 && (major.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("{}{grouped}.{minor:02}", if neg { "-" } else { "" })
    }
}

/// Currency symbol for display; unknown codes are shown as the code itself.
pub fn currency_symbol(code: &str) -> &str {
    match code {
        "CNY" => "¥",
        "USD" => "$",
        "EUR" => "€",
        "HKD" => "HK$",
        "JPY" => "JP¥",
        "GBP" => "£",
        _ => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_grouping_and_fen() {
        assert_eq!(Money(5_000_000).format_plain(), "50,000.00");
        assert_eq!(Money(1_234_567).format_plain(), "12,345.67");
        assert_eq!(Money(-5).format_plain(), "-0.05");
        assert_eq!(Money(0).format_plain(), "0.00");
        assert_eq!(Money::from_major(50_000), Some(Money(5_000_000)));
        assert_eq!(Money::from_major(i64::MAX), None);
        assert_eq!(Money::parse_major("12345.6"), Some(Money(1_234_560)));
        assert_eq!(Money::parse_major("-0.05"), Some(Money(-5)));
        assert_eq!(Money::parse_major("1.234"), None);
        assert_eq!(Money::parse_major("1e3"), None);
        assert_eq!(Money::parse_major(""), None);
    }
}
