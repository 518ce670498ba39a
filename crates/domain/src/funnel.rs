//! C-5 funnel: exposure → click → conversion → repurchase per channel and campaign.
//!
//! A user counts at a step only with an event of that step's type strictly later than the
//! moment it reached the previous step, that moment being its earliest qualifying event:
//! reached exposure at its first exposure; click at its first click after that; and so on.
//! Events at the same instant as the previous step do not advance the user.

use crate::errors::{FieldErrors, Fields};
use serde::Serialize;

/// Fields of an event.
pub const EVENT_FIELDS: &[&str] = &["user_id", "channel", "campaign", "type", "ts"];

/// Header names for each event field, for auto-mapping a file's columns.
pub const EVENT_SYNONYMS: &[(&str, &[&str])] = &[
    ("user_id", &["user_id", "用户id", "用户编号", "user"]),
    ("channel", &["channel", "渠道"]),
    ("campaign", &["campaign", "活动"]),
    ("type", &["type", "事件类型", "event"]),
    ("ts", &["ts", "时间", "timestamp", "time"]),
];

/// One funnel event as it arrives (API or file), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInput {
    pub user: String,
    pub channel: String,
    /// Empty when the event belongs to no campaign.
    pub campaign: String,
    pub step: Step,
    pub at: jiff::Timestamp,
}

impl EventInput {
    /// Checks an event: user id and channel present (≤ 64 and 40 characters), campaign
    /// optional (≤ 100), type one of exposure, click, conversion, repurchase, and ts an
    /// RFC 3339 instant such as `2026-05-01T10:00:00+08:00`.
    pub fn parse(f: &Fields) -> Result<EventInput, FieldErrors> {
        let mut e = FieldErrors::new();
        f.reject_unknown(&mut e, EVENT_FIELDS);
        let user = f.required(&mut e, "user_id", 64);
        let channel = f.required(&mut e, "channel", 40);
        let campaign = f.optional(&mut e, "campaign", 100).unwrap_or_default();
        let step = match f.text(&mut e, "type") {
            None => {
                e.add("type", "is required");
                None
            }
            Some(t) => Step::parse(&t).or_else(|| {
                e.add("type", format!("unknown value `{t}`; expected one of: exposure, click, conversion, repurchase"));
                None
            }),
        };
        let at = match f.text(&mut e, "ts") {
            None => {
                e.add("ts", "is required");
                None
            }
            Some(t) => {
                t.parse::<jiff::Timestamp>().map_err(|_| e.add("ts", format!("`{t}` is not an RFC 3339 instant"))).ok()
            }
        };
        match (step, at) {
            (Some(step), Some(at)) if e.is_empty() => Ok(EventInput { user, channel, campaign, step, at }),
            _ => Err(e),
        }
    }
}

/// The funnel's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Exposure,
    Click,
    Conversion,
    Repurchase,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Exposure, Step::Click, Step::Conversion, Step::Repurchase];

    pub fn code(self) -> &'static str {
        match self {
            Step::Exposure => "exposure",
            Step::Click => "click",
            Step::Conversion => "conversion",
            Step::Repurchase => "repurchase",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|t| t.code() == s)
    }
}

/// One user's events in one channel and campaign, in any order: (step, instant in µs).
/// Returns how many steps the user reached (0 to 4) under the strict-ordering rule.
pub fn reached(events: &[(Step, i64)]) -> usize {
    // The earliest event of each step that is strictly after the previous step's moment.
    let mut at: Option<i64> = None;
    for (k, step) in Step::ALL.into_iter().enumerate() {
        let next = events.iter().filter(|(s, t)| *s == step && at.is_none_or(|a| *t > a)).map(|(_, t)| *t).min();
        match next {
            Some(t) => at = Some(t),
            None => return k,
        }
    }
    Step::ALL.len()
}

/// Users at each step, the conversion from the step before (percent; `None` for the first
/// step or when the step before had no users) and which step loses the most.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    pub users: [u64; 4],
    pub step_rate_pct: [Option<f64>; 4],
    /// The step with the largest drop-off (its users lost against the step before), if any
    /// user was lost.
    pub biggest_drop: Option<Step>,
}

/// Builds the funnel from how many steps each user reached.
pub fn summarise(reached_counts: impl IntoIterator<Item = usize>) -> Funnel {
    let mut users = [0u64; 4];
    for r in reached_counts {
        for u in users.iter_mut().take(r.min(4)) {
            *u += 1;
        }
    }
    from_users(users)
}

/// Rates and the biggest drop from the users at each step (each step's users are a subset
/// of the step before's).
pub fn from_users(users: [u64; 4]) -> Funnel {
    let mut step_rate_pct = [None; 4];
    let mut biggest: Option<(u64, Step)> = None;
    for k in 1..4 {
        if users[k - 1] > 0 {
            step_rate_pct[k] = Some(users[k] as f64 * 100.0 / users[k - 1] as f64);
        }
        let lost = users[k - 1].saturating_sub(users[k]);
        if lost > 0 && biggest.is_none_or(|(b, _)| lost > b) {
            biggest = Some((lost, Step::ALL[k]));
        }
    }
    Funnel { users, step_rate_pct, biggest_drop: biggest.map(|(_, s)| s) }
}

/// An instant written `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, fixed width: how the store keeps
/// them) as microseconds since 1970, read straight from its digits — the funnel's scan of
/// millions of events does this per event (days from the civil date by Howard Hinnant's
/// algorithm); anything else sorts first.
pub fn instant_micros(at: &str) -> u64 {
    let b = at.as_bytes();
    let num = |r: std::ops::Range<usize>| {
        b.get(r).map_or(0i64, |d| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c.wrapping_sub(b'0') % 10)))
    };
    if b.len() < 26 {
        return 0;
    }
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + num(11..13) * 3_600 + num(14..16) * 60 + num(17..19);
    (secs * 1_000_000 + num(20..26)).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    #[test]
    fn c5_each_step_needs_an_event_strictly_after_the_previous_one() {
        assert_eq!(reached(&[]), 0);
        assert_eq!(reached(&[(Click, 5)]), 0, "no exposure, no funnel");
        assert_eq!(reached(&[(Exposure, 10), (Click, 20), (Conversion, 30), (Repurchase, 40)]), 4);
        // Same timestamp does not advance.
        assert_eq!(reached(&[(Exposure, 10), (Click, 10)]), 1);
        assert_eq!(reached(&[(Exposure, 10), (Click, 20), (Conversion, 20)]), 2);
        // A click before the first exposure does not count; a later one does.
        assert_eq!(reached(&[(Click, 5), (Exposure, 10), (Conversion, 30)]), 1);
        assert_eq!(reached(&[(Click, 5), (Exposure, 10), (Click, 15), (Conversion, 30)]), 3);
        // The earliest qualifying event sets the moment: the first click after exposure is
        // at 15, so a conversion at 16 counts even though there is also a click at 50.
        assert_eq!(reached(&[(Exposure, 10), (Click, 50), (Click, 15), (Conversion, 16)]), 3);
        // Repurchase must follow the conversion, not just the click.
        assert_eq!(reached(&[(Exposure, 1), (Click, 2), (Repurchase, 3), (Conversion, 4)]), 3);
    }

    #[test]
    fn c5_events_are_parsed_or_every_bad_field_is_named() {
        let f = |pairs: &[(&str, &str)]| Fields::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let ok = EventInput::parse(&f(&[
            ("user_id", "u1"),
            ("channel", "douyin"),
            ("type", "click"),
            ("ts", "2026-05-01T10:00:00+08:00"),
        ]))
        .unwrap();
        assert_eq!((ok.step, ok.campaign.as_str(), ok.at.as_second()), (Click, "", 1_777_600_800));
        let e =
            EventInput::parse(&f(&[("channel", ""), ("type", "view"), ("ts", "yesterday"), ("x", "1")])).unwrap_err();
        for k in ["user_id", "channel", "type", "ts", "x"] {
            assert!(e.get(k).is_some(), "{k}: {e}");
        }
    }

    #[test]
    fn c5_rates_and_the_biggest_drop() {
        let f = summarise([4, 4, 3, 2, 2, 1, 1, 1, 0]);
        assert_eq!(f.users, [8, 5, 3, 2]);
        assert_eq!(f.step_rate_pct[0], None);
        assert!((f.step_rate_pct[1].unwrap() - 62.5).abs() < 1e-9);
        assert_eq!(f.biggest_drop, Some(Click), "8 → 5 loses 3, the most");
        let empty = summarise([]);
        assert_eq!((empty.users, empty.biggest_drop), ([0; 4], None));
        assert_eq!(Step::parse("conversion"), Some(Conversion));
        assert_eq!(Step::parse("view"), None);
    }

    /// C-5: the scan orders events by instants read from their stored text.
    #[test]
    fn c5_stored_instants_read_as_microseconds_since_1970() {
        for t in ["2026-01-02T03:04:05.500000Z", "1970-01-01T00:00:00.000000Z", "2024-02-29T23:59:59.999999Z"] {
            let ts: jiff::Timestamp = t.parse().unwrap();
            assert_eq!(instant_micros(t), ts.as_microsecond() as u64, "{t}");
        }
        assert_eq!(instant_micros("garbage"), 0);
    }
}
