//! C-3 customer lifetime value: the fitted BG/NBD and Gamma-Gamma models and every
//! customer's predictions.

use super::customers::{Recent, as_of_day, query_fields};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use domain::FieldErrors;
use domain::clv::{Model, Prediction, Row, Settings, Unit};
use domain::order::day_number;
use domain::role::Action;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// One fit and its predictions, as of a day under one playbook version and settings.
pub struct Fit {
    pub as_of: jiff::civil::Date,
    pub playbook_version: i64,
    pub settings: Settings,
    pub model: Model,
    /// Ordered by customer id (C-2's order).
    pub rows: Vec<Row>,
    /// Every id is an integer, so `rows` are in numeric order (else in text order).
    pub numeric_ids: bool,
}

impl Fit {
    /// A customer's row (a customer page asks for one among hundreds of thousands).
    pub fn row(&self, customer_id: &str) -> Option<&Row> {
        domain::clv::row_of(&self.rows, self.numeric_ids, customer_id)
    }

    /// Customers with a prediction.
    pub fn predicted(&self) -> Vec<(&Row, Prediction)> {
        self.rows.iter().filter_map(|r| r.prediction.map(|p| (r, p))).collect()
    }

    /// The distribution of lifetime value: ten equal-width buckets up to the 99th
    /// percentile, the rest in the last; (lower bound, upper bound, customers) in yuan.
    pub fn histogram(&self) -> Vec<(f64, f64, usize)> {
        let mut values: Vec<f64> = self.rows.iter().filter_map(|r| r.prediction.map(|p| p.clv)).collect();
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let top = values.get((n * 99 / 100).min(n.saturating_sub(1))).copied().unwrap_or(0.0).max(1.0);
        let width = top / 10.0;
        let mut counts = [0usize; 10];
        for v in &values {
            counts[((v / width) as usize).min(9)] += 1;
        }
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64 * width, if i == 9 { f64::INFINITY } else { (i + 1) as f64 * width }, *c))
            .collect()
    }

    /// The `n` customers of highest lifetime value, highest first (ties by id).
    pub fn top(&self, n: usize) -> Vec<(&Row, Prediction)> {
        let mut by_value = self.predicted();
        let cmp = |a: &(&Row, Prediction), b: &(&Row, Prediction)| {
            b.1.clv.total_cmp(&a.1.clv).then_with(|| a.0.customer_id.cmp(&b.0.customer_id))
        };
        if by_value.len() > n {
            by_value.select_nth_unstable_by(n, cmp);
            by_value.truncate(n);
        }
        by_value.sort_unstable_by(cmp);
        by_value
    }
}

/// A histogram bucket's label: "¥a–b", the last "≥ ¥a".
pub fn bucket_label(lo: f64, hi: f64) -> String {
    if hi.is_finite() { format!("¥{lo:.0}–{hi:.0}") } else { format!("≥ ¥{lo:.0}") }
}

/// Fits by (day, playbook version, data mark, unit, periods).
pub type ClvCache = Recent<(i64, i64, (i64, i64), Unit, i64), Fit>;

impl Default for ClvCache {
    fn default() -> Self {
        Recent::new(3)
    }
}

/// The choices a reader can make: the date, the unit and the prediction periods (each
/// defaulting to today and the playbook's). Parsed all at once, so every bad field is named.
#[derive(Default)]
pub struct Choice {
    pub as_of: Option<jiff::civil::Date>,
    pub unit: Option<Unit>,
    pub periods: Option<i64>,
}

impl Choice {
    pub fn from_query(q: Vec<(String, String)>) -> Result<Choice, FieldErrors> {
        let (f, mut e) = query_fields(q, &["as_of", "unit", "periods"]);
        let as_of = f.text(&mut e, "as_of").and_then(|v| match v.parse::<jiff::civil::Date>() {
            Ok(d) => Some(d),
            Err(_) => {
                e.add("as_of", format!("`{v}` is not a date (YYYY-MM-DD)"));
                None
            }
        });
        let unit = f.text(&mut e, "unit").and_then(|u| {
            let parsed = Unit::parse(&u);
            if parsed.is_none() {
                e.add("unit", format!("unknown value `{u}`; expected one of: {}", Unit::NAMES.join(", ")));
            }
            parsed
        });
        let periods = f.int(&mut e, "periods");
        if let Some(p) = periods.filter(|p| !(1..=3660).contains(p)) {
            e.add("periods", format!("must be between 1 and 3660, got {p}"));
        }
        e.into_result(Choice { as_of, unit, periods })
    }
}

/// The fit for a reader's choice, from the cache when nothing changed since.
pub async fn fit_for(s: &AppState, c: &Choice) -> ApiResult<Arc<Fit>> {
    let day = match c.as_of {
        Some(d) => d,
        None => as_of_day(s, None).await?,
    };
    let rules = s.rules.get(&s.db).await?;
    let settings = Settings::from_playbook(&rules.playbook, c.unit, c.periods.map(|p| p as f64));
    let key = (
        day_number(day),
        rules.version,
        store::customers::data_mark(&s.db).await?,
        settings.unit,
        settings.periods as i64,
    );
    if let Some(f) = s.clv.get(&key) {
        return Ok(f);
    }
    let purchases = store::customers::clv_purchases(&s.db, key.0).await?;
    // Fitting is CPU work of up to a few seconds: off the async workers.
    let (model, rows) = tokio::task::spawn_blocking(move || domain::clv::report(&purchases, key.0, &settings))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let numeric_ids = rows.iter().all(|r| r.customer_id.parse::<i128>().is_ok());
    let fit = Arc::new(Fit { as_of: day, playbook_version: rules.version, settings, model, rows, numeric_ids });
    s.clv.put(key, fit.clone());
    Ok(fit)
}

#[derive(Serialize, ToSchema)]
pub struct ClvOut {
    /// YYYY-MM-DD: the models are fitted on orders up to this day.
    pub as_of: String,
    pub playbook_version: i64,
    /// day, week or month: the unit of recency, T and `periods`.
    pub unit: String,
    /// Expected purchases are for the next `periods` units.
    pub periods: f64,
    pub horizon_months: u32,
    pub annual_discount_pct: f64,
    /// `bg_nbd` and `gamma_gamma` (params, standard_errors, log_likelihood, iterations,
    /// converged, customers), `frequency_spend_correlation`, `warnings` [{code, detail}].
    #[schema(value_type = Object)]
    pub model: serde_json::Value,
    /// Per customer: customer_id, frequency (repeat purchase days), recency, T, monetary
    /// (mean repeat spend, yuan), expected_purchases, p_alive, expected_order_value and clv
    /// (yuan).
    #[schema(value_type = Vec<Object>)]
    pub customers: serde_json::Value,
}

#[derive(utoipa::IntoParams)]
#[allow(dead_code)]
pub struct ClvQuery {
    /// YYYY-MM-DD; default today in the company's time zone.
    as_of: Option<String>,
    /// day, week or month; default the playbook's `customers.clv.unit`.
    unit: Option<String>,
    /// 1–3660 units; default the playbook's `customers.clv.prediction_periods`.
    periods: Option<i64>,
}

/// BG/NBD and Gamma-Gamma fitted by maximum likelihood on the orders up to `as_of` (C-3),
/// with standard errors, log-likelihoods, warnings, and each customer's predictions.
#[utoipa::path(get, path = "/analytics/clv", tag = "customers", params(ClvQuery),
    responses((status = 200, body = ClvOut), (status = 422, body = ErrorBody)))]
pub async fn clv(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<ClvOut>> {
    u.require(Action::ViewCustomers)?;
    let fit = fit_for(&s, &Choice::from_query(q)?).await?;
    let to_json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| ApiError::Internal(e.to_string()));
    Ok(Json(ClvOut {
        as_of: fit.as_of.to_string(),
        playbook_version: fit.playbook_version,
        unit: fit.settings.unit.name().to_string(),
        periods: fit.settings.periods,
        horizon_months: fit.settings.horizon_months,
        annual_discount_pct: fit.settings.annual_discount_pct,
        model: to_json(serde_json::to_value(&fit.model))?,
        customers: to_json(serde_json::to_value(&fit.rows))?,
    }))
}

#[derive(Serialize, ToSchema, Clone)]
pub struct LtvOut {
    /// YYYY-MM-DD
    pub as_of: String,
    /// Cohorts (first-order month) and acquisition channels: customers, revenue_fen, ltv_fen
    /// (per customer to date) and ltv_at_fen per horizon (months in `horizons_months`).
    #[schema(value_type = Object)]
    pub report: domain::ltv::Report,
    /// Per cohort (first-order month): retention_pct and ndr_pct for months 0–12 after the
    /// first order (null where the cohort is younger), renewal_pct in the second year.
    #[schema(value_type = Vec<Object>)]
    pub retention: Vec<domain::ltv::Retention>,
    /// The same per cohort of first subscription, from subscription revenue (MRR): retention
    /// and NDR at day 30·m after the first subscription, renewal_pct = month 12's payers over
    /// month 11's. Empty when no subscription is stored.
    #[schema(value_type = Vec<Object>)]
    pub subscriptions: Vec<domain::ltv::Retention>,
}

/// Historical-value reports by (day, `store::customers::data_mark`, the last referral — it
/// may set a customer's channel —, `store::subscriptions::data_mark`): sums over every
/// order, asked for on each view of the lifetime-value page.
pub type LtvCache = Recent<(i64, (i64, i64), i64, (i64, i64)), LtvOut>;

impl Default for LtvCache {
    fn default() -> Self {
        Recent::new(2)
    }
}

/// Historical value by cohort and channel as of today (C-3), from the cache when no order
/// or customer arrived since.
pub async fn ltv_report(s: &AppState) -> ApiResult<LtvOut> {
    let day = as_of_day(s, None).await?;
    let key = (
        day_number(day),
        store::customers::data_mark(&s.db).await?,
        store::referrals::data_mark(&s.db).await?,
        store::subscriptions::data_mark(&s.db).await?,
    );
    if let Some(v) = s.ltv.get(&key) {
        return Ok(v.as_ref().clone());
    }
    let (acquired, spent) = store::customers::ltv_inputs(&s.db).await?;
    let (active, renewed) = store::customers::retention_inputs(&s.db).await?;
    let month_of = |d: i64| domain::order::date_of(d).strftime("%Y-%m").to_string();
    let today = day_number(day);
    let out = LtvOut {
        as_of: day.to_string(),
        report: domain::ltv::report(&acquired, &spent, today, month_of),
        retention: domain::ltv::retention(&acquired, &active, &renewed, today, month_of),
        subscriptions: domain::subscription::retention(&store::subscriptions::all(&s.db).await?, today, month_of),
    };
    s.ltv.put(key, Arc::new(out.clone()));
    Ok(out)
}

/// What customers actually spent, per acquisition cohort and channel: to date and within
/// 1, 3, 6 and 12 months of their first order (C-3).
#[utoipa::path(get, path = "/analytics/ltv", tag = "customers", responses((status = 200, body = LtvOut)))]
pub async fn ltv(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<LtvOut>> {
    u.require(Action::ViewCustomers)?;
    Ok(Json(ltv_report(&s).await?))
}
