//! C-4 referrals: a customer's code, recording who referred whom, and the report with the
//! rewards the playbook's rule says are owed.

use super::JsonBody;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::FieldErrors;
use domain::order::day_number;
use domain::referral::{Report, Rule, report};
use domain::role::Action;
use serde::Serialize;
use store::referrals::{Payout, Recorded};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct CodeOut {
    pub customer_id: String,
    /// Eight characters; O and 0, I/L and 1 are read alike when typed.
    pub code: String,
}

/// The customer's referral code, created the first time (C-4).
#[utoipa::path(post, path = "/customers/{customer_id}/referral-code", tag = "customers",
    params(("customer_id" = String, Path)),
    responses((status = 200, body = CodeOut), (status = 404, body = ErrorBody)))]
pub async fn code(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(id): super::ApiPath<String>,
) -> ApiResult<Json<CodeOut>> {
    u.require(Action::ManageOrders)?;
    let code = store::referrals::code_of(&s.db, &u.actor(s.now()), &id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(CodeOut { customer_id: id, code }))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReferralIn {
    /// The referrer's code.
    code: String,
    /// The referred customer's id (created when new).
    customer_id: String,
    customer_name: Option<String>,
    /// YYYY-MM-DD, not in the future (default today).
    referred_on: Option<String>,
}

/// Parses a referral body: every problem named by its field.
pub fn parse(
    f: &domain::Fields,
    today: jiff::civil::Date,
) -> Result<(String, String, Option<String>, i64), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["code", "customer_id", "customer_name", "referred_on"]);
    let code = f.required(&mut e, "code", 20);
    let customer = f.required(&mut e, "customer_id", 100);
    let name = f.optional(&mut e, "customer_name", 200);
    let day = match f.text(&mut e, "referred_on") {
        None => today,
        Some(v) => match v.parse::<jiff::civil::Date>() {
            Ok(d) if d <= today => d,
            Ok(_) => {
                e.add("referred_on", "must not be in the future");
                today
            }
            Err(_) => {
                e.add("referred_on", format!("`{v}` is not a date (YYYY-MM-DD)"));
                today
            }
        },
    };
    e.into_result((code, customer, name, day_number(day)))
}

/// Records that the owner of `code` referred `customer_id` (C-4).
#[utoipa::path(post, path = "/referrals", tag = "customers", request_body = ReferralIn,
    responses((status = 201, body = Recorded), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refer(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    u.require(Action::ManageOrders)?;
    let (code, customer, name, day) = parse(&f, super::customers::as_of_day(&s, None).await?)?;
    let out = store::referrals::refer(&s.db, &u.actor(s.now()), &code, &customer, name.as_deref(), day).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Serialize, ToSchema)]
pub struct ReferralReportOut {
    /// YYYY-MM-DD: rewards are decided as of today.
    pub as_of: String,
    pub playbook_version: i64,
    /// Totals (referrals, qualified, pending, revenue_fen, referrer_rewards_fen,
    /// referred_rewards_fen, paid_fen, owed_fen), per referrer (referrals, qualified,
    /// revenue_fen, reward_fen, reward_paid_fen, reward_owed_fen) and every referral in
    /// `list` (id, referrer, referred, day, window_fen, reward, paid_fen, owed_fen), those
    /// with something owed first.
    #[schema(value_type = Object)]
    pub report: Report,
}

/// The referral report under the active playbook's rule.
pub async fn build(s: &AppState) -> ApiResult<ReferralReportOut> {
    let rules = s.rules.get(&s.db).await?;
    let rule = Rule::from_playbook(&rules.playbook);
    let day = super::customers::as_of_day(s, None).await?;
    let referrals = store::referrals::all(&s.db, rule.qualify_days).await?;
    Ok(ReferralReportOut {
        as_of: day.to_string(),
        playbook_version: rules.version,
        report: report(&rule, &referrals, day_number(day)),
    })
}

#[utoipa::path(get, path = "/analytics/referrals", tag = "customers", responses((status = 200, body = ReferralReportOut)))]
pub async fn referral_report(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<ReferralReportOut>> {
    u.require(Action::ViewCustomers)?;
    Ok(Json(build(&s).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PayoutIn {
    /// The payment's reference (transfer number, voucher), up to 200 characters.
    reference: Option<String>,
}

/// Parses a payout body: only `reference`, optional.
pub fn parse_payout(f: &domain::Fields) -> Result<Option<String>, FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["reference"]);
    let reference = f.optional(&mut e, "reference", 200);
    e.into_result(reference)
}

/// Pays all that the active playbook's rule says is owed on a referral, to the referrer and
/// to the referred customer (C-4); 409 when nothing is owed (not qualified, or paid in full).
pub async fn record_payout(
    s: &AppState,
    actor: &store::audit::Actor,
    id: i64,
    today: jiff::civil::Date,
    reference: Option<&str>,
) -> Result<Payout, store::Error> {
    let rules = s.rules.get(&s.db).await?;
    let rule = Rule::from_playbook(&rules.playbook);
    store::referrals::pay(&s.db, actor, id, &rule, rules.version, day_number(today), reference).await
}

#[utoipa::path(post, path = "/referrals/{id}/payouts", tag = "customers", request_body = PayoutIn,
    params(("id" = i64, Path)),
    responses((status = 201, body = Payout), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn payout(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    super::ApiPath(id): super::ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Payout>)> {
    u.require(Action::PayRewards)?;
    let reference = parse_payout(&f)?;
    let today = super::customers::as_of_day(&s, None).await?;
    let out = record_payout(&s, &u.actor(s.now()), id, today, reference.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(out)))
}
