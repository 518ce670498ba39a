//! C-5 funnel events and the funnel per channel and campaign over a period.

use crate::audit::{self, Actor, Change};
use crate::{Db, Result, Ts, on_db, on_tx};
use domain::funnel::{EventInput, Funnel, Step, from_users};
use serde::Serialize;
use serde_json::json;

/// Rows per multi-row INSERT (5 columns).
const CHUNK: usize = 1000;

/// Stores a batch of events in one transaction, with one audit entry for the batch.
pub async fn add_events(db: &Db, actor: &Actor, events: &[EventInput], label: &str) -> Result<usize> {
    let mut tx = db.begin().await?;
    for chunk in events.chunks(CHUNK) {
        on_tx!(&mut tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO funnel_events (user_key, channel, campaign, kind, at) ");
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(e.user.clone()).push_bind(e.channel.clone()).push_bind(e.campaign.clone())
                    .push_bind(e.step.code()).push_bind(Ts::new(e.at));
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    crate::experiments::record_events_tx(&mut tx, events).await?;
    audit::record(&mut tx, actor, Change::created("event_batch", label, json!({"events": events.len()}))).await?;
    tx.commit().await?;
    Ok(events.len())
}

/// Changes whenever an event is added (events are never changed): the largest id.
pub async fn data_mark(db: &Db) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM funnel_events").fetch_one(p).await)?)
}

/// Whether any event is stored.
pub async fn any(db: &Db) -> Result<bool> {
    Ok(on_db!(db, p => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM funnel_events)").fetch_one(p).await)?)
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelFunnel {
    pub channel: String,
    /// Empty for events without a campaign.
    pub campaign: String,
    /// Users at exposure, click, conversion, repurchase.
    pub users: [u64; 4],
    /// Conversion from the step before, percent (none for the first step).
    pub step_rate_pct: [Option<f64>; 4],
    /// The step losing the most users against the one before.
    pub biggest_drop: Option<String>,
}

/// The funnel of every channel and campaign from the events in [from, to) (C-5): users per
/// step computed in the database — each step's moment is the earliest event of its type
/// strictly after the previous step's moment, per user (the rule `domain::funnel::reached`
/// states; a test holds the two to the same answers) — so only one row per channel and
/// campaign leaves the database.
pub async fn report(db: &Db, from: Ts, to: Ts) -> Result<Vec<ChannelFunnel>> {
    let rows = match db {
        Db::Sqlite(p) => counts_by_scan(p, from, to).await?,
        Db::Postgres(_) => counts_by_sql(db, from, to).await?,
    };
    Ok(rows
        .into_iter()
        .map(|(channel, campaign, counts)| {
            let Funnel { users, step_rate_pct, biggest_drop } = from_users(counts);
            ChannelFunnel {
                channel,
                campaign,
                users,
                step_rate_pct,
                biggest_drop: biggest_drop.map(|s| s.code().to_string()),
            }
        })
        .collect())
}

/// Events read per packed chunk.
const SCAN_CHUNK: i64 = 500_000;

/// SQLite has no hash join, and the step-by-step joins below cost it minutes over 10 M
/// events; one pass in time order per user does the same: events come out packed by id
/// range, users and channel/campaign pairs become integers, a sort puts each user's events
/// in time order, and a walk advances a user a step at the first event of the next type
/// strictly after the moment of the step before (stored instants are fixed-width text, so
/// their digits order them).
async fn counts_by_scan(p: &sqlx::SqlitePool, from: Ts, to: Ts) -> Result<Vec<(String, String, [u64; 4])>> {
    use std::collections::HashMap;
    type Fast<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;
    let (lo, hi): (i64, i64) =
        sqlx::query_as("SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM funnel_events").fetch_one(p).await?;
    // channel → campaign → group: looked up by &str, so a known pair costs no allocation.
    let mut groups: Fast<String, Fast<String, u32>> = Fast::default();
    let mut group_count = 0u32;
    let mut users: Fast<String, u32> = Fast::default();
    // (group << 32 | user, instant, step)
    let mut events: Vec<(u64, u64, u8)> = Vec::new();
    // The next chunk is read by SQLite's thread while this one is parsed here.
    let fetch = |start: i64| {
        let p = p.clone();
        tokio::spawn(async move {
            let end = (start + SCAN_CHUNK).min(hi);
            let packed: Option<String> = sqlx::query_scalar(
                "SELECT group_concat(channel || char(31) || campaign || char(31) || user_key || char(31) || kind \
                 || char(31) || at, char(10)) FROM funnel_events WHERE id > $1 AND id <= $2 AND at >= $3 AND at < $4",
            )
            .bind(start)
            .bind(end)
            .bind(from)
            .bind(to)
            .fetch_one(&p)
            .await?;
            Ok::<_, sqlx::Error>((end, packed))
        })
    };
    let mut next = (lo - 1 < hi).then(|| fetch(lo - 1));
    while let Some(pending) = next.take() {
        let (end, packed) = pending.await.map_err(|e| crate::Error::Other(e.to_string()))??;
        if end < hi {
            next = Some(fetch(end));
        }
        for line in packed.as_deref().unwrap_or("").split('\n').filter(|l| !l.is_empty()) {
            let mut f = line.split('\u{1f}');
            let (Some(channel), Some(campaign), Some(user), Some(kind), Some(at)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return Err(crate::Error::Other(format!("unreadable funnel event `{line}`")));
            };
            let Some(step) = Step::ALL.iter().position(|s| s.code() == kind) else { continue };
            let g = match groups.get(channel).and_then(|c| c.get(campaign)) {
                Some(g) => *g,
                None => {
                    groups.entry(channel.to_string()).or_default().insert(campaign.to_string(), group_count);
                    group_count += 1;
                    group_count - 1
                }
            };
            let n = users.len() as u32;
            let u = match users.get(user) {
                Some(u) => *u,
                None => *users.entry(user.to_string()).or_insert(n),
            };
            events.push((u64::from(g) << 32 | u64::from(u), domain::funnel::instant_micros(at), step as u8));
        }
    }
    events.sort_unstable();
    let mut counts = vec![[0u64; 4]; group_count as usize];
    let mut i = 0;
    while i < events.len() {
        let key = events[i].0;
        let (mut step, mut moment) = (0usize, 0u64);
        while i < events.len() && events[i].0 == key {
            let (_, at, kind) = events[i];
            if step < 4 && usize::from(kind) == step && (step == 0 || at > moment) {
                counts[(key >> 32) as usize][step] += 1;
                step += 1;
                moment = at;
            }
            i += 1;
        }
    }
    let mut out: Vec<(String, String, [u64; 4])> = groups
        .into_iter()
        .flat_map(|(channel, campaigns)| campaigns.into_iter().map(move |(campaign, g)| (channel.clone(), campaign, g)))
        .filter(|(_, _, g)| counts[*g as usize][0] > 0)
        .map(|(channel, campaign, g)| (channel, campaign, counts[g as usize]))
        .collect();
    out.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Ok(out)
}

/// FNV-1a for the interning maps: user ids are short strings, and SipHash's protection
/// against chosen keys buys nothing in a one-off count (it was 9 % of the time).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The funnel counts by SQL (PostgreSQL plans the step joins as hash joins).
async fn counts_by_sql(db: &Db, from: Ts, to: Ts) -> Result<Vec<(String, String, [u64; 4])>> {
    let step = |n: usize, prev: &str, kind: &str| {
        format!(
            "s{n} AS (SELECT p.channel, p.campaign, p.user_key, min(e.at) AS t FROM {prev} p JOIN e \
             ON e.channel = p.channel AND e.campaign = p.campaign AND e.user_key = p.user_key \
             AND e.kind = '{kind}' AND e.at > p.t GROUP BY p.channel, p.campaign, p.user_key)"
        )
    };
    let sql = format!(
        "WITH e AS (SELECT channel, campaign, user_key, kind, at FROM funnel_events WHERE at >= $1 AND at < $2), \
         s0 AS (SELECT channel, campaign, user_key, min(at) AS t FROM e WHERE kind = 'exposure' \
                GROUP BY channel, campaign, user_key), {}, {}, {} \
         SELECT s0.channel, s0.campaign, count(*), count(s1.t), count(s2.t), count(s3.t) FROM s0 \
         LEFT JOIN s1 ON s1.channel = s0.channel AND s1.campaign = s0.campaign AND s1.user_key = s0.user_key \
         LEFT JOIN s2 ON s2.channel = s0.channel AND s2.campaign = s0.campaign AND s2.user_key = s0.user_key \
         LEFT JOIN s3 ON s3.channel = s0.channel AND s3.campaign = s0.campaign AND s3.user_key = s0.user_key \
         GROUP BY s0.channel, s0.campaign ORDER BY s0.channel, s0.campaign",
        step(1, "s0", Step::Click.code()),
        step(2, "s1", Step::Conversion.code()),
        step(3, "s2", Step::Repurchase.code()),
    );
    let rows: Vec<(String, String, i64, i64, i64, i64)> =
        on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(from).bind(to).fetch_all(p).await)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(rows.into_iter().map(|(channel, campaign, a, b, c, d)| (channel, campaign, [n(a), n(b), n(c), n(d)])).collect())
}
