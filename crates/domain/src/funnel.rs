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
        let text = |e: &mut FieldErrors, field| f.text(e, field);
        let (user, channel, campaign) = (text(&mut e, "user_id"), text(&mut e, "channel"), text(&mut e, "campaign"));
        let (kind, ts) = (text(&mut e, "type"), text(&mut e, "ts"));
        let cells = Cells {
            user: user.as_deref(),
            channel: channel.as_deref(),
            campaign: campaign.as_deref(),
            kind: kind.as_deref(),
            ts: ts.as_deref(),
        };
        match cells.check(&mut e) {
            Some((step, at)) if e.is_empty() => Ok(EventInput {
                user: user.unwrap_or_default(),
                channel: channel.unwrap_or_default(),
                campaign: campaign.unwrap_or_default(),
                step,
                at: jiff::Timestamp::from_microsecond(at).map_err(|_| FieldErrors::single("ts", "out of range"))?,
            }),
            _ => Err(e),
        }
    }
}

/// An event's values as text (trimmed, `None` when blank), from a request or a file's row.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cells<'a> {
    pub user: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub ts: Option<&'a str>,
}

impl Cells<'_> {
    /// The rule for every way events arrive: user id and channel present (≤ 64 and 40
    /// characters), campaign optional (≤ 100), type one of exposure, click, conversion,
    /// repurchase, and ts an RFC 3339 instant. Returns the step and the instant in
    /// microseconds since 1970 (finer digits dropped, as the store keeps them).
    pub fn check(&self, e: &mut FieldErrors) -> Option<(Step, i64)> {
        for (field, value, max) in [("user_id", self.user, 64), ("channel", self.channel, 40)] {
            match value {
                None => e.add(field, "is required"),
                Some(v) if v.chars().count() > max => e.add(field, format!("must be at most {max} characters")),
                Some(_) => {}
            }
        }
        if self.campaign.is_some_and(|c| c.chars().count() > 100) {
            e.add("campaign", "must be at most 100 characters");
        }
        let step = match self.kind {
            None => {
                e.add("type", "is required");
                None
            }
            Some(t) => Step::parse(t).or_else(|| {
                e.add("type", format!("unknown value `{t}`; expected one of: exposure, click, conversion, repurchase"));
                None
            }),
        };
        let at = match self.ts {
            None => {
                e.add("ts", "is required");
                None
            }
            Some(t) => parse_instant(t).or_else(|| {
                e.add("ts", format!("`{t}` is not an RFC 3339 instant"));
                None
            }),
        };
        Some((step?, at?))
    }
}

/// An RFC 3339 instant as microseconds since 1970 (digits finer than a microsecond dropped,
/// toward the past). The common shape `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` is read
/// straight from its digits — an import of ten million events does this per row — and
/// anything else (or any value the fast reading is unsure of) goes through jiff's parser, so
/// both give the same answer (a test holds them to it).
pub fn parse_instant(s: &str) -> Option<i64> {
    fast_instant(s).or_else(|| s.parse::<jiff::Timestamp>().ok().map(|t| t.as_microsecond()))
}

fn fast_instant(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter().try_fold(0i64, |n, c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3_600 + om * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + hh * 3_600 + mm * 60 + ss - offset;
    // Before 1970 the truncation direction differs: leave those to jiff.
    (secs >= 0).then_some(secs * 1_000_000 + micros)
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

/// One stored event with its user and its channel/campaign pair as numbers (see `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    pub user: u32,
    pub group: u32,
    pub step: Step,
    /// Microseconds since 1970.
    pub at: i64,
}

/// Users at each step per channel/campaign pair (numbered from 0; `groups` of them) from a
/// period's events — the rule `reached` states, for millions of events. A counting sort by
/// user brings each user's events together; each user's few events are sorted by (pair,
/// instant) and walked once, a step reached at the first event of the next type strictly
/// after the moment of the step before (events at one instant never advance each other,
/// whatever order they come in). The users are shared between two threads.
pub fn count(events: &[Numbered], groups: usize) -> Vec<[u64; 4]> {
    let users = events.iter().map(|e| e.user as usize + 1).max().unwrap_or(0);
    // start[u]..start[u + 1]: where user u's events go.
    let mut start = vec![0usize; users + 1];
    for e in events {
        start[e.user as usize + 1] += 1;
    }
    for u in 1..=users {
        start[u] += start[u - 1];
    }
    // (pair, instant with its sign bit flipped so unsigned order is time order, step).
    let key = |e: &Numbered| u128::from(e.group) << 66 | u128::from(e.at as u64 ^ 1 << 63) << 2 | e.step as u128;
    let mut keys = vec![0u128; events.len()];
    let mut next = start.clone();
    for e in events {
        let slot = &mut next[e.user as usize];
        keys[*slot] = key(e);
        *slot += 1;
    }
    drop(next);
    let walk = |keys: &mut [u128], bounds: &[usize], base: usize| {
        let mut counts = vec![[0u64; 4]; groups];
        for w in bounds.windows(2) {
            let mine = &mut keys[w[0] - base..w[1] - base];
            mine.sort_unstable();
            let (mut group, mut step, mut moment) = (u128::MAX, 0usize, 0u128);
            for k in mine.iter() {
                let (g, at, kind) = (k >> 66, k >> 2 & u128::from(u64::MAX), (k & 3) as usize);
                if g != group {
                    (group, step) = (g, 0);
                }
                if step < 4 && kind == step && (step == 0 || at > moment) {
                    counts[g as usize][step] += 1;
                    step += 1;
                    moment = at;
                }
            }
        }
        counts
    };
    // Split at the user holding the middle event.
    let mid_user = start.partition_point(|s| *s < events.len() / 2).min(users);
    let (low, high) = keys.split_at_mut(start[mid_user]);
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| walk(high, &start[mid_user..], start[mid_user]));
        let here = walk(low, &start[..=mid_user], 0);
        (here, other.join().expect("funnel walk"))
    });
    a.into_iter().zip(b).map(|(x, y)| [x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] + y[3]]).collect()
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

    /// C-5: the counting walk gives what the rule gives user by user, ties included.
    #[test]
    fn c5_counting_walk_matches_the_rule_per_user_and_pair() {
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let mut events = Vec::new();
        for _ in 0..20_000 {
            events.push(Numbered {
                user: next(700) as u32,
                group: next(3) as u32,
                step: Step::ALL[next(4) as usize],
                // A few minutes either side of 1970 so that ties are common and signs differ.
                at: next(40) as i64 * 1_000_000 - 20_000_000,
            });
        }
        let got = count(&events, 3);
        let mut want = vec![[0u64; 4]; 3];
        for g in 0..3u32 {
            for u in 0..700u32 {
                let mine: Vec<(Step, i64)> =
                    events.iter().filter(|e| e.user == u && e.group == g).map(|e| (e.step, e.at)).collect();
                for n in want[g as usize].iter_mut().take(reached(&mine)) {
                    *n += 1;
                }
            }
        }
        assert_eq!(got, want);
        assert!(want[0][3] > 0 && want[0][1] < want[0][0], "the sample exercises every step: {want:?}");
        assert_eq!(count(&[], 2), vec![[0; 4]; 2]);
    }

    /// C-5: the fast reading of instants agrees with jiff's parser wherever it answers.
    #[test]
    fn c5_instants_read_fast_agree_with_the_parser() {
        let cases = [
            "2026-05-01T10:00:00+08:00",
            "2026-05-01T10:00:00Z",
            "2026-05-01T10:00:00.5Z",
            "2026-05-01T10:00:00.123456789-03:30",
            "2024-02-29T23:59:59.999999Z",
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:30:00+01:00",
            "1969-12-31T23:59:59.5Z",
            "2025-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-05-01T24:00:00Z",
            "2026-05-01T10:00:60Z",
            "2026-05-01T10:00:00.Z",
            "2026-05-01T10:00:00.1234567890Z",
            "2026-05-01t10:00:00z",
            "2026-05-01 10:00:00Z",
            "2026-05-01T10:00:00+0800",
            "2026-05-01T10:00:00",
            "2026-05-01",
            "yesterday",
            "",
        ];
        for c in cases {
            let jiff = c.parse::<jiff::Timestamp>().ok().map(|t| t.as_microsecond());
            assert_eq!(parse_instant(c), jiff, "{c}");
            if let Some(fast) = fast_instant(c) {
                assert_eq!(Some(fast), jiff, "{c}");
            }
        }
        assert!(fast_instant("2026-05-01T10:00:00+08:00").is_some(), "the common shape takes the fast path");
    }
}
