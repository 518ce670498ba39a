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
    Ok(rows
        .into_iter()
        .map(|(channel, campaign, a, b, c, d)| {
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            let Funnel { users, step_rate_pct, biggest_drop } = from_users([n(a), n(b), n(c), n(d)]);
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
