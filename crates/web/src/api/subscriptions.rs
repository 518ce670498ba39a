//! C-3 subscriptions (subscription businesses): added in batches, idempotent by id; their
//! revenue drives the cohort retention, renewal and NDR of `/analytics/ltv`.

use super::JsonBody;
use super::customers::{parse_batch, today};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::role::Action;
use domain::subscription::SubscriptionInput;
use store::subscriptions::SubsOutcome;
use utoipa::ToSchema;

const MAX_BATCH: usize = 10_000;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubscriptionIn {
    subscription_id: String,
    customer_id: String,
    plan: String,
    /// YYYY-MM-DD, not in the future.
    start_date: String,
    /// YYYY-MM-DD, the first day no longer paid for; absent while it runs. Resending a
    /// running subscription with an end date records its end.
    end_date: Option<String>,
    /// Monthly recurring revenue in yuan with at most two decimals ("990.00" or 990).
    mrr: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubscriptionsIn {
    subscriptions: Vec<SubscriptionIn>,
}

/// Adds a batch of subscriptions (C-3), idempotent by subscription id: resending one with
/// the same values changes nothing; with an end date it did not have, records the end; any
/// other change is 409 and nothing is written. Every problem is a 422 naming
/// `subscriptions[i].field`, and nothing is written.
#[utoipa::path(post, path = "/subscriptions", tag = "customers", request_body = SubscriptionsIn,
    responses((status = 200, body = SubsOutcome), (status = 201, body = SubsOutcome), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_subscriptions(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<SubsOutcome>)> {
    u.require(Action::ManageOrders)?;
    let latest = today(&s).await?;
    let subs = parse_batch(&f, "subscriptions", MAX_BATCH, |f| SubscriptionInput::parse(f, latest))?;
    let out = store::subscriptions::add(&s.db, &u.actor(s.now()), &subs).await?;
    let status = if out.created + out.ended > 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(out)))
}
