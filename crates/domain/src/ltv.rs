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

/// One cohort's activity in one month after the first order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub first_day: i64,
    pub month: i64,
    /// Customers with an order in that month.
    pub customers: i64,
    pub fen: i64,
}

/// Subscription view of a cohort (C-3): of its customers, the share still paying in month
/// m after the first (retention) and the cohort's revenue in month m against month 0 (net
/// dollar retention, expansion included), for the months the cohort has lived through; the
/// renewal rate is the share paying again in the second year (months 12–23) once the
/// cohort is that old.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// YYYY-MM
    pub cohort: String,
    pub customers: i64,
    /// Months 0..=12; `None` where the cohort is younger.
    pub retention_pct: Vec<Option<f64>>,
    pub ndr_pct: Vec<Option<f64>>,
    pub renewal_pct: Option<f64>,
}

/// Retention, NDR and renewal per cohort as of `today`; `renewed` holds per first day the
/// customers with an order in months 12–23.
pub fn retention(
    acquired: &[Acquired],
    active: &[Active],
    renewed: &[(i64, i64)],
    today: i64,
    month_of: impl Fn(i64) -> String,
) -> Vec<Retention> {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Acc {
        customers: i64,
        /// Age of the cohort's youngest customers, days.
        youngest: i64,
        active: [i64; 13],
        fen: [i64; 13],
        renewed: i64,
        renew_eligible: i64,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for a in acquired {
        let acc = by.entry(month_of(a.first_day)).or_insert_with(|| Acc { youngest: i64::MAX, ..Acc::default() });
        acc.customers += a.customers;
        acc.youngest = acc.youngest.min(today - a.first_day);
        if today - a.first_day >= 24 * MONTH_DAYS {
            acc.renew_eligible += a.customers;
        }
    }
    for x in active.iter().filter(|x| (0..=12).contains(&x.month)) {
        if let Some(acc) = by.get_mut(&month_of(x.first_day)) {
            acc.active[x.month as usize] += x.customers;
            acc.fen[x.month as usize] += x.fen;
        }
    }
    for (first_day, n) in renewed {
        if today - first_day >= 24 * MONTH_DAYS
            && let Some(acc) = by.get_mut(&month_of(*first_day))
        {
            acc.renewed += n;
        }
    }
    by.into_iter()
        .filter(|(_, a)| a.customers > 0)
        .map(|(cohort, a)| {
            // A month counts once every customer of the cohort has lived through it.
            let lived = |m: usize| a.youngest >= (m as i64 + 1) * MONTH_DAYS;
            Retention {
                cohort,
                customers: a.customers,
                retention_pct: (0..13)
                    .map(|m| lived(m).then(|| a.active[m] as f64 * 100.0 / a.customers as f64))
                    .collect(),
                ndr_pct: (0..13)
                    .map(|m| (lived(m) && a.fen[0] > 0).then(|| a.fen[m] as f64 * 100.0 / a.fen[0] as f64))
                    .collect(),
                renewal_pct: (a.renew_eligible > 0).then(|| a.renewed as f64 * 100.0 / a.renew_eligible as f64),
            }
        })
        .collect()
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

    /// C-3: retention and net dollar retention per month lived through, renewal in year two.
    #[test]
    fn c3_retention_ndr_and_renewal_by_cohort() {
        let acquired = vec![Acquired { first_day: 0, channel: String::new(), customers: 4 }];
        let active = vec![
            Active { first_day: 0, month: 0, customers: 4, fen: 40_000 },
            Active { first_day: 0, month: 1, customers: 3, fen: 36_000 },
            Active { first_day: 0, month: 2, customers: 2, fen: 44_000 },
        ];
        let r = retention(&acquired, &active, &[(0, 3)], 75, |_| "2026-01".into());
        assert_eq!(r[0].retention_pct[..3], [Some(100.0), Some(75.0), None], "month 2 not lived through at day 75");
        assert_eq!(r[0].ndr_pct[1], Some(90.0));
        assert_eq!(r[0].renewal_pct, None, "younger than two years");
        let later = retention(&acquired, &active, &[(0, 3)], 800, |_| "2026-01".into());
        assert_eq!((later[0].ndr_pct[2], later[0].renewal_pct), (Some(110.0), Some(75.0)));
        assert_eq!(later[0].retention_pct[5], Some(0.0));
    }
}
