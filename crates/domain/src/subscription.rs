//! C-3 for subscription businesses: subscriptions with their monthly recurring revenue
//! (MRR), and per cohort (the month of a customer's first subscription) the share of
//! customers still paying each month (retention), the cohort's MRR against its first month
//! (net dollar retention: expansion counts, churn and contraction subtract) and the annual
//! renewal rate — all from subscription revenue, not from orders.

use crate::errors::{FieldErrors, Fields};
use crate::ltv::{MONTH_DAYS, Retention};
use crate::money::Money;
use crate::order::{check_id, day_number, scalar, yuan_not_negative};
use jiff::civil::Date;
use serde::Serialize;

/// The fields of a subscription, in the API and in files.
pub const SUBSCRIPTION_FIELDS: &[&str] = &["subscription_id", "customer_id", "plan", "start_date", "end_date", "mrr"];

/// A checked subscription: one plan at one monthly price over a period. An upgrade or a
/// downgrade ends one subscription and starts another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInput {
    pub subscription_id: String,
    pub customer_id: String,
    pub plan: String,
    pub start_date: Date,
    /// The first day no longer paid for; `None` while it runs.
    pub end_date: Option<Date>,
    /// Monthly recurring revenue (fen), not negative.
    pub mrr: Money,
}

impl SubscriptionInput {
    /// Checks a subscription: ids and plan present (ids as an order's: ≤ 64 characters, no
    /// control characters; plan ≤ 100), a
    /// start date not after `latest` (today), an end date after the start, an MRR in yuan
    /// with at most 2 decimals that is not negative; unknown fields are errors too.
    pub fn parse(f: &Fields, latest: Date) -> Result<SubscriptionInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, SUBSCRIPTION_FIELDS);
        let subscription_id = f.text(&mut e, "subscription_id");
        let customer_id = f.text(&mut e, "customer_id");
        for (field, v) in [("subscription_id", &subscription_id), ("customer_id", &customer_id)] {
            if e.get(field).is_none() {
                check_id(v.as_deref(), &mut e, field);
            }
        }
        let (subscription_id, customer_id) = (subscription_id.unwrap_or_default(), customer_id.unwrap_or_default());
        let plan = f.required(&mut e, "plan", 100);
        let date = |e: &mut FieldErrors, field: &str| {
            let v = f.text(e, field)?;
            match v.parse::<Date>() {
                Ok(d) => Some(d),
                Err(_) => {
                    e.add(field, format!("`{v}` is not a date (YYYY-MM-DD)"));
                    None
                }
            }
        };
        let start = date(&mut e, "start_date");
        if start.is_none() && e.get("start_date").is_none() {
            e.add("start_date", "is required");
        }
        if start.is_some_and(|d| d > latest) {
            e.add("start_date", "must not be in the future");
        }
        let end_date = date(&mut e, "end_date");
        if let (Some(s), Some(end)) = (start, end_date)
            && end <= s
        {
            e.add("end_date", "must be after the start date");
        }
        let mrr = match scalar(f, &mut e, "mrr") {
            None if e.get("mrr").is_some() => None,
            v => yuan_not_negative(&mut e, "mrr", v.as_deref()),
        };
        match (start, mrr) {
            (Some(start_date), Some(mrr)) if e.is_empty() => {
                Ok(SubscriptionInput { subscription_id, customer_id, plan, start_date, end_date, mrr })
            }
            _ => Err(e),
        }
    }

    pub fn start_day(&self) -> i64 {
        day_number(self.start_date)
    }

    pub fn end_day(&self) -> Option<i64> {
        self.end_date.map(day_number)
    }
}

/// A stored subscription as the cohort figures need it (days since 1970-01-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sub {
    pub customer: i64,
    pub start: i64,
    /// First day not paid for; `None` while it runs.
    pub end: Option<i64>,
    pub mrr_fen: i64,
}

impl Sub {
    fn paying_on(&self, day: i64) -> bool {
        self.start <= day && self.end.is_none_or(|e| day < e)
    }
}

/// Retention, NDR and renewal per cohort as of `today` from subscription revenue. Month m
/// of a customer is the day `first start + 30·m`; a customer is retained in month m with
/// MRR above zero that day; NDR is the cohort's MRR that day over its MRR in month 0; the
/// renewal rate is the share of the customers paying in month 11 who still pay in month 12
/// (the annual renewal), once the whole cohort has lived through month 12. Months the
/// youngest customer of a cohort has not reached are `None`.
pub fn retention(subs: &[Sub], today: i64, month_of: impl Fn(i64) -> String) -> Vec<Retention> {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Acc {
        customers: i64,
        youngest: i64,
        active: [i64; 13],
        mrr: [i64; 13],
    }
    let mut of_customer: BTreeMap<i64, Vec<Sub>> = BTreeMap::new();
    for s in subs {
        of_customer.entry(s.customer).or_default().push(*s);
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for subs in of_customer.values() {
        let Some(first) = subs.iter().map(|s| s.start).min() else { continue };
        if first > today {
            continue;
        }
        let acc = by.entry(month_of(first)).or_insert_with(|| Acc { youngest: i64::MAX, ..Acc::default() });
        acc.customers += 1;
        acc.youngest = acc.youngest.min(today - first);
        for m in 0..13 {
            let day = first + m as i64 * MONTH_DAYS;
            let mrr: i64 = subs.iter().filter(|s| s.paying_on(day)).map(|s| s.mrr_fen).sum();
            acc.active[m] += i64::from(mrr > 0);
            acc.mrr[m] += mrr;
        }
    }
    by.into_iter()
        .map(|(cohort, a)| {
            let lived = |m: usize| a.youngest >= m as i64 * MONTH_DAYS;
            let pct = |x: i64, of: i64| x as f64 * 100.0 / of as f64;
            Retention {
                cohort,
                customers: a.customers,
                retention_pct: (0..13).map(|m| lived(m).then(|| pct(a.active[m], a.customers))).collect(),
                ndr_pct: (0..13).map(|m| (lived(m) && a.mrr[0] > 0).then(|| pct(a.mrr[m], a.mrr[0]))).collect(),
                renewal_pct: (lived(12) && a.active[11] > 0).then(|| pct(a.active[12], a.active[11])),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: serde_json::Value) -> Fields {
        Fields::from_json(v).unwrap()
    }

    /// C-3: every problem of a subscription is named by its field.
    #[test]
    fn c3_subscriptions_are_checked_field_by_field() {
        let today: Date = "2026-11-23".parse().unwrap();
        let ok = SubscriptionInput::parse(
            &fields(serde_json::json!({"subscription_id": "S1", "customer_id": "C1", "plan": "专业版",
                "start_date": "2026-01-05", "mrr": 990})),
            today,
        )
        .unwrap();
        assert_eq!((ok.mrr.fen(), ok.end_date), (99_000, None));
        let e = SubscriptionInput::parse(
            &fields(serde_json::json!({"customer_id": "C1", "plan": "", "start_date": "2027-01-01",
                "end_date": "2026-12-01", "mrr": "-5", "seats": 3})),
            today,
        )
        .unwrap_err();
        for f in ["subscription_id", "plan", "start_date", "end_date", "mrr", "seats"] {
            assert!(e.get(f).is_some(), "{f}: {e:?}");
        }
        let e = SubscriptionInput::parse(
            &fields(serde_json::json!({"subscription_id": "S1", "customer_id": "C\u{7}1", "plan": "p",
                "start_date": "2026-13-01", "mrr": "9.999"})),
            today,
        )
        .unwrap_err();
        assert!(e.get("start_date").is_some() && e.get("mrr").is_some(), "{e:?}");
        assert!(e.get("customer_id").is_some_and(|m| m.contains("control")), "{e:?}");
    }

    /// C-3: retention and NDR from MRR — expansion lifts NDR above 100 % while churn lowers
    /// retention; the annual renewal rate is month 12's payers over month 11's.
    #[test]
    fn c3_subscription_retention_ndr_and_renewal() {
        let s = |customer, start, end, mrr_fen| Sub { customer, start, end, mrr_fen };
        let subs = vec![
            // 1: 100 a month, upgraded to 300 from day 45, still paying.
            s(1, 0, Some(45), 10_000),
            s(1, 45, None, 30_000),
            // 2: 100 a month, stops on day 65 (paid months 0–2).
            s(2, 0, Some(65), 10_000),
            // 3 and 4: 200 a month each; 3 stops on day 355 (month 11 paid, month 12 not).
            s(3, 5, Some(355), 20_000),
            s(4, 5, None, 20_000),
        ];
        let month = |_: i64| "2025-01".to_string();
        let r = retention(&subs, 80, month);
        let c = &r[0];
        assert_eq!(c.customers, 4);
        assert_eq!(c.retention_pct[..4], [Some(100.0), Some(100.0), Some(100.0), None], "day 80: months 0–2 lived");
        // Month 2 (day 60 for 1 and 2, day 65 for 3 and 4): 300 + 100 + 200 + 200 over 600.
        assert_eq!(c.ndr_pct[2], Some(800.0 / 6.0));
        assert_eq!(c.renewal_pct, None);
        let r = retention(&subs, 400, month);
        let c = &r[0];
        assert_eq!(c.retention_pct[3], Some(75.0), "2 stopped");
        assert_eq!(c.ndr_pct[12], Some(50_000.0 * 100.0 / 60_000.0));
        // Month 11: 1, 3 and 4 pay; month 12: 1 and 4.
        assert_eq!(c.renewal_pct, Some(200.0 / 3.0));
    }
}
