//! Figures for reports, aggregated in SQL (L-9).

use crate::{Db, Result, Ts, on_db};
use domain::report::Figures;
use std::collections::BTreeMap;

/// Which capture of a lead a won deal's revenue is credited to (L-8 keeps both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    FirstTouch,
    LastTouch,
}

type Key = (String, Option<i64>);

/// A report period: instants for events, civil days for ledger entries (both half-open).
#[derive(Debug, Clone)]
pub struct Period {
    pub from: Ts,
    pub until: Ts,
    /// YYYY-MM-DD, first day included.
    pub from_day: String,
    /// YYYY-MM-DD, first day not included.
    pub until_day: String,
}

/// L-9 figures per (channel, campaign) for a period: leads created and their grades, how
/// many of them closed won, money spent, and won revenue attributed by `attribution`.
pub async fn channel_figures(db: &Db, period: &Period, attribution: Attribution) -> Result<BTreeMap<Key, Figures>> {
    let (from, until) = (period.from, period.until);
    let mut out: BTreeMap<Key, Figures> = BTreeMap::new();
    let grades: Vec<(String, Option<i64>, String, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT channel, campaign_id, grade, CAST(COUNT(*) AS BIGINT) FROM leads WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY channel, campaign_id, grade"
    ).bind(from).bind(until).fetch_all(p).await)?;
    for (ch, camp, grade, n) in grades {
        let f = out.entry((ch, camp)).or_default();
        f.leads += n;
        match grade.as_str() {
            "A" => f.grade_a += n,
            "B" => f.grade_b += n,
            _ => f.grade_c += n,
        }
    }
    let converted: Vec<(String, Option<i64>, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT l.channel, l.campaign_id, CAST(COUNT(*) AS BIGINT) FROM leads l JOIN deals d ON d.lead_id = l.id \
         WHERE d.stage = 'closed_won' AND l.created_at >= $1 AND l.created_at < $2 GROUP BY l.channel, l.campaign_id"
    ).bind(from).bind(until).fetch_all(p).await)?;
    for (ch, camp, n) in converted {
        out.entry((ch, camp)).or_default().converted += n;
    }
    let cost: Vec<(String, Option<i64>, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT c.channel, c.id, CAST(SUM(s.amount_fen) AS BIGINT) FROM spend_entries s JOIN campaigns c ON c.id = s.campaign_id \
         WHERE s.spent_on >= $1 AND s.spent_on < $2 GROUP BY c.channel, c.id"
    ).bind(&period.from_day).bind(&period.until_day).fetch_all(p).await)?;
    for (ch, camp, fen) in cost {
        out.entry((ch, camp)).or_default().cost_fen += fen;
    }
    let sql = match attribution {
        Attribution::FirstTouch => {
            "SELECT first_channel, first_campaign_id, CAST(COUNT(*) AS BIGINT), CAST(SUM(amount_fen) AS BIGINT), \
            CAST(COALESCE(SUM(cycle_days), 0) AS BIGINT) FROM deals WHERE stage = 'closed_won' AND closed_at >= $1 AND closed_at < $2 \
            GROUP BY first_channel, first_campaign_id"
        }
        Attribution::LastTouch => {
            "SELECT last_channel, last_campaign_id, CAST(COUNT(*) AS BIGINT), CAST(SUM(amount_fen) AS BIGINT), \
            CAST(COALESCE(SUM(cycle_days), 0) AS BIGINT) FROM deals WHERE stage = 'closed_won' AND closed_at >= $1 AND closed_at < $2 \
            GROUP BY last_channel, last_campaign_id"
        }
    };
    let won: Vec<(String, Option<i64>, i64, i64, i64)> =
        on_db!(db, p => sqlx::query_as(sql).bind(from).bind(until).fetch_all(p).await)?;
    for (ch, camp, n, revenue, cycle) in won {
        let f = out.entry((ch, camp)).or_default();
        f.won_deals += n;
        f.revenue_fen += revenue;
        f.cycle_days_sum += cycle;
    }
    Ok(out)
}

/// L-7: the leads handed to sales in the period, with whether they closed won and the
/// reason sales gave if it rejected them.
pub async fn review_leads(db: &Db, period: &Period) -> Result<Vec<domain::report::ReviewLead>> {
    /// id, total, the four part points, the deal stage.
    type Row = (i64, i64, i64, i64, i64, i64, Option<String>);
    let rows: Vec<Row> = on_db!(db, p => sqlx::query_as(
        "SELECT l.id, l.total, l.budget_points, l.authority_points, l.need_points, l.timeline_points, d.stage \
         FROM leads l LEFT JOIN deals d ON d.lead_id = l.id WHERE l.assigned_at >= $1 AND l.assigned_at < $2 ORDER BY l.id"
    ).bind(period.from).bind(period.until).fetch_all(p).await)?;
    let rejections: Vec<(i64, serde_json::Value)> = on_db!(db, p => sqlx::query_as(
        "SELECT e.lead_id, e.data FROM lead_events e JOIN leads l ON l.id = e.lead_id WHERE e.kind = 'rejected' \
         AND l.assigned_at >= $1 AND l.assigned_at < $2 ORDER BY e.id"
    ).bind(period.from).bind(period.until).fetch_all(p).await)?;
    let reasons: std::collections::HashMap<i64, String> =
        rejections.into_iter().map(|(id, d)| (id, d["reason"].as_str().unwrap_or("").to_string())).collect();
    Ok(rows
        .into_iter()
        .map(|(id, total, b, a, n, t, stage)| domain::report::ReviewLead {
            total,
            parts: [b, a, n, t],
            won: stage.as_deref() == Some("closed_won"),
            rejected: reasons.get(&id).cloned(),
        })
        .collect())
}
