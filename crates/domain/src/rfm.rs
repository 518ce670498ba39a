//! C-2 RFM: recency, frequency and monetary value per customer, each scored 1–5 by
//! quintile, and the segment (with its action) from the playbook's rules.
//!
//! The definition is fixed so results can be checked against any SQL engine: as of a date
//! D, recency_days = D − date of the last order, frequency = number of orders, monetary =
//! sum of amounts; R, F, M = `NTILE(5)` over all customers with an order, ordered for R by
//! (recency_days descending, customer id ascending) — the most recent get 5 —, for F by
//! (frequency, customer id) and for M by (monetary, customer id) ascending. Customer ids
//! compare as numbers when every id is an integer, else as text.

use crate::errors::FieldErrors;
use serde::Serialize;

/// One customer's raw values as of the date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    pub customer: String,
    pub recency_days: i64,
    pub frequency: i64,
    /// Minor units (fen).
    pub monetary: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scored {
    pub customer: String,
    pub recency_days: i64,
    pub frequency: i64,
    pub monetary: i64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: String,
}

/// SQL's `NTILE(buckets)` for the row at `rank` (0-based) of `n` ordered rows: the first
/// `n % buckets` buckets hold one row more than the others.
pub fn ntile(rank: usize, n: usize, buckets: usize) -> u8 {
    let (small, extra) = (n / buckets, n % buckets);
    let big_rows = extra * (small + 1);
    let tile = if rank < big_rows { rank / (small + 1) } else { extra + (rank - big_rows) / small.max(1) };
    (tile + 1) as u8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    R,
    F,
    M,
}

/// One bound of a segment rule, e.g. `r>=4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bound {
    dim: Dim,
    at_least: bool,
    score: u8,
}

/// A segment: its name and the bounds a customer's scores must all meet (none: everyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    bounds: Vec<Bound>,
}

impl Segment {
    /// Parses `rule`: bounds such as `r>=4 f<=2`, separated by spaces; `*` matches everyone.
    pub fn parse(name: &str, rule: &str) -> Result<Segment, String> {
        let mut bounds = Vec::new();
        for part in rule.split_whitespace().filter(|p| *p != "*") {
            let bad = || format!("`{part}` is not a bound such as r>=4 or m<=2 (r, f or m; >= or <=; 1 to 5)");
            let mut chars = part.chars();
            let dim = match chars.next().map(|c| c.to_ascii_lowercase()) {
                Some('r') => Dim::R,
                Some('f') => Dim::F,
                Some('m') => Dim::M,
                _ => return Err(bad()),
            };
            let rest = chars.as_str();
            let (at_least, num) = if let Some(n) = rest.strip_prefix(">=") {
                (true, n)
            } else if let Some(n) = rest.strip_prefix("<=") {
                (false, n)
            } else {
                return Err(bad());
            };
            let score: u8 = num.parse().ok().filter(|s| (1..=5).contains(s)).ok_or_else(bad)?;
            bounds.push(Bound { dim, at_least, score });
        }
        Ok(Segment { name: name.to_string(), bounds })
    }

    pub fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        self.bounds.iter().all(|b| {
            let v = match b.dim {
                Dim::R => r,
                Dim::F => f,
                Dim::M => m,
            };
            if b.at_least { v >= b.score } else { v <= b.score }
        })
    }
}

/// The playbook's segments in the order they are tried; errors name the playbook key.
pub fn segments(pb: &crate::playbook::Playbook) -> Result<Vec<Segment>, FieldErrors> {
    let c = &pb.customers.rfm;
    let mut e = FieldErrors::new();
    let mut out = Vec::with_capacity(c.order.len());
    for name in &c.order {
        match c.rules.get(name) {
            Some(rule) => match Segment::parse(name, rule) {
                Ok(s) => out.push(s),
                Err(msg) => e.add(format!("customers.rfm.rules.{name}"), msg),
            },
            None => e.add("customers.rfm.order", format!("`{name}` has no rule in customers.rfm.rules")),
        }
        if !c.actions.contains_key(name) {
            e.add("customers.rfm.order", format!("`{name}` has no action in customers.rfm.actions"));
        }
    }
    if out.last().is_some_and(|s| !s.bounds.is_empty()) {
        e.add("customers.rfm.order", "the last segment's rule must be * so that every customer gets a segment");
    }
    e.into_result(out)
}

/// Indices of `ids` in C-2's id order: as numbers when every id is an integer, else as text.
pub fn id_order(ids: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    let keys: Option<Vec<i128>> = ids.iter().map(|v| v.parse::<i128>().ok()).collect();
    match keys {
        Some(keys) => order.sort_unstable_by_key(|&i| (keys[i], i)),
        None => order.sort_unstable_by(|&a, &b| ids[a].cmp(ids[b])),
    }
    order
}

/// Each customer's position when ordered by id (as C-2 compares ids), so that the three
/// orderings below compare two integers instead of parsing ids on every comparison.
fn id_ranks(values: &[Values]) -> Vec<u32> {
    // Ids from 0 to 2³² − 1 (the usual case) packed with their position into one integer.
    let small: Option<Vec<u64>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| v.customer.parse::<u32>().ok().map(|k| u64::from(k) << 32 | i as u64))
        .collect();
    let keys: Option<Vec<(i128, u32)>> = match small {
        Some(_) => None,
        None => {
            values.iter().enumerate().map(|(i, v)| v.customer.parse::<i128>().ok().map(|k| (k, i as u32))).collect()
        }
    };
    let order: Vec<u32> = match (small, keys) {
        (Some(mut small), _) => {
            small.sort_unstable();
            small.into_iter().map(|k| k as u32).collect()
        }
        (None, Some(mut keys)) => {
            // Sorted by value (not through an index into the ids): one pass over memory.
            keys.sort_unstable();
            keys.into_iter().map(|(_, i)| i).collect()
        }
        (None, None) => {
            let ids: Vec<&str> = values.iter().map(|v| v.customer.as_str()).collect();
            id_order(&ids).into_iter().map(|i| i as u32).collect()
        }
    };
    let mut rank = vec![0u32; values.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    rank
}

/// NTILE(5) of every value under the ordering (key, id rank); `key` ascending. When the keys
/// span less than 2³² the pair is packed into one integer (half the memory to sort).
fn tiles(values: &[Values], id_rank: &[u32], key: fn(&Values) -> i64) -> Vec<u8> {
    let n = values.len();
    let mut by_id = vec![0u8; n];
    let (lo, hi) = values.iter().map(key).fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
    if n > 0 && hi.abs_diff(lo) < 1 << 32 {
        let mut order: Vec<u64> =
            values.iter().zip(id_rank).map(|(v, r)| (key(v).abs_diff(lo) << 32) | u64::from(*r)).collect();
        order.sort_unstable();
        for (rank, packed) in order.into_iter().enumerate() {
            by_id[(packed & u64::from(u32::MAX)) as usize] = ntile(rank, n, 5);
        }
        return by_id;
    }
    let mut order: Vec<(i64, u32)> = values.iter().zip(id_rank).map(|(v, r)| (key(v), *r)).collect();
    order.sort_unstable();
    // (key, id rank) is unique per customer, so its position is the customer's rank.
    for (rank, (_, id)) in order.into_iter().enumerate() {
        by_id[id as usize] = ntile(rank, n, 5);
    }
    by_id
}

/// Scores every customer (C-2) and gives each the first segment it matches; the result is
/// ordered by customer id (as C-2 compares ids). The three orderings are sorted on as many
/// threads as the machine gives.
pub fn score(values: Vec<Values>, segments: &[Segment]) -> Vec<Scored> {
    let id_rank = id_ranks(&values);
    // Recency descending: the longest ago first (tile 1), the most recent last (tile 5).
    let (r, f, m) = std::thread::scope(|s| {
        let r = s.spawn(|| tiles(&values, &id_rank, |v| -v.recency_days));
        let f = s.spawn(|| tiles(&values, &id_rank, |v| v.frequency));
        let m = tiles(&values, &id_rank, |v| v.monetary);
        (r.join().expect("R scoring"), f.join().expect("F scoring"), m)
    });
    // The segment of each of the 125 (r, f, m) combinations, matched once.
    let mut table: Vec<&str> = Vec::with_capacity(125);
    for (r, f, m) in (1..=5u8).flat_map(|r| (1..=5u8).flat_map(move |f| (1..=5u8).map(move |m| (r, f, m)))) {
        table.push(segments.iter().find(|s| s.matches(r, f, m)).map_or("", |s| s.name.as_str()));
    }
    let mut by_id: Vec<Option<Values>> = Vec::with_capacity(values.len());
    by_id.resize_with(values.len(), || None);
    for (v, rank) in values.into_iter().zip(&id_rank) {
        by_id[*rank as usize] = Some(v);
    }
    by_id
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(k, v)| Scored {
            customer: v.customer,
            recency_days: v.recency_days,
            frequency: v.frequency,
            monetary: v.monetary,
            r: r[k],
            f: f[k],
            m: m[k],
            segment: table[usize::from(r[k] - 1) * 25 + usize::from(f[k] - 1) * 5 + usize::from(m[k] - 1)].to_string(),
        })
        .collect()
}

/// Customers who moved from one segment to another between two scorings (C-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The earlier segment; `None` for customers who had not ordered yet.
    pub from: Option<String>,
    pub to: String,
    pub customers: usize,
}

/// The moves between an earlier and a later scoring, largest first (ties by segment
/// names); customers whose segment did not change are not moves.
pub fn moves(before: &[Scored], now: &[Scored]) -> Vec<Move> {
    let was: std::collections::HashMap<&str, &str> =
        before.iter().map(|s| (s.customer.as_str(), s.segment.as_str())).collect();
    let mut counts: std::collections::BTreeMap<(Option<&str>, &str), usize> = std::collections::BTreeMap::new();
    for s in now {
        let from = was.get(s.customer.as_str()).copied();
        if from != Some(s.segment.as_str()) {
            *counts.entry((from, s.segment.as_str())).or_default() += 1;
        }
    }
    let mut out: Vec<Move> = counts
        .into_iter()
        .map(|((from, to), customers)| Move { from: from.map(str::to_string), to: to.to_string(), customers })
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.customers));
    out
}

/// Customers per segment, in the playbook's order (segments without customers included).
pub fn counts(scored: &[Scored], segments: &[Segment]) -> Vec<(String, usize)> {
    segments.iter().map(|s| (s.name.clone(), scored.iter().filter(|c| c.segment == s.name).count())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Playbook;

    fn v(customer: &str, recency_days: i64, frequency: i64, monetary: i64) -> Values {
        Values { customer: customer.into(), recency_days, frequency, monetary }
    }

    /// NTILE as SQL defines it, by dealing rows out bucket by bucket.
    fn ntile_reference(n: usize, buckets: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        for b in 0..buckets {
            let size = n / buckets + usize::from(b < n % buckets);
            out.extend(std::iter::repeat_n((b + 1) as u8, size));
        }
        out
    }

    #[test]
    fn c2_ntile_matches_sql_for_every_size_and_boundary() {
        for n in 0..200 {
            let expected = ntile_reference(n, 5);
            let got: Vec<u8> = (0..n).map(|rank| ntile(rank, n, 5)).collect();
            assert_eq!(got, expected, "n = {n}");
        }
        // Fewer rows than buckets: 1, 2, 3 — the top tiles stay empty.
        assert_eq!((0..3).map(|r| ntile(r, 3, 5)).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn c2_ties_are_broken_by_customer_id_as_a_number() {
        // Ten customers with the same values: ids decide, 2 < 10 as numbers (not as text).
        let values: Vec<Values> =
            [10, 2, 7, 1, 9, 3, 8, 4, 6, 5].iter().map(|i| v(&i.to_string(), 5, 1, 100)).collect();
        let segs = segments(&Playbook::default_playbook()).unwrap();
        let s = score(values.clone(), &segs);
        let f_of = |id: &str| s.iter().find(|c| c.customer == id).unwrap().f;
        assert_eq!((f_of("1"), f_of("2"), f_of("3"), f_of("10")), (1, 1, 2, 5));
        // R orders by recency descending then id ascending, so among equals the lowest ids
        // get the lowest R.
        let r_of = |id: &str| s.iter().find(|c| c.customer == id).unwrap().r;
        assert_eq!((r_of("1"), r_of("10")), (1, 5));
        // A non-numeric id anywhere: ids compare as text, "10" < "2".
        let mut mixed = values.clone();
        mixed.push(v("x", 5, 1, 100));
        let s = score(mixed, &segs);
        let f_of = |id: &str| s.iter().find(|c| c.customer == id).unwrap().f;
        assert!(f_of("10") < f_of("3"), "as text, \"10\" sorts before \"3\"");
    }

    #[test]
    fn c2_most_recent_score_5_and_segments_follow_the_playbook_order() {
        let values = vec![
            v("1", 1, 9, 90_000),   // recent, frequent, big
            v("2", 400, 9, 80_000), // long ago, frequent
            v("3", 2, 1, 100),      // recent, once
            v("4", 500, 1, 50),     // long ago, once
            v("5", 30, 3, 5_000),
        ];
        let segs = segments(&Playbook::default_playbook()).unwrap();
        let s = score(values, &segs);
        let by = |id: &str| s.iter().find(|c| c.customer == id).unwrap().clone();
        // 1 and 2 order equally often: the lower id gets the lower F.
        assert_eq!((by("1").r, by("1").f, by("1").m, by("1").segment.as_str()), (5, 4, 5, "champions"));
        assert_eq!((by("2").r, by("2").f, by("2").segment.as_str()), (2, 5, "loyal"));
        assert_eq!((by("3").r, by("3").f, by("3").segment.as_str()), (4, 1, "new"));
        assert_eq!((by("4").r, by("4").f, by("4").segment.as_str()), (1, 2, "lost"));
        assert_eq!(by("5").segment, "need_attention");
        let counts = counts(&s, &segs);
        assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 5);
        assert_eq!(counts[0], ("champions".to_string(), 1));
    }

    #[test]
    fn c2_moves_count_changed_and_new_customers_only() {
        let segs = segments(&Playbook::default_playbook()).unwrap();
        let before = score(vec![v("1", 10, 1, 100), v("2", 300, 5, 9_000)], &segs);
        let now = score(vec![v("1", 40, 1, 100), v("2", 330, 5, 9_000), v("3", 1, 1, 50)], &segs);
        let m = moves(&before, &now);
        let new = m.iter().find(|x| x.from.is_none()).unwrap();
        assert_eq!((new.to.as_str(), new.customers), (now[2].segment.as_str(), 1));
        let total: usize = m.iter().map(|x| x.customers).sum();
        let changed = now
            .iter()
            .filter(|n| before.iter().find(|b| b.customer == n.customer).is_none_or(|b| b.segment != n.segment))
            .count();
        assert_eq!(total, changed);
        assert!(moves(&now, &now).is_empty(), "no change, no moves");
    }

    #[test]
    fn c2_bad_rules_name_their_key() {
        assert!(Segment::parse("x", "r>=6").is_err());
        assert!(Segment::parse("x", "q>=1").is_err());
        assert!(Segment::parse("x", "r=4").is_err());
        let s = Segment::parse("x", "R>=4 m<=2").unwrap();
        assert!(s.matches(4, 1, 2) && !s.matches(3, 5, 1) && !s.matches(5, 5, 3));
        let mut pb = Playbook::default_playbook();
        pb.customers.rfm.rules.insert("champions".into(), "r>=9".into());
        let e = segments(&pb).unwrap_err();
        assert!(e.get("customers.rfm.rules.champions").is_some(), "{e}");
        let mut pb = Playbook::default_playbook();
        pb.customers.rfm.order.push("vip".into());
        assert!(segments(&pb).unwrap_err().get("customers.rfm.order").is_some());
    }

    /// C-2: tiles are the same whether keys and ids are packed into one integer (spans under
    /// 2³²) or sorted as pairs (amounts spanning more, ids beyond), checked against a plain sort.
    #[test]
    fn c2_tiles_match_a_plain_sort_for_narrow_and_wide_amounts() {
        let mut state = 3u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        // Narrow amounts with ids under 2³² (both packed), wide amounts with larger ids.
        for (scale, first_id) in [(1_i64, 0_i64), (1 << 40, 1 << 40)] {
            let values: Vec<Values> = (0..997)
                .map(|i| {
                    let id = (first_id + 1000 - i).to_string();
                    v(&id, next(50) as i64, next(9) as i64, next(30) as i64 * scale - 7)
                })
                .collect();
            let ranks = id_ranks(&values);
            let got = tiles(&values, &ranks, |v| v.monetary);
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.sort_by_key(|&i| (values[i].monetary, values[i].customer.parse::<i64>().unwrap()));
            for (rank, &i) in order.iter().enumerate() {
                assert_eq!(got[ranks[i] as usize], ntile(rank, values.len(), 5), "scale {scale}, customer {i}");
            }
        }
    }
}
