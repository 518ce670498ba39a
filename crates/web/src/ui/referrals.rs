//! C-4 referral pages: the report with the rule and a form to record a referral, and the
//! customer page's "create code" action.

use super::{Ctx, Errors, UiForm, done, form_fields, internal, unprocessable};
use crate::AppState;
use crate::api::referrals::{build, parse};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::Fields;
use domain::money::Money;
use domain::referral::Rule;
use domain::role::Action;

pub struct Row {
    referrer: String,
    referrals: usize,
    qualified: usize,
    revenue: String,
    owed: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "referrals.html")]
pub struct Page {
    ctx: Ctx,
    rule: String,
    totals: Vec<(String, String)>,
    rows: Vec<Row>,
    values: Vec<(&'static str, String)>,
    errors: Errors,
}

impl Page {
    fn value(&self, field: &str) -> &str {
        self.values.iter().find(|(k, _)| *k == field).map_or("", |(_, v)| v.as_str())
    }
}

fn yuan(fen: i64) -> String {
    format!("¥{}", Money(fen).format_plain())
}

async fn view(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors) -> Response {
    let (out, rules) = match (build(s).await, s.rules.get(&s.db).await) {
        (Ok(o), Ok(r)) => (o, r),
        (Err(e), _) => return super::customers::failed(ctx, e),
        (_, Err(e)) => return internal(ctx, e),
    };
    let rule = Rule::from_playbook(&rules.playbook);
    let i = &ctx.i18n;
    let r = &out.report;
    let page = Page {
        rule: i.t_args(
            "referrals-rule",
            &[
                ("days", &rule.qualify_days.to_string()),
                ("min", &yuan(rule.min_order_fen)),
                ("pct", &rule.referrer_reward_pct.to_string()),
                ("max", &yuan(rule.max_reward_fen)),
                ("welcome", &yuan(rule.referred_reward_fen)),
            ],
        ),
        totals: vec![
            (i.t("referrals-count"), r.referrals.to_string()),
            (i.t("referrals-qualified"), r.qualified.to_string()),
            (i.t("referrals-pending"), r.pending.to_string()),
            (i.t("referrals-revenue"), yuan(r.revenue_fen)),
            (i.t("referrals-referrer-rewards"), yuan(r.referrer_rewards_fen)),
            (i.t("referrals-referred-rewards"), yuan(r.referred_rewards_fen)),
        ],
        rows: r
            .referrers
            .iter()
            .map(|x| Row {
                referrer: x.referrer.clone(),
                referrals: x.referrals,
                qualified: x.qualified,
                revenue: yuan(x.revenue_fen),
                owed: yuan(x.reward_owed_fen),
            })
            .collect(),
        values: ["code", "customer_id", "customer_name", "referred_on"]
            .iter()
            .map(|k| (*k, f.0.get(*k).and_then(|v| v.as_str()).unwrap_or("").to_string()))
            .collect(),
        errors,
        ctx: ctx.clone(),
    };
    if page.errors.is_empty() { page.into_response() } else { unprocessable(page) }
}

pub async fn show(State(s): State<AppState>, ctx: Ctx) -> Response {
    let _u = allowed!(ctx, Action::ViewCustomers);
    view(&s, &ctx, &Fields::default(), Errors::default()).await
}

pub async fn refer(State(s): State<AppState>, ctx: Ctx, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::ManageOrders);
    let f = form_fields(form.0);
    let today = match crate::api::customers::as_of_day(&s, None).await {
        Ok(d) => d,
        Err(e) => return super::customers::failed(&ctx, e),
    };
    let (code, customer, name, day) = match parse(&f, today) {
        Ok(v) => v,
        Err(e) => return view(&s, &ctx, &f, ctx.errors(&e)).await,
    };
    match store::referrals::refer(&s.db, &u.actor(s.now()), &code, &customer, name.as_deref(), day).await {
        Ok(_) => done("/reports/referrals", "saved"),
        Err(store::Error::Invalid(e)) => view(&s, &ctx, &f, ctx.errors(&e)).await,
        Err(store::Error::Conflict(m)) => {
            view(&s, &ctx, &f, ctx.errors(&domain::FieldErrors::single("customer_id", m))).await
        }
        Err(e) => internal(&ctx, e),
    }
}

/// The customer page's "create referral code" button.
pub async fn create_code(State(s): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let u = allowed!(ctx, Action::ManageOrders);
    match store::referrals::code_of(&s.db, &u.actor(s.now()), &id).await {
        Ok(Some(_)) => done(&format!("/customers/{}", path_segment(&id)), "saved"),
        Ok(None) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(e) => internal(&ctx, e),
    }
}

/// Percent-encodes one path segment: unlike `super::percent_encode` (for query values) a `/`
/// is encoded too, so an id holding one still names one customer.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
