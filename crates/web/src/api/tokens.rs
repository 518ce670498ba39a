//! The calling account and its API tokens.

use super::{ApiPath, JsonBody};
use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiResult, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::FieldErrors;
use domain::role::{Action, Role};
use serde::Serialize;
use store::auth::ApiToken;
use store::org::User;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub user: User,
    /// What this account may do: edit_company, edit_playbook, manage_users, view_audit, …
    pub permissions: Vec<String>,
}

const PERMISSIONS: &[(Action, &str)] = &[
    (Action::EditCompany, "edit_company"),
    (Action::EditOrg, "edit_org"),
    (Action::ManageUsers, "manage_users"),
    (Action::EditPlaybook, "edit_playbook"),
    (Action::EditCalendar, "edit_calendar"),
    (Action::ViewAudit, "view_audit"),
];

pub fn permissions(role: Role) -> Vec<String> {
    PERMISSIONS.iter().filter(|(a, _)| role.can(*a)).map(|(_, n)| n.to_string()).collect()
}

#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = MeOut), (status = 401, body = ErrorBody)))]
pub async fn me(ApiUser(u): ApiUser) -> ApiResult<Json<MeOut>> {
    let permissions = permissions(u.role());
    Ok(Json(MeOut { user: u.user, permissions }))
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreatedOut {
    pub token: ApiToken,
    /// The bearer token. It is shown once and cannot be retrieved again.
    pub secret: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenIn {
    /// What the token is for, e.g. "website form relay".
    name: String,
}

#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(State(s): State<AppState>, ApiUser(u): ApiUser) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(store::auth::list_tokens(&s.db, u.user.id).await?))
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = TokenIn,
    responses((status = 201, body = TokenCreatedOut), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    JsonBody(f): JsonBody,
) -> ApiResult<(StatusCode, Json<TokenCreatedOut>)> {
    u.require(Action::UseApi)?;
    let mut e = FieldErrors::new();
    f.reject_unknown(&mut e, &["name"]);
    let name = f.required(&mut e, "name", 80);
    if !e.is_empty() {
        return Err(e.into());
    }
    let (token, secret) = store::auth::create_token(&s.db, &u.actor(s.now()), u.user.id, &name).await?;
    Ok((StatusCode::CREATED, Json(TokenCreatedOut { token, secret })))
}

#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    ApiUser(u): ApiUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    store::auth::revoke_token(&s.db, &u.actor(s.now()), u.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
