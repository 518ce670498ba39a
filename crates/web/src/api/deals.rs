//! The lead lifecycle through the API: reassign (L-4), accept or reject (L-7), nurture
//! touches (L-6), convert and close deals (L-8).

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::api::leads::visible;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::rules::{lead_scope, load};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::deal::{DealInput, StageInput, TouchKind, reason};
use domain::errors::Source as _;
use domain::role::Action;
use domain::{FieldErrors, Fields};
use store::deals::{Deal, Touch};
use store::leads::Lead;
use utoipa::ToSchema;

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReassignIn {
    owner_id: i64,
    reason: String,
}

pub fn parse_reassign(f: &Fields) -> Result<(i64, String), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["owner_id", "reason"]);
    let owner = f.int(&mut e, "owner_id");
    if owner.is_none() && !e.0.contains_key("owner_id") {
        e.add("owner_id", "is required");
    }
    let r = reason(f, &mut e, "reason", true);
    match (owner, r) {
        (Some(o), Some(r)) if e.is_empty() => Ok((o, r)),
        _ => Err(e),
    }
}

/// L-4: a manager reassigns a lead, with a reason that is kept in its history.
#[utoipa::path(post, path = "/leads/{id}/reassign", tag = "leads", params(("id" = i64, Path)), request_body = ReassignIn,
    responses((status = 200, body = Lead), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reassign_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Lead>> {
    u.require(Action::ReassignLeads)?;
    visible(&s, &u, id).await?;
    let (owner, why) = parse_reassign(&f)?;
    let rules = load(&s).await?;
    Ok(Json(store::deals::reassign(&s.db, &u.actor(s.now()), id, owner, &why, &rules.rules()).await?))
}

/// L-7: sales accepts a handed-off lead.
#[utoipa::path(post, path = "/leads/{id}/accept", tag = "leads", params(("id" = i64, Path)),
    responses((status = 200, body = Lead), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn accept_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Lead>> {
    u.require(Action::AcceptLeads)?;
    visible(&s, &u, id).await?;
    Ok(Json(store::deals::accept(&s.db, &u.actor(s.now()), id).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RejectIn {
    /// One of the playbook's reject reasons, or free text.
    reason: String,
}

/// L-7: sales rejects a handed-off lead with a reason; it returns to marketing to nurture.
#[utoipa::path(post, path = "/leads/{id}/reject", tag = "leads", params(("id" = i64, Path)), request_body = RejectIn,
    responses((status = 200, body = Lead), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reject_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Lead>> {
    u.require(Action::AcceptLeads)?;
    visible(&s, &u, id).await?;
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["reason"]);
    let why = reason(&f, &mut e, "reason", true);
    let why = e.into_result(why.unwrap_or_default())?;
    Ok(Json(store::deals::reject(&s.db, &u.actor(s.now()), id, &why).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TouchIn {
    /// white_paper | live_course | webinar | case_study | comparison | demo | reference_meeting | content
    kind: String,
    title: Option<String>,
}

/// L-6: records a nurture touch; the lead moves forward to the touch's stage.
#[utoipa::path(post, path = "/leads/{id}/touches", tag = "leads", params(("id" = i64, Path)), request_body = TouchIn,
    responses((status = 201, body = Touch), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_touch(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Touch>)> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let (kind, title) = parse_touch(&f)?;
    let rules = load(&s).await?;
    Ok((
        StatusCode::CREATED,
        Json(store::deals::touch(&s.db, &u.actor(s.now()), id, kind, title.as_deref(), &rules.rules()).await?),
    ))
}

pub fn parse_touch(f: &Fields) -> Result<(TouchKind, Option<String>), FieldErrors> {
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["kind", "title"]);
    let kind = f.choice(&mut e, "kind", TouchKind::ALL, TouchKind::code);
    let title = f.optional(&mut e, "title", 200);
    match kind {
        Some(k) if e.is_empty() => Ok((k, title)),
        _ => Err(e),
    }
}

#[utoipa::path(get, path = "/leads/{id}/touches", tag = "leads", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Touch>), (status = 404, body = ErrorBody)))]
pub async fn list_touches(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Touch>>> {
    visible(&s, &u, id).await?;
    Ok(Json(store::deals::touches(&s.db, id).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConvertIn {
    name: String,
    /// Expected amount in yuan.
    amount: String,
}

/// L-8: the lead becomes a deal (first- and last-touch channel and campaign kept).
#[utoipa::path(post, path = "/leads/{id}/convert", tag = "leads", params(("id" = i64, Path)), request_body = ConvertIn,
    responses((status = 201, body = Deal), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn convert_lead(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<Deal>)> {
    u.require(Action::EditLeads)?;
    visible(&s, &u, id).await?;
    let d = DealInput::parse(&f)?;
    Ok((StatusCode::CREATED, Json(store::deals::convert(&s.db, &u.actor(s.now()), id, &d).await?)))
}

#[utoipa::path(get, path = "/deals", tag = "deals", responses((status = 200, body = Vec<Deal>)))]
pub async fn list_deals(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<Deal>>> {
    u.require(Action::ViewLeads)?;
    Ok(Json(store::deals::list_deals(&s.db, lead_scope(&u), 500).await?))
}

pub async fn visible_deal(s: &AppState, u: &crate::auth::CurrentUser, id: i64) -> ApiResult<Deal> {
    let deal = store::deals::get_deal(&s.db, id).await?.ok_or(ApiError::NotFound)?;
    visible(s, u, deal.lead_id).await?;
    Ok(deal)
}

#[utoipa::path(get, path = "/deals/{id}", tag = "deals", params(("id" = i64, Path)),
    responses((status = 200, body = Deal), (status = 404, body = ErrorBody)))]
pub async fn get_deal(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Deal>> {
    Ok(Json(visible_deal(&s, &u, id).await?))
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StageIn {
    /// qualification | proposal | negotiation | closed_won | closed_lost
    stage: String,
    /// Required for closed_lost.
    lost_reason: Option<String>,
    /// The final amount in yuan, if it changed.
    amount: Option<String>,
}

/// L-8: moves a deal; closed-won records the sales cycle, closed-lost needs a reason.
#[utoipa::path(put, path = "/deals/{id}/stage", tag = "deals", params(("id" = i64, Path)), request_body = StageIn,
    responses((status = 200, body = Deal), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_deal_stage(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<Deal>> {
    u.require(Action::EditLeads)?;
    visible_deal(&s, &u, id).await?;
    let input = StageInput::parse(&f)?;
    let rules = load(&s).await?;
    Ok(Json(store::deals::set_stage(&s.db, &u.actor(s.now()), id, &input, &rules.rules()).await?))
}
