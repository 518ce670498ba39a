//! C-7: the dashboard open to every member — the funnel, RFM segment sizes and moves, the
//! lifetime-value distribution and top customers, channel ROI from the lead engine and the
//! experiments' status, each as figures a chart and a table show and an export writes.
//! Only aggregates: a sales rep sees no lead that is not theirs here.

use super::clv::{Choice, bucket_label, fit_for};
use super::customers::{rfm_as_of, rfm_moves};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use domain::role::Action;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, Clone)]
pub struct FunnelRow {
    pub channel: String,
    pub campaign: String,
    /// Users at exposure, click, conversion, repurchase.
    pub users: [u64; 4],
}

#[derive(Serialize, Clone)]
pub struct FunnelSection {
    pub from: String,
    pub to: String,
    /// Users at each step, summed over channels and campaigns.
    pub users: [u64; 4],
    /// Conversion from the step before, percent.
    pub step_rate_pct: [Option<f64>; 4],
    pub rows: Vec<FunnelRow>,
}

#[derive(Serialize, Clone)]
pub struct SegmentRow {
    pub segment: String,
    pub customers: usize,
    pub action: String,
}

#[derive(Serialize, Clone)]
pub struct MoveRow {
    pub from: Option<String>,
    pub to: String,
    pub customers: usize,
}

#[derive(Serialize, Clone)]
pub struct RfmSection {
    pub as_of: String,
    pub moves_since: String,
    pub segments: Vec<SegmentRow>,
    pub moves: Vec<MoveRow>,
}

#[derive(Serialize, Clone)]
pub struct Bucket {
    /// Yuan; `to` absent for the last, open bucket.
    pub from: f64,
    pub to: Option<f64>,
    pub label: String,
    pub customers: usize,
}

#[derive(Serialize, Clone)]
pub struct TopCustomer {
    pub customer_id: String,
    /// Yuan.
    pub clv: f64,
    pub p_alive: f64,
    pub expected_purchases: f64,
}

#[derive(Serialize, Clone)]
pub struct ClvSection {
    pub as_of: String,
    pub customers: usize,
    /// Yuan.
    pub total_clv: f64,
    pub histogram: Vec<Bucket>,
    pub top: Vec<TopCustomer>,
    /// Warning codes of the fit (see `/analytics/clv`).
    pub warnings: Vec<String>,
}

#[derive(Serialize, Clone)]
pub struct ChannelRow {
    pub channel: String,
    pub leads: i64,
    pub conversion_pct: Option<f64>,
    pub cost_fen: i64,
    pub revenue_fen: i64,
    pub roi: Option<f64>,
    pub top: bool,
}

#[derive(Serialize, Clone)]
pub struct ChannelSection {
    pub from: String,
    pub until: String,
    pub rows: Vec<ChannelRow>,
}

#[derive(Serialize, Clone)]
pub struct ExperimentRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub users: u64,
    /// scale_winner | keep_running | stop
    pub decision: String,
    pub winner: Option<String>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct DashboardOut {
    /// Last 30 days (C-5).
    #[schema(value_type = Object)]
    pub funnel: FunnelSection,
    /// Today's segments and the moves since the playbook's period (C-2).
    #[schema(value_type = Object)]
    pub rfm: RfmSection,
    /// Today's fit under the playbook's unit (C-3).
    #[schema(value_type = Object)]
    pub clv: ClvSection,
    /// The last 90 days (L-9).
    #[schema(value_type = Object)]
    pub channels: ChannelSection,
    /// Every experiment (C-6).
    #[schema(value_type = Object)]
    pub experiments: Vec<ExperimentRow>,
    /// True when the segments and lifetime-value sections are the figures from before the
    /// latest change (an order, say), shown while they are computed again; a later view
    /// gets the new ones.
    pub refreshing: bool,
}

/// Customers listed under the lifetime-value chart.
const TOP: usize = 10;

/// Every section from the same sources the detailed pages use (and their caches).
pub async fn build(s: &AppState) -> ApiResult<DashboardOut> {
    let (from, to, funnels) = super::funnel::funnel_for(s, None, None).await?;
    let mut users = [0u64; 4];
    for f in &funnels {
        for (t, u) in users.iter_mut().zip(f.users) {
            *t += u;
        }
    }
    let step_rate_pct =
        std::array::from_fn(|k| (k > 0 && users[k - 1] > 0).then(|| users[k] as f64 * 100.0 / users[k - 1] as f64));
    let funnel = FunnelSection {
        from: from.to_string(),
        to: to.to_string(),
        users,
        step_rate_pct,
        rows: funnels
            .into_iter()
            .map(|f| FunnelRow { channel: f.channel, campaign: f.campaign, users: f.users })
            .collect(),
    };
    let (rfm, clv, refreshing) = customer_sections(s).await?;
    let report = super::reports::build(s, &domain::Fields::default()).await?;
    let channels = ChannelSection {
        from: report.from,
        until: report.until,
        rows: report
            .report
            .channels
            .into_iter()
            .map(|r| ChannelRow {
                channel: r.channel,
                leads: r.leads,
                conversion_pct: r.conversion_pct,
                cost_fen: r.cost_fen,
                revenue_fen: r.revenue_fen,
                roi: r.roi,
                top: r.top,
            })
            .collect(),
    };
    let mut experiments = Vec::new();
    for x in store::experiments::list(&s.db).await? {
        let (x, a, _) = super::experiments::with_analysis(s, x).await?;
        experiments.push(ExperimentRow {
            key: x.key,
            name: x.name,
            status: x.status,
            users: a.variants.iter().map(|v| v.users).sum(),
            decision: a.recommendation.decision.code().to_string(),
            winner: a.recommendation.winner,
        });
    }
    Ok(DashboardOut { funnel, rfm, clv, channels, experiments, refreshing })
}

/// The segments-and-moves and lifetime-value sections by (day, playbook version,
/// `store::customers::data_mark`): comparing and counting 800,000 customers' segments and
/// bucketing their values takes most of a second, and nothing changes them but an order, a
/// customer or a playbook version.
/// Kept with how long they took to compute.
pub type CustomerSectionsCache =
    super::customers::Recent<(i64, i64, (i64, i64)), (RfmSection, ClvSection, std::time::Duration)>;

impl Default for CustomerSectionsCache {
    fn default() -> Self {
        super::customers::Recent::new(2)
    }
}

/// The sections for today. After a change, when the figures took long to compute (800,000
/// customers: seconds), the previous ones for the same day and playbook are returned at
/// once, marked refreshing, while one task computes the new ones (a dashboard view stays
/// fast whatever arrives: 10 M orders, ~5 s per computation).
async fn customer_sections(s: &AppState) -> ApiResult<(RfmSection, ClvSection, bool)> {
    use std::sync::atomic::Ordering;
    let rules = s.rules.get(&s.db).await?;
    let today = super::customers::as_of_day(s, None).await?;
    let key = (domain::order::day_number(today), rules.version, store::customers::data_mark(&s.db).await?);
    if let Some(v) = s.dashboard.get(&key) {
        return Ok((v.0.clone(), v.1.clone(), false));
    }
    let slow = std::time::Duration::from_millis(s.settings.dashboard_refresh_ms);
    if let Some(old) = s.dashboard.newest_where(|k| (k.0, k.1) == (key.0, key.1)).filter(|v| v.2 >= slow) {
        if !s.dashboard_refreshing.swap(true, Ordering::AcqRel) {
            let s2 = s.clone();
            tokio::spawn(async move {
                if let Err(e) = compute_sections(&s2, key).await {
                    tracing::warn!(error = ?e, "dashboard sections not refreshed");
                }
                s2.dashboard_refreshing.store(false, Ordering::Release);
            });
        }
        return Ok((old.0.clone(), old.1.clone(), true));
    }
    let v = compute_sections(s, key).await?;
    Ok((v.0.clone(), v.1.clone(), false))
}

/// Computes the sections for `key` and keeps them.
async fn compute_sections(
    s: &AppState,
    key: (i64, i64, (i64, i64)),
) -> ApiResult<std::sync::Arc<(RfmSection, ClvSection, std::time::Duration)>> {
    let started = std::time::Instant::now();
    let (day, _, counts, scored) = rfm_as_of(s, None).await?;
    let (since, moves) = rfm_moves(s, day, &scored).await?;
    let rfm = RfmSection {
        as_of: day.to_string(),
        moves_since: since.to_string(),
        segments: counts
            .into_iter()
            .map(|c| SegmentRow { segment: c.segment, customers: c.customers, action: c.action })
            .collect(),
        moves: moves.into_iter().map(|m| MoveRow { from: m.from, to: m.to, customers: m.customers }).collect(),
    };
    let fit = fit_for(s, &Choice::default()).await?;
    let predicted = fit.predicted();
    let clv = ClvSection {
        as_of: fit.as_of.to_string(),
        customers: predicted.len(),
        total_clv: predicted.iter().map(|(_, p)| p.clv).sum(),
        histogram: fit
            .histogram()
            .into_iter()
            .map(|(lo, hi, c)| Bucket {
                from: lo,
                to: hi.is_finite().then_some(hi),
                label: bucket_label(lo, hi),
                customers: c,
            })
            .collect(),
        top: fit
            .top(TOP)
            .into_iter()
            .map(|(r, p)| TopCustomer {
                customer_id: r.customer_id.clone(),
                clv: p.clv,
                p_alive: p.p_alive,
                expected_purchases: p.expected_purchases,
            })
            .collect(),
        warnings: fit.model.warnings.iter().map(|w| w.code.to_string()).collect(),
    };
    let v = std::sync::Arc::new((rfm, clv, started.elapsed()));
    s.dashboard.put(key, v.clone());
    Ok(v)
}

/// The dashboard's figures (C-7), for every member.
#[utoipa::path(get, path = "/dashboard", tag = "customers", responses((status = 200, body = DashboardOut)))]
pub async fn dashboard(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<DashboardOut>> {
    u.require(Action::ViewCustomers)?;
    Ok(Json(build(&s).await?))
}

/// One section as CSV rows (header first): funnel, segments, moves, clv, top_customers,
/// channels or experiments.
pub fn csv(d: &DashboardOut, section: &str) -> Result<Vec<Vec<String>>, ApiError> {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_default();
    let yuan = |fen: i64| domain::money::Money(fen).decimal();
    let rows: Vec<Vec<String>> = match section {
        "funnel" => std::iter::once(
            ["channel", "campaign", "exposure", "click", "conversion", "repurchase"].map(String::from).to_vec(),
        )
        .chain(d.funnel.rows.iter().map(|r| {
            [r.channel.clone(), r.campaign.clone()].into_iter().chain(r.users.iter().map(u64::to_string)).collect()
        }))
        .collect(),
        "segments" => std::iter::once(["segment", "customers", "action"].map(String::from).to_vec())
            .chain(d.rfm.segments.iter().map(|r| vec![r.segment.clone(), r.customers.to_string(), r.action.clone()]))
            .collect(),
        "moves" => std::iter::once(["from", "to", "customers"].map(String::from).to_vec())
            .chain(
                d.rfm
                    .moves
                    .iter()
                    .map(|m| vec![m.from.clone().unwrap_or_default(), m.to.clone(), m.customers.to_string()]),
            )
            .collect(),
        "clv" => std::iter::once(["from_yuan", "to_yuan", "customers"].map(String::from).to_vec())
            .chain(d.clv.histogram.iter().map(|b| vec![format!("{:.2}", b.from), opt(b.to), b.customers.to_string()]))
            .collect(),
        "top_customers" => {
            std::iter::once(["customer_id", "clv_yuan", "p_alive", "expected_purchases"].map(String::from).to_vec())
                .chain(d.clv.top.iter().map(|t| {
                    vec![
                        t.customer_id.clone(),
                        format!("{:.2}", t.clv),
                        format!("{:.4}", t.p_alive),
                        format!("{:.4}", t.expected_purchases),
                    ]
                }))
                .collect()
        }
        "channels" => {
            std::iter::once(["channel", "leads", "conversion_pct", "cost", "revenue", "roi"].map(String::from).to_vec())
                .chain(d.channels.rows.iter().map(|r| {
                    vec![
                        r.channel.clone(),
                        r.leads.to_string(),
                        opt(r.conversion_pct),
                        yuan(r.cost_fen),
                        yuan(r.revenue_fen),
                        opt(r.roi),
                    ]
                }))
                .collect()
        }
        "experiments" => {
            std::iter::once(["key", "name", "status", "users", "decision", "winner"].map(String::from).to_vec())
                .chain(d.experiments.iter().map(|x| {
                    vec![
                        x.key.clone(),
                        x.name.clone(),
                        x.status.clone(),
                        x.users.to_string(),
                        x.decision.clone(),
                        x.winner.clone().unwrap_or_default(),
                    ]
                }))
                .collect()
        }
        _ => return Err(ApiError::NotFound),
    };
    Ok(rows)
}
