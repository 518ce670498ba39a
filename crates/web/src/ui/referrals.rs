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

/// One referral of the list, with what is owed on it.
pub struct Line {
    id: i64,
    referrer: String,
    referred: String,
    day: String,
    window: String,
    status: String,
    earned: String,
    paid: String,
    owed: String,
    owes: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "referrals.html")]
pub struct Page {
    ctx: Ctx,
    rule: String,
    totals: Vec<(String, String)>,
    rows: Vec<Row>,
    lines: Vec<Line>,
    /// Why the last payout was refused, if it was.
    pay_error: Option<String>,
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
    view_with(s, ctx, f, errors, None).await
}

async fn view_with(s: &AppState, ctx: &Ctx, f: &Fields, errors: Errors, pay_error: Option<String>) -> Response {
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
            (i.t("referrals-paid"), yuan(r.paid_fen)),
            (i.t("referrals-outstanding"), yuan(r.owed_fen)),
        ],
        lines: r
            .list
            .iter()
            // Those with something owed come first; the API has every one.
            .take(200)
            .map(|x| Line {
                id: x.id,
                referrer: x.referrer.clone(),
                referred: x.referred.clone(),
                day: domain::order::date_of(x.day).to_string(),
                window: yuan(x.window_fen),
                status: i.t(&format!("referrals-status-{}", x.reward.reason)),
                earned: yuan(x.reward.referrer_fen + x.reward.referred_fen),
                paid: yuan(x.paid_fen),
                owed: yuan(x.owed_fen),
                owes: x.owed_fen > 0,
            })
            .collect(),
        pay_error,
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

/// C-4: finance pays what is owed on one referral (both sides); a refusal (nothing owed,
/// or a payout recorded meanwhile) is shown above the list and nothing is written.
pub async fn pay(State(s): State<AppState>, ctx: Ctx, Path(id): Path<i64>, form: UiForm) -> Response {
    let u = allowed!(ctx, Action::PayRewards);
    let f = form_fields(form.0);
    let reference = match crate::api::referrals::parse_payout(&f) {
        Ok(r) => r,
        Err(e) => {
            // The only field is the reference: its label with the message, and 422.
            let why = e.0.values().next().map(|m| format!("{}: {m}", ctx.t("referrals-reference")));
            let mut page = view_with(&s, &ctx, &Fields::default(), Errors::default(), why).await;
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return page;
        }
    };
    let today = match crate::api::customers::as_of_day(&s, None).await {
        Ok(d) => d,
        Err(e) => return super::customers::failed(&ctx, e),
    };
    match crate::api::referrals::record_payout(&s, &u.actor(s.now()), id, today, reference.as_deref()).await {
        Ok(_) => done("/reports/referrals", "saved"),
        Err(store::Error::NotFound) => ctx.error_page(StatusCode::NOT_FOUND, "error-not-found"),
        Err(store::Error::Conflict(m)) => {
            let mut page = view_with(&s, &ctx, &Fields::default(), Errors::default(), Some(ctx.i18n.problem(&m))).await;
            *page.status_mut() = StatusCode::CONFLICT;
            page
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
