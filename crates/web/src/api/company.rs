//! Company profile (O-1).

use super::JsonBody;
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use domain::company::CompanyProfile;
use domain::role::Action;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct CompanyOut {
    pub name: String,
    pub industry: Option<String>,
    /// consumer_brand | complex_product | complex_b2b
    pub business_type: String,
    /// startup | growth | mature
    pub stage: String,
    /// small | medium | large
    pub size: String,
    /// ISO 4217 code, e.g. CNY
    pub currency: String,
    /// IANA time zone, e.g. Asia/Shanghai
    pub time_zone: String,
    /// Weekday codes (mon … sun) that are not working days.
    pub weekend_days: Vec<String>,
    /// Working periods of a day, e.g. `09:00-12:00,13:00-18:00`.
    pub working_hours: String,
}

impl From<&CompanyProfile> for CompanyOut {
    fn from(p: &CompanyProfile) -> Self {
        CompanyOut {
            name: p.name.clone(),
            industry: p.industry.clone(),
            business_type: p.business_type.code().into(),
            stage: p.stage.code().into(),
            size: p.size.code().into(),
            currency: p.currency.clone(),
            time_zone: p.time_zone.clone(),
            weekend_days: p.weekend_days.iter().map(|d| domain::company::weekday_code(*d).to_string()).collect(),
            working_hours: p.working_hours.to_string(),
        }
    }
}

/// The request body: every field for PUT; any subset for PATCH.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CompanyIn {
    name: Option<String>,
    industry: Option<String>,
    business_type: Option<String>,
    stage: Option<String>,
    size: Option<String>,
    currency: Option<String>,
    time_zone: Option<String>,
    /// A list of weekday codes, or one comma-separated string.
    weekend_days: Option<Vec<String>>,
    working_hours: Option<String>,
}

#[utoipa::path(get, path = "/company", tag = "company",
    responses((status = 200, body = CompanyOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_company(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<CompanyOut>> {
    u.require(Action::ViewOrg)?;
    let p = store::company::get(&s.db).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(CompanyOut::from(&p)))
}

/// Replaces the whole profile.
#[utoipa::path(put, path = "/company", tag = "company", request_body = CompanyIn,
    responses((status = 200, body = CompanyOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_company(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<CompanyOut>> {
    u.require(Action::EditCompany)?;
    let p = CompanyProfile::parse(&f)?;
    store::company::save(&s.db, &u.actor(s.now()), &p).await?;
    Ok(Json(CompanyOut::from(&p)))
}

/// Changes only the fields sent.
#[utoipa::path(patch, path = "/company", tag = "company", request_body = CompanyIn,
    responses((status = 200, body = CompanyOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn patch_company(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<Json<CompanyOut>> {
    u.require(Action::EditCompany)?;
    let current = store::company::get(&s.db).await?.ok_or(ApiError::NotFound)?;
    let p = current.patched(&f)?;
    store::company::save(&s.db, &u.actor(s.now()), &p).await?;
    Ok(Json(CompanyOut::from(&p)))
}
