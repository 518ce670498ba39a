//! C-5 funnel events and the funnel per channel and campaign over a period.
//!
//! Events are stored as numbers (migration 0017): each user id and each channel/campaign
//! pair once, each event as (user, pair, step, instant in µs), with one index ordered by
//! instant that holds all four so a period's events are one range of it.

use crate::audit::{self, Actor, Change};
use crate::{Db, Error, Result, Ts, Tx, on_db, on_tx};
use domain::event_batch::EventBatch;
use domain::funnel::{EventInput, Funnel, Numbered, Step, from_users};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// Rows per multi-row INSERT.
const CHUNK: usize = 1000;

/// Stores a batch of events in one transaction, with one audit entry for the batch.
pub async fn add_events(db: &Db, actor: &Actor, events: &[EventInput], label: &str) -> Result<usize> {
    add_batch(db, actor, &EventBatch::from_inputs(events), label, &|_| {}).await
}

/// Stores checked events (a file's, or a request's) in one transaction: users and
/// channel/campaign pairs not seen before are added, conversions in a running experiment's
/// campaign recorded (C-6), one audit entry written. Many events into SQLite go in through
/// its statement interface on a connection without foreign-key checks, before the index is
/// built (`bulk`).
pub async fn add_batch(
    db: &Db,
    actor: &Actor,
    batch: &EventBatch,
    label: &str,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<usize> {
    let bulk = matches!(db, Db::Sqlite(_)) && batch.len() >= crate::bulk::BULK_MIN;
    let mut tx = if bulk { db.begin_bulk(false).await? } else { db.begin().await? };
    let started = std::time::Instant::now();
    let phase = |what: &str| tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "events batch: {what}");
    let users = if bulk { user_ids_raw(&mut tx, batch).await? } else { user_ids(&mut tx, batch).await? };
    let groups = group_ids(&mut tx, batch).await?;
    phase("users and pairs numbered");
    let existing: i64 =
        on_tx!(&mut tx, c => sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM funnel_events").fetch_one(c).await)?;
    let deferred = crate::bulk::defer_indexes(&mut tx, "funnel_events", batch.len(), existing).await?;
    if bulk {
        crate::raw::with_conn(&mut tx, |conn| {
            let mut st =
                conn.prepare("INSERT INTO funnel_events (user_id, group_id, step, at_us) VALUES (?1, ?2, ?3, ?4)")?;
            for (n, r) in batch.rows.iter().enumerate() {
                st.int(1, users[r.user as usize])?;
                st.int(2, groups[r.group as usize])?;
                st.int(3, r.step as i64)?;
                st.int(4, r.at)?;
                st.run()?;
                if n % 65_536 == 65_535 {
                    progress(n + 1);
                }
            }
            Ok(())
        })
        .await?;
    } else {
        for chunk in batch.rows.chunks(CHUNK) {
            on_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO funnel_events (user_id, group_id, step, at_us) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(users[r.user as usize]).push_bind(groups[r.group as usize])
                        .push_bind(r.step as i64).push_bind(r.at);
                });
                qb.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
    }
    progress(batch.len());
    phase("events written");
    if let Some(d) = deferred {
        d.rebuild(&mut tx).await?;
        phase("index built");
    }
    crate::experiments::record_batch_tx(&mut tx, batch).await?;
    audit::record(&mut tx, actor, Change::created("event_batch", label, json!({"events": batch.len()}))).await?;
    tx.commit().await?;
    phase("committed");
    Ok(batch.len())
}

/// The stored id of each of the batch's users (by the batch's number), those not stored yet
/// added. A user added meanwhile by another writer is found by the second lookup.
async fn user_ids(tx: &mut Tx, batch: &EventBatch) -> Result<Vec<i64>> {
    let keys: Vec<&str> = batch.users.iter().map(String::as_str).collect();
    let mut ids = vec![0i64; keys.len()];
    let by_key: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let fill = |rows: Vec<(String, i64)>, ids: &mut Vec<i64>| {
        for (k, id) in rows {
            if let Some(i) = by_key.get(k.as_str()) {
                ids[*i] = id;
            }
        }
    };
    let found: Vec<(String, i64)> =
        crate::select_in!(tx, sqlx::query_as, "SELECT user_key, id FROM funnel_users WHERE user_key", keys);
    fill(found, &mut ids);
    let missing: Vec<&str> = keys.iter().zip(&ids).filter(|(_, id)| **id == 0).map(|(k, _)| *k).collect();
    for chunk in missing.chunks(CHUNK) {
        let rows: Vec<(String, i64)> = on_tx!(tx, c => {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO funnel_users (user_key) ");
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(*k);
            });
            qb.push(" ON CONFLICT (user_key) DO NOTHING RETURNING user_key, id");
            qb.build_query_as().fetch_all(c).await
        })?;
        fill(rows, &mut ids);
    }
    let raced: Vec<&str> = keys.iter().zip(&ids).filter(|(_, id)| **id == 0).map(|(k, _)| *k).collect();
    if !raced.is_empty() {
        let found: Vec<(String, i64)> =
            crate::select_in!(tx, sqlx::query_as, "SELECT user_key, id FROM funnel_users WHERE user_key", raced);
        fill(found, &mut ids);
    }
    Ok(ids)
}

/// `user_ids` for millions of users on SQLite: one insert, or a lookup when the user is
/// already stored, per user through the statement interface.
async fn user_ids_raw(tx: &mut Tx, batch: &EventBatch) -> Result<Vec<i64>> {
    crate::raw::with_conn(tx, |conn| {
        let mut add =
            conn.prepare("INSERT INTO funnel_users (user_key) VALUES (?1) ON CONFLICT (user_key) DO NOTHING")?;
        let mut find = conn.prepare("SELECT id FROM funnel_users WHERE user_key = ?1")?;
        let mut ids = Vec::with_capacity(batch.users.len());
        for key in &batch.users {
            add.text(1, key)?;
            add.run()?;
            let id = if conn.changes() == 1 {
                conn.last_rowid()
            } else {
                find.text(1, key)?;
                find.first_int()?.ok_or_else(|| Error::Other(format!("funnel user {key} vanished")))?
            };
            ids.push(id);
        }
        Ok(ids)
    })
    .await
}

/// The stored id of each of the batch's channel/campaign pairs, those not stored yet added.
async fn group_ids(tx: &mut Tx, batch: &EventBatch) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(batch.groups.len());
    for (channel, campaign) in &batch.groups {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO funnel_groups (channel, campaign) VALUES ($1, $2) ON CONFLICT (channel, campaign) DO NOTHING")
            .bind(channel).bind(campaign).execute(c).await.map(|r| r.rows_affected()))?;
        let id: i64 = on_tx!(tx, c => sqlx::query_scalar(
            "SELECT id FROM funnel_groups WHERE channel = $1 AND campaign = $2")
            .bind(channel).bind(campaign).fetch_one(c).await)?;
        ids.push(id);
    }
    Ok(ids)
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

/// The funnel of every channel and campaign from the events in [from, to) (C-5): each
/// step's moment is the earliest event of its type strictly after the previous step's
/// moment, per user (the rule `domain::funnel::reached` states; a test holds both backends
/// to it).
pub async fn report(db: &Db, from: Ts, to: Ts) -> Result<Vec<ChannelFunnel>> {
    let (from, to) = (from.get().as_microsecond(), to.get().as_microsecond());
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

/// SQLite has no hash join, and step-by-step joins cost it minutes over 10 M events; the
/// period's range of the time index (which holds every column needed) is read through the
/// statement interface, four integers per event, and counted by `domain::funnel::count`.
async fn counts_by_scan(p: &sqlx::SqlitePool, from: i64, to: i64) -> Result<Vec<(String, String, [u64; 4])>> {
    let mut c = p.acquire().await?;
    let events = crate::raw::with_sqlite(&mut c, |conn| {
        let mut st = conn.prepare(
            "SELECT user_id, group_id, step, at_us FROM funnel_events INDEXED BY funnel_events_at \
             WHERE at_us >= ?1 AND at_us < ?2",
        )?;
        st.int(1, from)?;
        st.int(2, to)?;
        let mut events = Vec::new();
        while st.next_row()? {
            let number = |v: i64| u32::try_from(v).map_err(|_| Error::Other(format!("funnel number {v} out of range")));
            events.push(Numbered {
                user: number(st.column(0))?,
                group: number(st.column(1))?,
                step: Step::ALL[(st.column(2) & 3) as usize],
                at: st.column(3),
            });
        }
        Ok(events)
    })
    .await?;
    drop(c);
    let groups = events.iter().map(|e| e.group as usize + 1).max().unwrap_or(0);
    let counts = domain::funnel::count(&events, groups);
    drop(events);
    named(&Db::Sqlite(p.clone()), counts).await
}

/// (channel, campaign, users per step) for the pairs with anyone exposed, by name.
async fn named(db: &Db, counts: Vec<[u64; 4]>) -> Result<Vec<(String, String, [u64; 4])>> {
    let pairs: Vec<(i64, String, String)> =
        on_db!(db, p => sqlx::query_as("SELECT id, channel, campaign FROM funnel_groups").fetch_all(p).await)?;
    let mut out: Vec<(String, String, [u64; 4])> = pairs
        .into_iter()
        .filter_map(|(id, channel, campaign)| {
            let c = *counts.get(usize::try_from(id).ok()?)?;
            (c[0] > 0).then_some((channel, campaign, c))
        })
        .collect();
    out.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Ok(out)
}

/// The funnel counts by SQL (PostgreSQL plans the step joins as hash joins).
async fn counts_by_sql(db: &Db, from: i64, to: i64) -> Result<Vec<(String, String, [u64; 4])>> {
    let step = |n: usize, prev: &str, kind: usize| {
        format!(
            "s{n} AS (SELECT p.group_id, p.user_id, min(e.at_us) AS t FROM {prev} p JOIN e \
             ON e.group_id = p.group_id AND e.user_id = p.user_id AND e.step = {kind} AND e.at_us > p.t \
             GROUP BY p.group_id, p.user_id)"
        )
    };
    let sql = format!(
        "WITH e AS (SELECT group_id, user_id, step, at_us FROM funnel_events WHERE at_us >= $1 AND at_us < $2), \
         s0 AS (SELECT group_id, user_id, min(at_us) AS t FROM e WHERE step = 0 GROUP BY group_id, user_id), \
         {}, {}, {} \
         SELECT s0.group_id, count(*), count(s1.t), count(s2.t), count(s3.t) FROM s0 \
         LEFT JOIN s1 ON s1.group_id = s0.group_id AND s1.user_id = s0.user_id \
         LEFT JOIN s2 ON s2.group_id = s0.group_id AND s2.user_id = s0.user_id \
         LEFT JOIN s3 ON s3.group_id = s0.group_id AND s3.user_id = s0.user_id \
         GROUP BY s0.group_id",
        step(1, "s0", Step::Click as usize),
        step(2, "s1", Step::Conversion as usize),
        step(3, "s2", Step::Repurchase as usize),
    );
    let rows: Vec<(i64, i64, i64, i64, i64)> =
        on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(from).bind(to).fetch_all(p).await)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let groups = rows.iter().map(|r| r.0 as usize + 1).max().unwrap_or(0);
    let mut counts = vec![[0u64; 4]; groups];
    for (g, a, b, c, d) in rows {
        counts[g as usize] = [n(a), n(b), n(c), n(d)];
    }
    named(db, counts).await
}
