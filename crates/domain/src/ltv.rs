//! C-3 historical lifetime value: what customers actually spent, by acquisition cohort
//! (the month of the first order) and by acquisition channel — on average per customer to
//! date, and within the first 1, 3, 6 and 12 months after the first order (counted only for
//! customers who have been customers that long, so young cohorts do not drag averages down).

use serde::Serialize;

/// Months after the first order at which cumulative value is reported.
pub const HORIZONS: [i64; 4] = [1, 3, 6, 12];

/// Days in a month for these windows (a twelfth of a Julian year, rounded down).
pub const MONTH_DAYS: i64 = 30;

/// Customers acquired on one day in one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    pub first_day: i64,
    pub channel: String,
    pub customers: i64,
}

/// Revenue of those customers in one month window after their first order
/// (`month` = days since the first order / 30).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    pub first_day: i64,
    pub channel: String,
    pub month: i64,
    pub fen: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// YYYY-MM for cohorts, the channel's code for channels ("" when unknown).
    pub key: String,
    pub customers: i64,
    pub revenue_fen: i64,
    /// Revenue per customer to date (fen).
    pub ltv_fen: i64,
    /// Per horizon in `HORIZONS`: revenue per customer within that many months of the first
    /// order, over the customers acquired at least that long ago; `None` when none were.
    pub ltv_at_fen: Vec<Option<i64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub horizons_months: Vec<i64>,
    pub cohorts: Vec<Row>,
    pub channels: Vec<Row>,
}

#[derive(Default)]
struct Acc {
    customers: i64,
    revenue: i64,
    /// Per horizon: (customers old enough, their revenue within the horizon).
    at: [(i64, i64); 4],
}

/// Builds the report as of `today` (a day number); `month_of` names a first day's cohort.
pub fn report(acquired: &[Acquired], spent: &[Spent], today: i64, month_of: impl Fn(i64) -> String) -> Report {
    use std::collections::BTreeMap;
    let mut cohorts: BTreeMap<String, Acc> = BTreeMap::new();
    let mut channels: BTreeMap<String, Acc> = BTreeMap::new();
    let old_enough = |first_day: i64, h: i64| today - first_day >= h * MONTH_DAYS;
    for a in acquired {
        for acc in [cohorts.entry(month_of(a.first_day)).or_default(), channels.entry(a.channel.clone()).or_default()] {
            acc.customers += a.customers;
            for (k, h) in HORIZONS.iter().enumerate() {
                if old_enough(a.first_day, *h) {
                    acc.at[k].0 += a.customers;
                }
            }
        }
    }
    for s in spent {
        for acc in [cohorts.entry(month_of(s.first_day)).or_default(), channels.entry(s.channel.clone()).or_default()] {
            acc.revenue += s.fen;
            for (k, h) in HORIZONS.iter().enumerate() {
                if old_enough(s.first_day, *h) && s.month < *h {
                    acc.at[k].1 += s.fen;
                }
            }
        }
    }
    let rows = |m: BTreeMap<String, Acc>| -> Vec<Row> {
        m.into_iter()
            .filter(|(_, a)| a.customers > 0)
            .map(|(key, a)| Row {
                key,
                customers: a.customers,
                revenue_fen: a.revenue,
                ltv_fen: a.revenue / a.customers,
                ltv_at_fen: a.at.iter().map(|(n, fen)| (*n > 0).then(|| fen / n)).collect(),
            })
            .collect()
    };
    let mut channels = rows(channels);
    channels.sort_by(|a, b| b.ltv_fen.cmp(&a.ltv_fen).then_with(|| a.key.cmp(&b.key)));
    Report { horizons_months: HORIZONS.to_vec(), cohorts: rows(cohorts), channels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C-3: value per customer to date and within each horizon, counting for a horizon only
    /// the customers acquired at least that long ago.
    #[test]
    fn c3_historical_ltv_by_cohort_and_channel() {
        let acquired = vec![
            Acquired { first_day: 0, channel: "douyin".into(), customers: 2 },
            Acquired { first_day: 350, channel: "wechat".into(), customers: 1 },
        ];
        let spent = vec![
            Spent { first_day: 0, channel: "douyin".into(), month: 0, fen: 10_000 },
            Spent { first_day: 0, channel: "douyin".into(), month: 2, fen: 6_000 },
            Spent { first_day: 0, channel: "douyin".into(), month: 11, fen: 4_000 },
            Spent { first_day: 350, channel: "wechat".into(), month: 0, fen: 9_000 },
        ];
        let r = report(&acquired, &spent, 400, |d| if d < 100 { "2025-01".into() } else { "2025-12".into() });
        let jan = &r.cohorts[0];
        assert_eq!((jan.key.as_str(), jan.customers, jan.ltv_fen), ("2025-01", 2, 10_000));
        assert_eq!(jan.ltv_at_fen, vec![Some(5_000), Some(8_000), Some(8_000), Some(10_000)]);
        let dec = &r.cohorts[1];
        // 50 days old: one month is known, three are not.
        assert_eq!(dec.ltv_at_fen, vec![Some(9_000), None, None, None]);
        assert_eq!(r.channels[0].key, "douyin", "highest value first");
        assert_eq!(r.channels[1].ltv_fen, 9_000);
    }
}
