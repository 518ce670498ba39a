//! L-9: the channel report page (table, ECharts charts fed by the API, CSV export).

use super::{Ctx, Errors, Opt, internal, unprocessable};
use crate::AppState;
use crate::api::reports::build;
use crate::error::ApiError;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::money::Money;
use domain::role::Action;

pub struct RowView {
    label: String,
    top: bool,
    leads: i64,
    mix: String,
    conversion: String,
    versus: String,
    cost: String,
    cpl: String,
    cycle: String,
    revenue: String,
    roi: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "channel_report.html")]
pub struct ChannelPage {
    ctx: Ctx,
    from: String,
    until: String,
    attributions: Vec<Opt>,
    query: String,
    channels: Vec<RowView>,
    campaigns: Vec<RowView>,
    band: String,
    errors: Errors,
}

fn yuan(fen: i64) -> String {
    format!("¥{}", Money(fen).format_plain())
}

fn view(ctx: &Ctx, r: &domain::report::ReportRow, label: String) -> RowView {
    RowView {
        label,
        top: r.top,
        leads: r.leads,
        mix: format!("{} / {} / {}", r.grade_a, r.grade_b, r.grade_c),
        conversion: r.conversion_pct.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "—".into()),
        versus: r.versus_industry.as_deref().map(|v| ctx.i18n.code_label("versus", v)).unwrap_or_default(),
        cost: yuan(r.cost_fen),
        cpl: r.cost_per_lead_fen.map(yuan).unwrap_or_else(|| "—".into()),
        cycle: r.avg_cycle_days.map(|d| format!("{d:.0}")).unwrap_or_else(|| "—".into()),
        revenue: yuan(r.revenue_fen),
        roi: r.roi.map(|x| format!("1 : {x:.2}")).unwrap_or_else(|| "—".into()),
    }
}

fn query_of(q: &[(String, String)]) -> String {
    q.iter().map(|(k, v)| format!("{k}={}", super::percent_encode(v))).collect::<Vec<_>>().join("&")
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    let q: Vec<(String, String)> = q.into_iter().filter(|(k, v)| !v.is_empty() && k != "done").collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let att = if get("attribution").is_empty() { "first".to_string() } else { get("attribution") };
    let mut page = ChannelPage {
        from: get("from"),
        until: get("until"),
        attributions: Opt::list(&["first", "last"], &att, |c| ctx.i18n.code_label("attribution", c)),
        query: query_of(&q),
        channels: Vec::new(),
        campaigns: Vec::new(),
        band: String::new(),
        errors: Errors::default(),
        ctx: ctx.clone(),
    };
    let out = match build(&s, &Fields::from_pairs(q.clone())).await {
        Ok(o) => o,
        Err(ApiError::Invalid(e)) => {
            page.errors = ctx.errors(&e);
            return unprocessable(page);
        }
        Err(e) => return e.into_response(),
    };
    let names: std::collections::HashMap<i64, String> = match store::campaigns::list(&s.db).await {
        Ok(l) => l.into_iter().map(|c| (c.id, c.name)).collect(),
        Err(e) => return internal(&ctx, e),
    };
    let i = &ctx.i18n;
    page.from = out.from.clone();
    page.until = out.until.clone();
    page.band = format!("{}–{}%", out.report.industry_low_pct, out.report.industry_high_pct);
    page.channels = out.report.channels.iter().map(|r| view(&ctx, r, i.code_label("channel", &r.channel))).collect();
    page.campaigns = out
        .report
        .campaigns
        .iter()
        .map(|r| {
            view(
                &ctx,
                r,
                format!(
                    "{} · {}",
                    i.code_label("channel", &r.channel),
                    r.campaign_id.and_then(|c| names.get(&c).cloned()).unwrap_or_default()
                ),
            )
        })
        .collect();
    page.into_response()
}

/// The channel table as CSV (UTF-8 with BOM, so spreadsheet programs show the Chinese).
pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    let q: Vec<(String, String)> = q.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let out = match build(&s, &Fields::from_pairs(q)).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let mut text = String::from(
        "\u{feff}channel,leads,grade_a,grade_b,grade_c,converted,conversion_pct,cost_yuan,cost_per_lead_yuan,avg_cycle_days,revenue_yuan,roi,top\n",
    );
    let y = |fen: i64| Money(fen).format_plain().replace(',', "");
    for r in &out.report.channels {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.channel,
            r.leads,
            r.grade_a,
            r.grade_b,
            r.grade_c,
            r.converted,
            r.conversion_pct.map(|p| format!("{p:.2}")).unwrap_or_default(),
            y(r.cost_fen),
            r.cost_per_lead_fen.map(y).unwrap_or_default(),
            r.avg_cycle_days.map(|d| format!("{d:.1}")).unwrap_or_default(),
            y(r.revenue_fen),
            r.roi.map(|x| format!("{x:.4}")).unwrap_or_default(),
            r.top
        ));
    }
    let name = format!("attachment; filename=\"channels-{}-{}.csv\"", out.from, out.until);
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)], text)
        .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "lead_quality.html")]
pub struct QualityPage {
    ctx: Ctx,
    month: String,
    definition: String,
    review: Option<domain::report::QualityReview>,
    errors: Errors,
}

impl QualityPage {
    pub fn avg(&self, v: &f64) -> String {
        format!("{v:.1}")
    }
}

pub async fn quality(State(s): State<AppState>, ctx: Ctx, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Err(r) = ctx.allowed(Action::ViewLeads) {
        return r;
    }
    let q: Vec<(String, String)> = q.into_iter().filter(|(k, v)| !v.is_empty() && k != "done").collect();
    let definition = crate::rules::load(&s)
        .await
        .map(|r| r.playbook.leads.handoff.valid_lead_definition.clone())
        .unwrap_or_default();
    let mut page =
        QualityPage { ctx: ctx.clone(), month: String::new(), definition, review: None, errors: Errors::default() };
    match crate::api::reports::quality(&s, &Fields::from_pairs(q)).await {
        Ok(out) => {
            page.month = out.month;
            page.review = Some(out.review);
            page.into_response()
        }
        Err(ApiError::Invalid(e)) => {
            page.errors = ctx.errors(&e);
            unprocessable(page)
        }
        Err(e) => e.into_response(),
    }
}
