//! C-7: the dashboard page — every section as an ECharts chart with its table beside it
//! and an export behind it — and the section exports (CSV or XLSX).

use super::Ctx;
use crate::AppState;
use crate::api::dashboard::{DashboardOut, build, csv};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use domain::import::Table;
use domain::role::Action;

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct Page {
    ctx: Ctx,
    d: DashboardOut,
    /// Chart data per section, as JSON for the page's script.
    funnel_json: String,
    segments_json: String,
    clv_json: String,
    channels_json: String,
}

impl Page {
    fn label(&self, prefix: &str, code: &str) -> String {
        self.ctx.i18n.code_label(prefix, code)
    }

    fn pct(&self, v: &Option<f64>) -> String {
        v.map(|x| format!("{x:.1}%")).unwrap_or_else(|| "–".into())
    }

    fn yuan(&self, fen: &i64) -> String {
        format!("¥{}", domain::money::Money(*fen).format_plain())
    }

    fn roi(&self, v: &Option<f64>) -> String {
        v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
    }
}

pub async fn show(State(s): State<AppState>, ctx: Ctx) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let d = match build(&s).await {
        Ok(d) => d,
        Err(e) => return super::customers::failed(&ctx, e),
    };
    let i = &ctx.i18n;
    let steps = ["exposure", "click", "conversion", "repurchase"];
    let funnel_json = serde_json::json!({
        "labels": steps.iter().map(|k| i.t(&format!("funnel-{k}"))).collect::<Vec<_>>(),
        "values": d.funnel.users,
    })
    .to_string();
    let segments_json = serde_json::json!({
        "labels": d.rfm.segments.iter().map(|r| i.code_label("segment", &r.segment)).collect::<Vec<_>>(),
        "values": d.rfm.segments.iter().map(|r| r.customers).collect::<Vec<_>>(),
    })
    .to_string();
    let clv_json = serde_json::json!({
        "labels": d.clv.histogram.iter().map(|b| b.label.clone()).collect::<Vec<_>>(),
        "values": d.clv.histogram.iter().map(|b| b.customers).collect::<Vec<_>>(),
    })
    .to_string();
    let channels_json = serde_json::json!({
        "labels": d.channels.rows.iter().map(|r| i.code_label("channel", &r.channel)).collect::<Vec<_>>(),
        "values": d.channels.rows.iter().map(|r| r.roi.map(|x| (x * 100.0).round() / 100.0).unwrap_or(0.0)).collect::<Vec<_>>(),
    })
    .to_string();
    Page { d, funnel_json, segments_json, clv_json, channels_json, ctx }.into_response()
}

#[derive(serde::Deserialize)]
pub struct Format {
    format: Option<String>,
}

/// `/dashboard/export/{section}?format=csv|xlsx`: the rows behind one section.
pub async fn export(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(section): Path<String>,
    Query(q): Query<Format>,
) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    let d = match build(&s).await {
        Ok(d) => d,
        Err(e) => return super::customers::failed(&ctx, e),
    };
    let mut rows = match csv(&d, &section) {
        Ok(r) => r.into_iter(),
        Err(_) => return ctx.error_page(axum::http::StatusCode::NOT_FOUND, "error-not-found"),
    };
    let headers = rows.next().unwrap_or_default();
    let t = Table { headers, rows: rows.collect() };
    super::import::send_table(&ctx, &t, q.format.as_deref().unwrap_or("csv"), &format!("dashboard-{section}"))
}
