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
pub(super) fn failed(ctx: &Ctx, e: crate::error::ApiError) -> Response {
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
    /// (id, plan, start, end, MRR) of its subscriptions, newest first.
    subscriptions: Vec<(String, String, String, String, String)>,
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
    /// C-3 predictions under the playbook's unit and periods, when the models could be fitted.
    value: Option<ValueView>,
    /// C-4: its code, who referred it, whom it referred.
    referral: store::referrals::OfCustomer,
}

pub struct ValueView {
    periods: String,
    unit: String,
    expected_purchases: String,
    p_alive: String,
    order_value: String,
    clv: String,
    horizon_months: u32,
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
    // The page still shows orders and scores when the models cannot be fitted.
    let value = match crate::api::clv::fit_for(&s, &crate::api::clv::Choice::default()).await {
        Ok(fit) => fit.row(&customer.external_id).and_then(|r| r.prediction).map(|p| ValueView {
            periods: format!("{}", fit.settings.periods),
            unit: ctx.i18n.code_label("clv-unit", fit.settings.unit.name()),
            expected_purchases: format!("{:.2}", p.expected_purchases),
            p_alive: format!("{:.1}%", p.p_alive * 100.0),
            order_value: format!("¥{:.2}", p.expected_order_value),
            clv: format!("¥{:.2}", p.clv),
            horizon_months: fit.settings.horizon_months,
        }),
        Err(e) => {
            tracing::warn!(error = ?e, "lifetime value not available");
            None
        }
    };
    let referral = match store::referrals::of_customer(&s.db, customer.id).await {
        Ok(r) => r,
        Err(e) => return internal(&ctx, e),
    };
    let subscriptions = match store::subscriptions::of_customer(&s.db, customer.id).await {
        Ok(v) => v
            .into_iter()
            .map(|x| {
                let end = day_text(x.end_day);
                (x.subscription_id, x.plan, date_of(x.start_day).to_string(), end, yuan(x.mrr_fen))
            })
            .collect(),
        Err(e) => return internal(&ctx, e),
    };
    CustomerPage {
        subscriptions,
        referral,
        value,
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

/// One fitted parameter with its standard error.
pub struct ParamRow {
    name: &'static str,
    value: String,
    se: String,
}

pub struct ModelView {
    params: Vec<ParamRow>,
    log_likelihood: String,
    iterations: usize,
    converged: bool,
    customers: usize,
}

pub struct ValueRow {
    id: String,
    frequency: u32,
    expected_purchases: String,
    p_alive: String,
    order_value: String,
    clv: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "clv.html")]
pub struct ClvPage {
    ctx: Ctx,
    as_of: String,
    unit: String,
    periods: String,
    /// field → message, shown beside the field.
    errors: std::collections::BTreeMap<String, String>,
    query: String,
    playbook_version: i64,
    horizon_months: u32,
    annual_discount_pct: String,
    /// (title, fitted model): BG/NBD and Gamma-Gamma where they could be fitted.
    models: Vec<(String, ModelView)>,
    correlation: String,
    warnings: Vec<String>,
    customers: usize,
    total_clv: String,
    mean_p_alive: String,
    expected_purchases: String,
    /// (bucket label, customers) for the table and the chart.
    histogram: Vec<(String, usize)>,
    histogram_json: String,
    top: Vec<ValueRow>,
    /// Historical value (C-3): the horizons in months, then (key, customers, to date, per
    /// horizon) per cohort and per channel.
    ltv_horizons: Vec<i64>,
    /// (title, element id, rows): by channel, then by cohort.
    ltv_tables: Vec<(String, &'static str, Vec<LtvRow>)>,
    /// Per cohort from orders, and from subscriptions' recurring revenue.
    retention: Vec<RetentionRow>,
    subscriptions: Vec<RetentionRow>,
}

/// (cohort, customers, retention at 1/3/6/12 months, NDR at the same months, renewal).
type RetentionRow = (String, i64, Vec<String>, Vec<String>, String);

pub struct LtvRow {
    key: String,
    customers: i64,
    to_date: String,
    at: Vec<String>,
}

fn ltv_rows(rows: &[domain::ltv::Row], label: impl Fn(&str) -> String) -> Vec<LtvRow> {
    rows.iter()
        .map(|r| LtvRow {
            key: label(&r.key),
            customers: r.customers,
            to_date: yuan(r.ltv_fen),
            at: r.ltv_at_fen.iter().map(|v| v.map(yuan).unwrap_or_else(|| "–".into())).collect(),
        })
        .collect()
}

fn model_view<P: serde::Serialize>(f: &domain::clv::Fitted<P>, names: &[&'static str]) -> ModelView {
    let params = serde_json::to_value(&f.params).unwrap_or_default();
    let se = serde_json::to_value(&f.standard_errors).unwrap_or_default();
    let number = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
    ModelView {
        params: names.iter().map(|n| ParamRow { name: n, value: number(&params[*n]), se: number(&se[*n]) }).collect(),
        log_likelihood: format!("{:.2}", f.log_likelihood),
        iterations: f.iterations,
        converged: f.converged,
        customers: f.customers,
    }
}

/// Customers shown by lifetime value.
const TOP_VALUE: usize = 20;

/// C-3: the fitted lifetime-value models, their warnings, the CLV distribution (chart and
/// table) and the most valuable customers, for a chosen date, unit and period.
pub async fn clv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    use crate::api::clv::{Choice, fit_for};
    let _u = allowed!(ctx, Action::ViewCustomers);
    let raw: std::collections::HashMap<String, String> = q.iter().cloned().collect();
    let mut errors = std::collections::BTreeMap::new();
    let choice = Choice::from_query(q.clone());
    let loaded = match choice {
        Ok(c) => fit_for(&s, &c).await,
        Err(e) => Err(crate::error::ApiError::Invalid(e)),
    };
    let fit = match loaded {
        Ok(f) => f,
        Err(crate::error::ApiError::Invalid(e)) => {
            for (k, m) in e.0 {
                errors.insert(k, ctx.i18n.problem(&m));
            }
            match fit_for(&s, &Choice::default()).await {
                Ok(f) => f,
                Err(e) => return failed(&ctx, e),
            }
        }
        Err(e) => return failed(&ctx, e),
    };
    let shown = |k: &str, fallback: String| raw.get(k).filter(|_| errors.contains_key(k)).cloned().unwrap_or(fallback);
    let predictions = fit.predicted();
    let n = predictions.len();
    let total: f64 = predictions.iter().map(|(_, p)| p.clv).sum();
    let histogram: Vec<(String, usize)> =
        fit.histogram().into_iter().map(|(lo, hi, c)| (crate::api::clv::bucket_label(lo, hi), c)).collect();
    let histogram_json = serde_json::json!({
        "labels": histogram.iter().map(|h| h.0.clone()).collect::<Vec<_>>(),
        "values": histogram.iter().map(|h| h.1).collect::<Vec<_>>(),
    })
    .to_string();
    let money = |yuan: f64| format!("¥{yuan:.2}");
    let top = fit
        .top(TOP_VALUE)
        .iter()
        .map(|(r, p)| ValueRow {
            id: r.customer_id.clone(),
            frequency: r.history.x,
            expected_purchases: format!("{:.2}", p.expected_purchases),
            p_alive: format!("{:.1}%", p.p_alive * 100.0),
            order_value: money(p.expected_order_value),
            clv: money(p.clv),
        })
        .collect();
    let warnings = fit
        .model
        .warnings
        .iter()
        .map(|w| {
            ctx.i18n.t_args(&format!("clv-warning-{}", w.code.replace('_', "-")), &[("detail", w.detail.as_str())])
        })
        .collect();
    let (ltv, retention, subscriptions) = match crate::api::clv::ltv_report(&s).await {
        Ok(l) => (l.report, l.retention, l.subscriptions),
        Err(e) => return failed(&ctx, e),
    };
    let pct = |v: Option<f64>| v.map(|x| format!("{x:.1}%")).unwrap_or_else(|| "–".into());
    let at =
        |v: &[Option<f64>]| [1usize, 3, 6, 12].iter().map(|m| pct(v.get(*m).copied().flatten())).collect::<Vec<_>>();
    let rows = |v: &[domain::ltv::Retention]| -> Vec<RetentionRow> {
        v.iter()
            .map(|r| (r.cohort.clone(), r.customers, at(&r.retention_pct), at(&r.ndr_pct), pct(r.renewal_pct)))
            .collect()
    };
    let (retention, subscriptions) = (rows(&retention), rows(&subscriptions));
    let unknown = ctx.t("clv-channel-unknown");
    let ltv_channels =
        ltv_rows(&ltv.channels, |c| if c.is_empty() { unknown.clone() } else { ctx.i18n.code_label("channel", c) });
    let ltv_cohorts = ltv_rows(&ltv.cohorts, str::to_string);
    let settings = fit.settings;
    let query = format!("as_of={}&unit={}&periods={}", fit.as_of, settings.unit.name(), settings.periods);
    ClvPage {
        as_of: shown("as_of", fit.as_of.to_string()),
        unit: shown("unit", settings.unit.name().to_string()),
        periods: shown("periods", format!("{}", settings.periods)),
        errors,
        query,
        playbook_version: fit.playbook_version,
        horizon_months: settings.horizon_months,
        annual_discount_pct: format!("{}", settings.annual_discount_pct),
        models: [
            fit.model.bg_nbd.as_ref().map(|f| (ctx.t("clv-bg-nbd"), model_view(f, &["r", "alpha", "a", "b"]))),
            fit.model.gamma_gamma.as_ref().map(|f| (ctx.t("clv-gamma-gamma"), model_view(f, &["p", "q", "v"]))),
        ]
        .into_iter()
        .flatten()
        .collect(),
        correlation: fit.model.frequency_spend_correlation.map(|c| format!("{c:.3}")).unwrap_or_else(|| "–".into()),
        warnings,
        customers: n,
        total_clv: money(total),
        mean_p_alive: if n == 0 {
            "–".into()
        } else {
            format!("{:.1}%", predictions.iter().map(|(_, p)| p.p_alive).sum::<f64>() * 100.0 / n as f64)
        },
        expected_purchases: format!("{:.0}", predictions.iter().map(|(_, p)| p.expected_purchases).sum::<f64>()),
        histogram,
        histogram_json,
        top,
        ltv_horizons: ltv.horizons_months,
        retention,
        subscriptions,
        ltv_tables: vec![
            (ctx.t("clv-by-channel"), "ltv-channels", ltv_channels),
            (ctx.t("clv-by-cohort"), "ltv-cohorts", ltv_cohorts),
        ],
        ctx,
    }
    .into_response()
}

/// C-3: every customer's line of the fit on the page, as CSV (the CLI's `--format csv`).
pub async fn clv_export(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    use crate::api::clv::{Choice, fit_for};
    let _u = allowed!(ctx, Action::ViewCustomers);
    let fit = match Choice::from_query(q).map_err(crate::error::ApiError::Invalid) {
        Ok(c) => fit_for(&s, &c).await,
        Err(e) => Err(e),
    };
    let fit = match fit {
        Ok(f) => f,
        Err(e @ crate::error::ApiError::Invalid(_)) => return e.into_response(),
        Err(e) => return failed(&ctx, e),
    };
    let mut body = String::with_capacity(fit.rows.len() * 80 + 100);
    body.push_str(domain::clv::CSV_HEADER);
    body.push('\n');
    for r in &fit.rows {
        body.push_str(&domain::clv::csv_row(r));
        body.push('\n');
    }
    let name = format!("attachment; filename=\"clv-{}.csv\"", fit.as_of);
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response()
}
