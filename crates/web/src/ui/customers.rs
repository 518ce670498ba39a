//! Customer pages (C-1, C-2): RFM segments with their playbook actions and the top
//! customers as of a date; a customer with its orders, aggregates and scores.

use super::{Ctx, internal};
use crate::AppState;
use crate::api::customers::{SegmentCount, order_out, rfm_as_of, rfm_moves};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use domain::money::Money;
use domain::order::date_of;
use domain::rfm::Scored;
use domain::role::Action;

/// Customers shown under the segments, by amount.
const TOP: usize = 50;

pub struct SegmentRow {
    name: String,
    label: String,
    customers: usize,
    share: String,
    action: String,
}

pub struct MoveRow {
    from: String,
    to: String,
    customers: usize,
}

pub struct CustomerRow {
    id: String,
    recency_days: i64,
    frequency: i64,
    monetary: String,
    r: u8,
    f: u8,
    m: u8,
    segment: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "customers.html")]
pub struct ListPage {
    ctx: Ctx,
    as_of: String,
    error: String,
    total: usize,
    playbook_version: i64,
    segments: Vec<SegmentRow>,
    moves_since: String,
    moves: Vec<MoveRow>,
    top: Vec<CustomerRow>,
}

fn yuan(fen: i64) -> String {
    format!("¥{}", Money(fen).format_plain())
}

fn segment_rows(ctx: &Ctx, counts: Vec<SegmentCount>, total: usize) -> Vec<SegmentRow> {
    counts
        .into_iter()
        .map(|c| SegmentRow {
            label: ctx.i18n.code_label("segment", &c.segment),
            share: if total == 0 { "–".into() } else { format!("{:.1}%", c.customers as f64 * 100.0 / total as f64) },
            name: c.segment,
            customers: c.customers,
            action: c.action,
        })
        .collect()
}

fn customer_row(ctx: &Ctx, c: &Scored) -> CustomerRow {
    CustomerRow {
        id: c.customer.clone(),
        recency_days: c.recency_days,
        frequency: c.frequency,
        monetary: yuan(c.monetary),
        r: c.r,
        f: c.f,
        m: c.m,
        segment: ctx.i18n.code_label("segment", &c.segment),
    }
}

/// The analytics could not be computed (a database error, or a playbook whose segment
/// rules do not hold — which its validation prevents).
fn failed(ctx: &Ctx, e: crate::error::ApiError) -> Response {
    tracing::error!(error = ?e, "customer analytics failed");
    ctx.error_page(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "error-internal")
}

#[derive(serde::Deserialize)]
pub struct AsOf {
    as_of: Option<String>,
}

pub async fn list(State(s): State<AppState>, ctx: Ctx, Query(q): Query<AsOf>) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let (as_of, error, loaded) = match rfm_as_of(&s, q.as_of.as_deref()).await {
        Ok(x) => (x.0.to_string(), String::new(), x),
        Err(crate::error::ApiError::Invalid(e)) => {
            let message = e.get("as_of").map(|m| ctx.i18n.problem(m)).unwrap_or_default();
            match rfm_as_of(&s, None).await {
                Ok(x) => (q.as_of.clone().unwrap_or_default(), message, x),
                Err(e) => return failed(&ctx, e),
            }
        }
        Err(e) => return failed(&ctx, e),
    };
    let (day, playbook_version, counts, scored) = loaded;
    let (since, moves) = match rfm_moves(&s, day, &scored).await {
        Ok(x) => x,
        Err(e) => return failed(&ctx, e),
    };
    let moves = moves
        .into_iter()
        .map(|m| MoveRow {
            from: m.from.map(|f| ctx.i18n.code_label("segment", &f)).unwrap_or_else(|| ctx.t("customers-move-new")),
            to: ctx.i18n.code_label("segment", &m.to),
            customers: m.customers,
        })
        .collect();
    let total = scored.len();
    let segments = segment_rows(&ctx, counts, total);
    let by_amount = |a: &&Scored, b: &&Scored| b.monetary.cmp(&a.monetary).then_with(|| a.customer.cmp(&b.customer));
    let mut by_spend: Vec<&Scored> = scored.iter().collect();
    // Only the top few are shown: select them, then sort those.
    if by_spend.len() > TOP {
        by_spend.select_nth_unstable_by(TOP, by_amount);
        by_spend.truncate(TOP);
    }
    by_spend.sort_unstable_by(by_amount);
    let top = by_spend.into_iter().take(TOP).map(|c| customer_row(&ctx, c)).collect();
    ListPage { ctx, as_of, error, total, playbook_version, segments, moves_since: since.to_string(), moves, top }
        .into_response()
}

pub struct OrderRow {
    id: String,
    date: String,
    amount: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "customer.html")]
pub struct CustomerPage {
    ctx: Ctx,
    id: String,
    name: String,
    first_order: String,
    last_order: String,
    order_count: i64,
    monetary: String,
    as_of: String,
    scores: Option<CustomerRow>,
    action: String,
    orders: Vec<OrderRow>,
}

pub async fn show(State(s): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let customer = match store::customers::get(&s.db, &id).await {
        Ok(Some(c)) => c,
        Ok(None) => return ctx.error_page(axum::http::StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => return internal(&ctx, e),
    };
    let orders = match store::customers::orders_of(&s.db, customer.id, 100).await {
        Ok(o) => o,
        Err(e) => return internal(&ctx, e),
    };
    let (day, _, counts, scored) = match rfm_as_of(&s, None).await {
        Ok(x) => x,
        Err(e) => return failed(&ctx, e),
    };
    let mine = scored.iter().find(|c| c.customer == customer.external_id);
    let action =
        mine.and_then(|m| counts.iter().find(|c| c.segment == m.segment)).map(|c| c.action.clone()).unwrap_or_default();
    let day_text = |d: Option<i64>| d.map(|d| date_of(d).to_string()).unwrap_or_default();
    CustomerPage {
        scores: mine.map(|m| customer_row(&ctx, m)),
        action,
        as_of: day.to_string(),
        id: customer.external_id,
        name: customer.name.unwrap_or_default(),
        first_order: day_text(customer.first_order_day),
        last_order: day_text(customer.last_order_day),
        order_count: customer.order_count,
        monetary: yuan(customer.monetary_fen),
        orders: orders
            .iter()
            .map(order_out)
            .map(|o| OrderRow { id: o.order_id, date: o.order_date, amount: format!("¥{}", o.amount) })
            .collect(),
        ctx,
    }
    .into_response()
}

pub struct FunnelRow {
    channel: String,
    campaign: String,
    /// (users, rate from the step before, is this the biggest drop)
    steps: Vec<(u64, String, bool)>,
    index: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "funnel.html")]
pub struct FunnelPage {
    ctx: Ctx,
    from: String,
    to: String,
    from_error: String,
    to_error: String,
    query: String,
    rows: Vec<FunnelRow>,
}

#[derive(serde::Deserialize)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// C-5: the funnel per channel and campaign for a period, as a table and ECharts funnels,
/// the biggest drop-off of each highlighted.
pub async fn funnel(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Period>) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let (mut from_error, mut to_error) = (String::new(), String::new());
    let loaded = match crate::api::funnel::funnel_for(&s, q.from.as_deref(), q.to.as_deref()).await {
        Err(crate::error::ApiError::Invalid(e)) => {
            from_error = e.get("from").map(|m| ctx.i18n.problem(m)).unwrap_or_default();
            to_error = e.get("to").map(|m| ctx.i18n.problem(m)).unwrap_or_default();
            crate::api::funnel::funnel_for(&s, None, None).await
        }
        other => other,
    };
    let (from, to, funnels) = match loaded {
        Ok(x) => x,
        Err(e) => return failed(&ctx, e),
    };
    let rows = funnels
        .into_iter()
        .enumerate()
        .map(|(index, f)| FunnelRow {
            channel: ctx.i18n.code_label("channel", &f.channel),
            campaign: f.campaign,
            steps: (0..4)
                .map(|k| {
                    let rate = f.step_rate_pct[k].map(|r| format!("{r:.1}%")).unwrap_or_default();
                    let drop = f.biggest_drop.as_deref() == Some(domain::funnel::Step::ALL[k].code());
                    (f.users[k], rate, drop)
                })
                .collect(),
            index,
        })
        .collect();
    let query = format!("from={from}&to={to}");
    FunnelPage {
        from: if from_error.is_empty() { from.to_string() } else { q.from.unwrap_or_default() },
        to: if to_error.is_empty() { to.to_string() } else { q.to.unwrap_or_default() },
        ctx,
        from_error,
        to_error,
        query,
        rows,
    }
    .into_response()
}
