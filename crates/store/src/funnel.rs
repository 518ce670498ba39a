//! C-5 funnel events and the funnel per channel and campaign over a period.

use crate::audit::{self, Actor, Change};
use crate::{Db, Result, Ts, on_db, on_tx};
use domain::funnel::{EventInput, Funnel, Step, reached, summarise};
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

/// The funnel of every channel and campaign from the events in [from, to) (C-5).
pub async fn report(db: &Db, from: Ts, to: Ts) -> Result<Vec<ChannelFunnel>> {
    let sql = "SELECT channel, campaign, user_key, kind, at FROM funnel_events WHERE at >= $1 AND at < $2 \
               ORDER BY channel, campaign, user_key";
    let rows: Vec<(String, String, String, String, Ts)> =
        on_db!(db, p => sqlx::query_as(sql).bind(from).bind(to).fetch_all(p).await)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let (channel, campaign) = (&rows[i].0, &rows[i].1);
        let mut counts = Vec::new();
        while i < rows.len() && rows[i].0 == *channel && rows[i].1 == *campaign {
            let user = &rows[i].2;
            let mut events = Vec::new();
            while i < rows.len() && rows[i].0 == *channel && rows[i].1 == *campaign && rows[i].2 == *user {
                if let Some(step) = Step::parse(&rows[i].3) {
                    events.push((step, rows[i].4.get().as_microsecond()));
                }
                i += 1;
            }
            counts.push(reached(&events));
        }
        let Funnel { users, step_rate_pct, biggest_drop } = summarise(counts);
        out.push(ChannelFunnel {
            channel: channel.clone(),
            campaign: campaign.clone(),
            users,
            step_rate_pct,
            biggest_drop: biggest_drop.map(|s| s.code().to_string()),
        });
    }
    Ok(out)
}
