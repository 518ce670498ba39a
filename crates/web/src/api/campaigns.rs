//! Campaigns and their cost ledger (L-1, L-9).

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::campaign::{CampaignInput, SpendInput};
use domain::role::Action;
use serde::Serialize;
use store::campaigns::{Campaign, SpendEntry};
use utoipa::ToSchema;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CampaignIn {
    name: String,
    channel: String,
    /// YYYY-MM-DD
    starts_on: Option<String>,
    ends_on: Option<String>,
    /// In yuan, e.g. "200000" or 200000.5
    planned_cost: Option<String>,
    owner_id: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SpendIn {
    /// YYYY-MM-DD
    spent_on: String,
    /// In yuan, at most two decimals.
    amount: String,
    /// ads | kol | event | vendor | content | other
    category: String,
    note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignDetail {
    pub campaign: Campaign,
    pub spend: Vec<SpendEntry>,
}

#[utoipa::path(get, path = "/campaigns", tag = "campaigns", responses((status = 200, body = Vec<Campaign>)))]
pub async fn list_campaigns(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Campaign>>> {
    u.require(Action::ViewLeads)?;
    Ok(Json(store::campaigns::list(&s.db).await?))
}

#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CampaignIn,
    responses((status = 201, body = Campaign), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_campaign(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    u.require(Action::ManageCampaigns)?;
    let input = CampaignInput::parse(&f)?;
    Ok((StatusCode::CREATED, Json(store::campaigns::create(&s.db, &u.actor(s.now()), &input).await?)))
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignDetail), (status = 404, body = ErrorBody)))]
pub async fn get_campaign(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CampaignDetail>> {
    u.require(Action::ViewLeads)?;
    let campaign = store::campaigns::get(&s.db, id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(CampaignDetail { campaign, spend: store::campaigns::spend(&s.db, id).await? }))
}

#[utoipa::path(put, path = "/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)), request_body = CampaignIn,
    responses((status = 200, body = Campaign), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_campaign(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Campaign>> {
    u.require(Action::ManageCampaigns)?;
    let input = CampaignInput::parse(&f)?;
    Ok(Json(store::campaigns::update(&s.db, &u.actor(s.now()), id, &input).await?))
}

/// Adds an actual-cost entry to the campaign's ledger.
#[utoipa::path(post, path = "/campaigns/{id}/spend", tag = "campaigns", params(("id" = i64, Path)), request_body = SpendIn,
    responses((status = 201, body = SpendEntry), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_campaign_spend(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<SpendEntry>)> {
    u.require(Action::ManageCampaigns)?;
    let input = SpendInput::parse(&f)?;
    Ok((StatusCode::CREATED, Json(store::campaigns::add_spend(&s.db, &u.actor(s.now()), id, &input).await?)))
}
