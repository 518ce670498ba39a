//! Money as integer minor units (fen for CNY): exact sums, no floating point.

/// An amount in minor units of the company currency (1 CNY = 100 fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub fn from_major(units: i64) -> Option<Money> {
        units.checked_mul(100).map(Money)
    }

    pub fn fen(self) -> i64 {
        self.0
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
    }
}
